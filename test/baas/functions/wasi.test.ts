import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../support/server.js';
import { cgiWat, ECHO_WAT, FunctionsAdmin, wat } from './support.js';

describe('functions: WASI modules through the gateway', () => {
  let t: TestServer;
  let admin: FunctionsAdmin;

  beforeAll(async () => {
    t = await startTestServer({ FUNCTIONS_TIMEOUT_MS: '1500', FUNCTIONS_MEMORY_MB: '8', FUNCTIONS_WORKERS: '3' });
    admin = new FunctionsAdmin(t);
    await admin.deploy('echo', await wat(ECHO_WAT), 'application/wasm');
    await admin.deploy('open', await wat(ECHO_WAT), 'application/wasm', '?verify_jwt=false');
    await admin.deploy('trap', await wat('(module (memory (export "memory") 1) (func (export "_start") unreachable))'), 'application/wasm');
    await admin.deploy('exit1', await wat(cgiWat('Content-Type: text/plain\n\nnever', '(call $proc_exit (i32.const 1))')), 'application/wasm');
    await admin.deploy('loop', await wat('(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))'), 'application/wasm');
    await admin.deploy(
      'hog',
      await wat('(module (memory (export "memory") 1) (func (export "_start") (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable))'),
      'application/wasm',
    );
    await admin.deploy('big', await wat('(module (memory (export "memory") 1000) (func (export "_start")))'), 'application/wasm');
    await admin.deploy('broken', Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff]), 'application/wasm');
    await admin.deploy('unlinkable', await wat('(module (import "env" "nope" (func)) (memory (export "memory") 1) (func (export "_start")))'), 'application/wasm');
    await admin.deploy('large', await wat(cgiWat(`Content-Type: text/plain\n\n${'y'.repeat(200)}`)), 'application/wasm', '?verify_jwt=false');
    await admin.deploy('bad400', await wat(cgiWat('Status: 400 Bad Request\nContent-Type: application/json\n\n{"error":"bad"}')), 'application/wasm');
  });
  afterAll(() => t?.stop());

  const call = (name: string, init: RequestInit = {}, key = t.anonKey) =>
    fetch(`${t.url}/functions/v1/${name}`, { ...init, headers: { apikey: key, authorization: `Bearer ${key}`, ...(init.headers ?? {}) } });

  it('passes method, sub-path, query, headers and body the WAGI way and answers in CGI form', async () => {
    const res = await call('echo/a/b?x=1&y=2', { method: 'PUT', body: '{"a":1}', headers: { 'content-type': 'application/json', 'x-test': 'yes' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-method')).toBe('PUT');
    expect(res.headers.get('x-path')).toBe('/a/b');
    expect(res.headers.get('x-query')).toBe('x=1&y=2');
    expect(res.headers.get('x-test')).toBe('yes');
    expect(res.headers.get('x-authorization')).toBe(`Bearer ${t.anonKey}`);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(await res.text()).toBe('{"a":1}');
  });

  it('answers the status table of spec §5.3', async () => {
    const missing = await call('missing');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ code: 'NOT_FOUND', message: 'Requested function was not found' });
    const garbage = await call('echo', {}, 'garbage');
    expect(garbage.status).toBe(401);
    expect(await garbage.json()).toEqual({ code: 401, message: 'Invalid JWT' });
    const none = await fetch(`${t.url}/functions/v1/echo`, { method: 'POST' });
    expect(none.status).toBe(401);
    // verify_jwt=false: no token needed, a bad one does not matter.
    expect((await fetch(`${t.url}/functions/v1/open`, { method: 'POST', headers: { authorization: 'Bearer garbage' } })).status).toBe(200);
    const trap = await call('trap');
    expect(trap.status).toBe(500);
    expect(((await trap.json()) as { code: string }).code).toBe('WORKER_ERROR');
    expect((await call('exit1')).status).toBe(500);
    const broken = await call('broken');
    expect(broken.status).toBe(503);
    expect(await broken.json()).toEqual({ code: 'BOOT_ERROR', message: 'Function failed to start (please check logs)' });
    expect((await call('unlinkable')).status).toBe(503);
    const bad = await call('bad400');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'bad' });
  });

  it('answers a CORS preflight itself', async () => {
    const res = await fetch(`${t.url}/functions/v1/missing`, { method: 'OPTIONS', headers: { origin: 'http://app.example', 'access-control-request-method': 'POST' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toContain('x-client-info');
  });

  it('stops a module that grows past its memory cap with 546, and one whose initial memory is over it', async () => {
    const hog = await call('hog');
    expect(hog.status).toBe(546);
    expect(((await hog.json()) as { code: string }).code).toBe('WORKER_LIMIT');
    expect((await call('big')).status).toBe(546);
  });

  it('stops an infinite loop at its budget while 20 other invocations in parallel finish correctly', async () => {
    const looping = call('loop');
    const others = Array.from({ length: 20 }, (_, i) => call(`echo?i=${i}`, { method: 'POST', body: `body ${i}`, headers: { 'content-type': 'text/plain' } }));
    const results = await Promise.all(others);
    for (const [i, res] of results.entries()) {
      expect(res.status).toBe(200);
      expect(res.headers.get('x-query')).toBe(`i=${i}`);
      expect(await res.text()).toBe(`body ${i}`);
    }
    const stopped = await looping;
    expect(stopped.status).toBe(546);
    expect(await stopped.json()).toMatchObject({ code: 'WORKER_LIMIT' });
    // The next invocation works, on a fresh worker.
    expect((await call('echo', { method: 'POST', body: 'after' })).status).toBe(200);
  });

  it('refuses a request body over the cap with 413 before running anything, and a response body over it with 546', async () => {
    const server = await startTestServer({ FUNCTIONS_MAX_BODY_BYTES: '100' }, t.db);
    try {
      const res = await fetch(`${server.url}/functions/v1/echo`, { method: 'POST', body: 'x'.repeat(101), headers: { apikey: t.anonKey, authorization: `Bearer ${t.anonKey}` } });
      expect(res.status).toBe(413);
      expect((await fetch(`${t.url}/functions/v1/large`)).status).toBe(200);
      const large = await fetch(`${server.url}/functions/v1/large`);
      expect(large.status).toBe(546);
      expect(((await large.json()) as { code: string }).code).toBe('WORKER_LIMIT');
    } finally {
      await server.server.stop();
    }
  });
});
