import { FunctionsHttpError } from '@supabase/supabase-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRestWorld, U1, U2, type RestWorld } from '../rest/http/support.js';
import { cgiWat, FunctionsAdmin, wat } from './support.js';

const ECHO_TS = `
export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const seen: Record<string, string> = {};
    request.headers.forEach((value, key) => { seen[key] = value; });
    const body = await request.text();
    if (request.headers.get('content-type')?.startsWith('text/plain')) {
      return new Response('text:' + body + ':' + seen['content-type']);
    }
    return Response.json({ method: request.method, path: url.pathname, query: url.search, headers: seen, body: body ? JSON.parse(body) : null });
  },
};`;

/** Reads todos through the REST API with the caller's own token, as an app's function would. */
const MY_TODOS_TS = `
interface Env { SUPABASE_URL: string }
export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const auth = request.headers.get('authorization') ?? '';
    const res = await fetch(env.SUPABASE_URL + '/rest/v1/todos?select=title,owner&order=title', {
      headers: { authorization: auth, apikey: request.headers.get('apikey') ?? '' },
    });
    return new Response(await res.text(), { status: res.status, headers: { 'content-type': 'application/json' } });
  },
};`;

/** Reads every todo with the service key the function finds in its env. */
const ALL_TODOS_TS = `
interface Env { SUPABASE_URL: string; SUPABASE_SERVICE_ROLE_KEY: string }
export default {
  async fetch(_request: Request, env: Env): Promise<Response> {
    const key = env.SUPABASE_SERVICE_ROLE_KEY;
    const res = await fetch(env.SUPABASE_URL + '/rest/v1/todos?select=title&order=title', { headers: { authorization: 'Bearer ' + key, apikey: key } });
    return new Response(await res.text(), { status: res.status, headers: { 'content-type': 'application/json' } });
  },
};`;

const OUTSIDE_TS = `
export default {
  async fetch(request: Request): Promise<Response> {
    const target = new URL(request.url).searchParams.get('target')!;
    try {
      const res = await fetch(target);
      return new Response('reached ' + res.status);
    } catch (err) {
      return new Response('refused: ' + (err as Error).message, { status: 502 });
    }
  },
};`;

