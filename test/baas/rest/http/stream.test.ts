/**
 * /rest/v1 transactions and large answers: a result far larger than what Node may hold arrives complete and in
 * order while a slow client makes Postgres wait (backpressure reaches the database socket); the read-only and
 * implicit transactions; which roles a token may name.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAM_AFTER_BYTES, streamStats } from '../../../../src/baas/rest/http/stream.js';
import { startRestWorld, until, type RestWorld } from './support.js';

let w: RestWorld;
const BIG_ROWS = 150_000;

beforeAll(async () => {
  w = await startRestWorld();
  await w.admin.query(`
    create table big (id int primary key, label text);
    insert into big select g, repeat(md5(g::text), 4) from generate_series(1, ${BIG_ROWS}) g;
    create table hits (n int);
    create function bump() returns int language sql volatile as 'insert into hits values (1) returning n';
    create role reporter nologin noinherit;
    grant usage on schema public to reporter;
    grant select on notes to reporter;
    notify pgrst`);
  await until(async () => (await w.svc.from('big').select('id').eq('id', 1)).status === 200, 'big');
}, 60_000);
afterAll(async () => w?.stop());

/** A GET whose body the test reads when it wants to: the response stream starts paused. */
function pausedGet(path: string, key: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${w.t.url}/rest/v1${path}`, { headers: { apikey: key } }, (res) => {
      res.pause();
      resolve(res);
    });
    req.on('error', reject);
  });
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.resume();
  });
}

describe('large answers', () => {
  it('stream complete and in order while a slow client holds Postgres back, Node holding about one batch', async () => {
    streamStats.highWater = 0;
    const res = await pausedGet('/big?select=id,label&order=id', w.t.serviceKey);
    expect(res.statusCode).toBe(200);
    expect(res.headers['transfer-encoding']).toBe('chunked');
    // The client reads nothing: uWS reports backpressure, reading the database socket pauses, and the backend
    // running the statement waits to write (ClientWrite) instead of Node buffering the rest.
    await until(async () => {
      const { rows } = await w.admin.query(
        `select 1 from pg_stat_activity where application_name = 'performer' and wait_event = 'ClientWrite' and query like '%"big"%'`,
      );
      return rows.length === 1;
    }, 'Postgres to wait on the paused client');
    expect(streamStats.highWater).toBeLessThan(1_000_000);
    const text = await readAll(res);
    const rows = JSON.parse(text) as Array<{ id: number; label: string }>;
    expect(text.length).toBeGreaterThan(20 * STREAM_AFTER_BYTES);
    expect(rows).toHaveLength(BIG_ROWS);
    expect(rows.every((r, i) => r.id === i + 1)).toBe(true);
    const { rows: sample } = await w.admin.query(`select id, label from big where id in (1, 77777, ${BIG_ROWS}) order by id`);
    expect([rows[0], rows[77776], rows[BIG_ROWS - 1]]).toEqual(sample);
    expect(streamStats.highWater).toBeLessThan(1_000_000);
  });

  it('sends small answers whole, with Content-Length, and a large CSV streamed with its header once', async () => {
    const small = await fetch(`${w.t.url}/rest/v1/big?select=id&id=lte.3`, { headers: { apikey: w.t.serviceKey } });
    const text = await small.text();
    expect(small.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    expect(small.headers.get('transfer-encoding')).toBeNull();
    expect(JSON.parse(text)).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    const csv = await fetch(`${w.t.url}/rest/v1/big?select=id&order=id`, { headers: { apikey: w.t.serviceKey, accept: 'text/csv' } });
    const lines = (await csv.text()).split('\n');
    expect(lines).toHaveLength(BIG_ROWS + 1);
    expect([lines[0], lines[1], lines[BIG_ROWS]]).toEqual(['id', '1', String(BIG_ROWS)]);
  });

  it('keeps serving after a client hangs up in the middle of a streamed answer', async () => {
    const res = await pausedGet('/big?select=id,label', w.t.serviceKey);
    res.destroy();
    await until(async () => (await w.svc.from('big').select('id').eq('id', 2)).status === 200, 'a next answer');
    const again = await w.svc.from('big').select('id', { count: 'exact', head: true });
    expect(again.count).toBe(BIG_ROWS);
  });
});

describe('transactions', () => {
  it('runs reads read-only: a GET calling a writing function is 405 25006 and writes nothing', async () => {
    const r = await fetch(`${w.t.url}/rest/v1/rpc/bump`, { headers: { apikey: w.t.serviceKey } });
    expect(r.status).toBe(405);
    expect(((await r.json()) as { code: string }).code).toBe('25006');
    const posted = await w.svc.rpc('bump');
    expect([posted.status, posted.data]).toEqual([200, 1]);
    expect((await w.admin.query('select count(*)::int as n from hits')).rows[0].n).toBe(1);
  });

  it('leaves nothing of a request on the pooled connection: role and claims are gone for the next one', async () => {
    await w.admin.query(`create or replace function whoami() returns text language sql stable as $$ select current_user || ':' || coalesce(current_setting('request.jwt.claims', true), '') $$; notify pgrst`);
    await until(async () => (await w.anon.rpc('whoami')).status === 200, 'whoami()');
    for (let i = 0; i < 5; i++) {
      const [u1, anon] = await Promise.all([w.u1.rpc('whoami'), w.anon.rpc('whoami')]);
      expect(String(u1.data)).toMatch(/^authenticated:\{.*"role":"authenticated"/);
      expect(String(anon.data)).toMatch(/^anon:\{.*"role":"anon"/);
    }
  });
});

describe('pool bound', () => {
  it('a burst never takes more than DB_POOL_SIZE connections: the rest wait or are shed with 503 + Retry-After', async () => {
    await w.admin.query(`create or replace function nap() returns int language sql as 'select 1 from pg_sleep(0.2)'; notify pgrst`);
    await until(async () => (await w.svc.rpc('nap')).status === 200, 'nap()');
    let most = 0;
    let done = false;
    const watch = (async () => {
      while (!done) {
        const { rows } = await w.admin.query(`select count(*)::int as n from pg_stat_activity where query like '%"nap"()%' and pid <> pg_backend_pid()`);
        most = Math.max(most, rows[0].n);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const answers = await Promise.all(
      Array.from({ length: 120 }, () => fetch(`${w.t.url}/rest/v1/rpc/nap`, { method: 'POST', headers: { apikey: w.t.serviceKey, 'content-type': 'application/json' }, body: '{}' })),
    );
    done = true;
    await watch;
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
    expect(answers.find((a) => a.status === 503)?.headers.get('retry-after')).toBe('1');
    expect(most).toBeGreaterThan(1);
    expect(most).toBeLessThanOrEqual(10); // DB_POOL_SIZE's default
  });
});

describe('the role claim', () => {
  const exp = () => Math.floor(Date.now() / 1000) + 600;

  it('refuses a role the authenticator role does not belong to, as SET ROLE would (postgres, supabase_admin)', async () => {
    const postgres = await w.as(await w.t.sign({ role: 'postgres', exp: exp() })).from('notes').select();
    expect(postgres.status).toBe(403);
    expect(postgres.error).toMatchObject({ code: '42501', message: 'permission denied to set role "postgres"' });
    const admin = await w.as(await w.t.sign({ role: 'supabase_admin', exp: exp() })).from('notes').select();
    expect(admin.status).toBe(401);
    expect(admin.error).toMatchObject({ code: '22023', message: 'role "supabase_admin" does not exist' });
  });

  it('takes a role granted to authenticator, and refuses it again once revoked', async () => {
    const token = await w.t.sign({ role: 'reporter', exp: exp() });
    expect((await w.as(token).from('notes').select('id').eq('id', 1)).status).toBe(403);
    await w.admin.query('grant reporter to authenticator');
    expect((await w.as(token).from('notes').select('id').eq('id', 1)).data).toEqual([{ id: 1 }]);
    await w.admin.query('revoke reporter from authenticator');
    expect((await w.as(token).from('notes').select('id').eq('id', 1)).status).toBe(403);
  });
});
