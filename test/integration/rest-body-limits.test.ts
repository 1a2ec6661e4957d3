import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawHttp } from '../support/raw-http.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Upstream's Plug.Parsers limit: bodies past it are refused with 413 before any route runs.
const LIMIT = 8_000_000;
const TOO_LARGE_HTML = { status: 413, type: 'text/html; charset=utf-8', body: 'Request Entity Too Large' };

let t: TestServer;
beforeAll(async () => {
  // A payload limit above the body limit, so a body just under it is a valid single broadcast.
  t = await startTestServer({ TENANT_MAX_PAYLOAD_SIZE_IN_KB: '9000' });
});
afterAll(async () => {
  await t?.stop();
});

function head(path: string, headers: Record<string, string>): string {
  const lines = Object.entries({ host: `127.0.0.1:${t.port}`, authorization: `Bearer ${t.serviceKey}`, 'content-type': 'application/json', ...headers });
  return `POST ${path} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
}

const summary = (r: { status: number; headers: Record<string, string>; body: string }) => ({ status: r.status, type: r.headers['content-type'], body: r.body });

describe('REST request bodies are bounded before they are read', () => {
  it('answers a body announced over the limit with 413 before it is sent, and closes the connection', async () => {
    for (const path of ['/api/broadcast', '/api/broadcast/room/events/e']) {
      const c = await RawHttp.connect(t.port);
      // 60 MB announced, one kilobyte sent: the answer must not wait for the rest.
      await c.write(head(path, { 'content-length': String(60_000_000) }) + '{"messages":['.padEnd(1024, ' '));
      expect(summary(await c.response())).toEqual(TOO_LARGE_HTML);
      await c.closed;
    }
  });

  it('answers in JSON when the Accept header asks for it, as Phoenix renders its error page', async () => {
    const c = await RawHttp.connect(t.port);
    await c.write(head('/api/broadcast', { 'content-length': String(LIMIT + 1), accept: 'application/json' }));
    expect(summary(await c.response())).toEqual({ status: 413, type: 'application/json; charset=utf-8', body: '"Request Entity Too Large"' });
    c.destroy();
  });

  it('refuses before the tenant and the token are looked at, as upstream parses the body first', async () => {
    const c = await RawHttp.connect(t.port);
    await c.write(head('/api/broadcast', { 'content-length': String(LIMIT + 1), host: `unknown.localhost:${t.port}`, authorization: 'Bearer nope' }));
    expect(summary(await c.response())).toEqual(TOO_LARGE_HTML);
    c.destroy();
  });

  it('cuts a chunked body off as soon as it passes the limit', async () => {
    const c = await RawHttp.connect(t.port);
    await c.write(head('/api/broadcast', { 'transfer-encoding': 'chunked' }));
    const chunk = Buffer.alloc(1_000_000, 0x20);
    for (let sent = 0; sent < LIMIT; sent += chunk.length) await c.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    // One byte more, and no final chunk: only the running total can tell the server to stop.
    await c.write('1\r\n ');
    expect(summary(await c.response())).toEqual(TOO_LARGE_HTML);
    await c.closed;
  });

  it('takes a body of exactly the limit', async () => {
    const payload = JSON.stringify({ blob: 'x'.repeat(LIMIT - 11) });
    expect(Buffer.byteLength(payload)).toBe(LIMIT);
    const res = await fetch(`${t.url}/api/broadcast/room/events/e`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.serviceKey}`, 'content-type': 'application/json' },
      body: payload,
    });
    expect(res.status).toBe(202);
  });

  it('bounds the management API body too (413 before its token is checked)', async () => {
    const c = await RawHttp.connect(t.port);
    await c.write(head('/api/tenants', { 'content-length': String(2 * 1024 * 1024), authorization: 'Bearer nope' }) + '{"tenant":');
    expect(summary(await c.response())).toEqual(TOO_LARGE_HTML);
    await c.closed;
  });
});

describe('REST payload nesting', () => {
  it('refuses a batch payload nested 20,000 levels deep with 422 for that message, and keeps the tenant healthy', async () => {
    const deep = '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000);
    const body = `{"messages":[{"topic":"t","event":"e","payload":{"ok":1}},{"topic":"t","event":"e","payload":${deep}}]}`;
    const res = await fetch(`${t.url}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.serviceKey}`, 'content-type': 'application/json' },
      body,
    });
    expect([res.status, await res.json()]).toEqual([422, { errors: { messages: [{}, { payload: ['is nested more than 1000 levels deep'] }] } }]);
    expect(t.server.ctx.registry.supervisor(t.server.ctx.config.tenantId)?.state).toBe('ready');
  });
});