describe('functions.invoke with unmodified supabase-js (spec §9.2 checks 63-69)', () => {
  let w: RestWorld;
  let admin: FunctionsAdmin;

  beforeAll(async () => {
    w = await startRestWorld(undefined, { FUNCTIONS_MEMORY_MB: '16', FUNCTIONS_WORKERS: '2' });
    admin = new FunctionsAdmin(w.t);
    await admin.deploy('echo', ECHO_TS, 'application/typescript');
    await admin.deploy('throws', 'export default { fetch() { throw new Error("boom") } }', 'application/javascript');
    await admin.deploy('bad', 'export default { fetch() { return Response.json({ error: "bad" }, { status: 400 }) } }', 'application/javascript');
    await admin.deploy('strict', 'export default { fetch() { return new Response("in") } }', 'application/javascript');
    await admin.deploy('binary', await wat(cgiWat('Content-Type: application/octet-stream\n\n\u0000\u0001\u0002\u007f')), 'application/wasm');
    await admin.deploy('my-todos', MY_TODOS_TS, 'application/typescript');
    await admin.deploy('all-todos', ALL_TODOS_TS, 'application/typescript');
    await admin.deploy('outside', OUTSIDE_TS, 'application/typescript', '?verify_jwt=false');
    await admin.deploy('boot', 'throw new Error("at load")', 'application/javascript');
    await admin.deploy('no-handler', 'export const x = 1', 'application/javascript');
    await admin.deploy('greedy', 'export default { fetch() { const a = []; for (let i = 0; i < 8; i++) a.push(new Uint8Array(8 * 1024 * 1024)); return new Response(String(a.length)); } }', 'application/javascript');
    await admin.deploy('spin', 'export default { fetch() { for (;;) {} } }', 'application/javascript', '?timeout_ms=500');
  });
  afterAll(() => w?.stop());

  it('63: a JSON body comes back as data; the function saw application/json and the Bearer token', async () => {
    const { data, error } = await w.u1.functions.invoke('echo', { body: { name: 'x' } });
    expect(error).toBeNull();
    expect(data.body).toEqual({ name: 'x' });
    expect(data.method).toBe('POST');
    expect(data.headers['content-type']).toBe('application/json');
    expect(data.headers.authorization).toMatch(/^Bearer ey/);
    const { data: claims } = await w.u1.functions.invoke('echo', { body: { name: 'x' } });
    const token = (claims.headers.authorization as string).slice(7);
    expect(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).sub).toBe(U1);
  });

  it('64: a string body is sent as text/plain and a text answer comes back as a string', async () => {
    const { data, error } = await w.u1.functions.invoke('echo', { body: 'plain' });
    expect(error).toBeNull();
    expect(data).toBe('text:plain:text/plain');
  });

  it('65: method and custom headers reach the function', async () => {
    const { data, error } = await w.u1.functions.invoke('echo', { method: 'GET', headers: { 'x-test': '1' } });
    expect(error).toBeNull();
    expect(data.method).toBe('GET');
    expect(data.headers['x-test']).toBe('1');
  });

  it('sub-paths and queries in the name reach the function', async () => {
    const { data } = await w.u1.functions.invoke('echo/items/7?sort=asc', { method: 'GET' });
    expect(data.path).toBe('/functions/v1/echo/items/7');
    expect(data.query).toBe('?sort=asc');
  });

  it('66: an unknown function is a FunctionsHttpError with status 404', async () => {
    const { data, error } = await w.u1.functions.invoke('missing');
    expect(data).toBeNull();
    expect(error?.name).toBe('FunctionsHttpError');
    expect((error as FunctionsHttpError).context.status).toBe(404);
  });

  it('67: a function that throws is 500; a 400 JSON answer reaches error.context', async () => {
    const thrown = await w.u1.functions.invoke('throws');
    expect(thrown.error?.name).toBe('FunctionsHttpError');
    expect((thrown.error as FunctionsHttpError).context.status).toBe(500);
    expect(await (thrown.error as FunctionsHttpError).context.json()).toMatchObject({ code: 'WORKER_ERROR' });
    const bad = await w.u1.functions.invoke('bad');
    expect((bad.error as FunctionsHttpError).context.status).toBe(400);
    expect(await (bad.error as FunctionsHttpError).context.json()).toEqual({ error: 'bad' });
  });

  it('68: a verify-JWT function called with a garbage Bearer is 401', async () => {
    const { error } = await w.as('garbage').functions.invoke('strict');
    expect(error?.name).toBe('FunctionsHttpError');
    expect((error as FunctionsHttpError).context.status).toBe(401);
    expect(await (error as FunctionsHttpError).context.json()).toEqual({ code: 401, message: 'Invalid JWT' });
    // The anon key passes.
    expect((await w.anon.functions.invoke('strict')).data).toBe('in');
  });

  it('69: an application/octet-stream answer is a Blob with the same bytes', async () => {
    const { data, error } = await w.u1.functions.invoke('binary');
    expect(error).toBeNull();
    expect(data).toBeInstanceOf(Blob);
    expect([...new Uint8Array(await (data as Blob).arrayBuffer())]).toEqual([0, 1, 2, 127]);
  });

  it("a TypeScript function calling /rest/v1 with the caller's token sees only the caller's rows", async () => {
    await w.admin.query(`insert into todos (title, owner) values ('u1 a', $1), ('u1 b', $1), ('u2 a', $2)`, [U1, U2]);
    const mine = await w.u1.functions.invoke('my-todos');
    expect(mine.error).toBeNull();
    expect(mine.data).toEqual([{ title: 'u1 a', owner: U1 }, { title: 'u1 b', owner: U1 }]);
    const theirs = await w.u2.functions.invoke('my-todos');
    expect(theirs.data).toEqual([{ title: 'u2 a', owner: U2 }]);
    const anon = await w.anon.functions.invoke('my-todos');
    expect(anon.data).toEqual([]);
    // With the service key from env, the function sees every row whoever calls it.
    const all = await w.u2.functions.invoke('all-todos');
    expect(all.data).toEqual([{ title: 'u1 a' }, { title: 'u1 b' }, { title: 'u2 a' }]);
  });

  it('a function cannot reach an address outside its allow-list', async () => {
    const own = await fetch(`${w.t.url}/functions/v1/outside?target=${encodeURIComponent(`${w.t.url}/rest/v1/notes`)}`);
    expect(await own.text()).toBe('reached 401');
    for (const target of ['http://127.0.0.1:6379/', 'http://169.254.169.254/latest/meta-data', `http://localhost:${w.t.port}/rest/v1/notes`, 'file:///etc/passwd']) {
      const res = await fetch(`${w.t.url}/functions/v1/outside?target=${encodeURIComponent(target)}`);
      expect(res.status, target).toBe(502);
      expect(await res.text(), target).toMatch(/^refused: .*not allowed/);
    }
  });

  it('a script that fails at load, or has no fetch handler, is 503 BOOT_ERROR', async () => {
    for (const name of ['boot', 'no-handler']) {
      const { error } = await w.anon.functions.invoke(name);
      expect((error as FunctionsHttpError).context.status, name).toBe(503);
      expect(await (error as FunctionsHttpError).context.json()).toMatchObject({ code: 'BOOT_ERROR' });
    }
  });

  it('a JavaScript function over its memory cap or its time budget is 546, and the next call works', async () => {
    const greedy = await w.anon.functions.invoke('greedy');
    expect((greedy.error as FunctionsHttpError).context.status).toBe(546);
    const spin = await w.anon.functions.invoke('spin');
    expect((spin.error as FunctionsHttpError).context.status).toBe(546);
    expect(await (spin.error as FunctionsHttpError).context.json()).toMatchObject({ code: 'WORKER_LIMIT' });
    expect((await w.anon.functions.invoke('strict')).data).toBe('in');
  });
});
