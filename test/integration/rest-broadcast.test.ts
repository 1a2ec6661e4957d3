import http from 'node:http';
import type { RealtimeChannel } from '@supabase/supabase-js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { subscribed, until } from '../support/channels.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.stop();
});

const BATCH = '/api/broadcast';
const single = (topic: string, event: string, query = '') =>
  `/api/broadcast/${encodeURIComponent(topic)}/events/${encodeURIComponent(event)}${query}`;
const UUID = '4f3c1f0e-0b5e-4a8e-9a43-2a1c7e1f9d10';
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

interface PostOptions {
  server?: TestServer;
  body?: string | Uint8Array;
  /** Replaces the default `Authorization: Bearer <service key>`; `null` sends no Authorization header. */
  authorization?: string | null;
  headers?: Record<string, string>;
}

/** POST with fetch: JSON content type and the service key by default. */
async function post(path: string, opts: PostOptions = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const server = opts.server ?? t;
  const headers: Record<string, string> = { 'content-type': 'application/json', ...opts.headers };
  const auth = opts.authorization === undefined ? `Bearer ${server.serviceKey}` : opts.authorization;
  if (auth !== null) headers.authorization = auth;
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers, body: opts.body });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const json = (text: string): unknown => JSON.parse(text);
const batch = (...messages: unknown[]) => JSON.stringify({ messages });

/** A request with a chosen Host header (fetch does not let a caller set Host). */
function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: t.port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

type Received = { event: string; payload: unknown; type: string; meta?: unknown };

function collect(channel: RealtimeChannel, event = '*'): Received[] {
  const got: Received[] = [];
  channel.on('broadcast', { event }, (m) => got.push(m as Received));
  return got;
}

/** A supabase-js channel subscribed on the given protocol version, with everything it receives. */
async function supabaseSub(topic: string, vsn: '1.0.0' | '2.0.0', server = t): Promise<Received[]> {
  const channel = server.client({ vsn }).channel(topic);
  const got = collect(channel);
  expect(await subscribed(channel)).toBe('SUBSCRIBED');
  return got;
}

/** A raw socket joined to `realtime:<topic>`, for exact frames. */
async function rawSub(topic: string, vsn: '1.0.0' | '2.0.0', server = t): Promise<RawClient> {
  const c = await RawClient.connect(`ws://127.0.0.1:${server.port}/socket/websocket?apikey=${server.anonKey}&vsn=${vsn}`);
  if (vsn === '2.0.0') {
    c.send(['1', '1', `realtime:${topic}`, 'phx_join', { config: {} }]);
    expect((await c.reply('1'))[4]).toMatchObject({ status: 'ok' });
  } else {
    c.send(JSON.stringify({ topic: `realtime:${topic}`, event: 'phx_join', payload: { config: {} }, ref: '1' }));
    expect(await c.nextText((m) => (m as { event: string }).event === 'phx_reply')).toMatchObject({ payload: { status: 'ok' } });
  }
  return c;
}

/** Decodes a V2 kind-4 (user broadcast) binary frame. */
function decodeUserBroadcast(frame: Buffer): { topic: string; event: string; meta: string; encoding: number; payload: Buffer } {
  expect(frame[0]).toBe(4);
  const [tl, el, ml, encoding] = [frame[1], frame[2], frame[3], frame[4]];
  let off = 5;
  const take = (n: number) => frame.subarray(off, (off += n));
  return { topic: take(tl).toString(), event: take(el).toString(), meta: take(ml).toString(), encoding, payload: frame.subarray(off) };
}

const isBinary = (f: string | Buffer) => typeof f !== 'string';

describe('POST /api/broadcast (batch)', () => {
  it('answers 202 with an empty body and delivers to V1 and V2 subscribers, with meta.id when an id was given', async () => {
    const v2 = await supabaseSub('batch-a', '2.0.0');
    const v1 = await supabaseSub('batch-a', '1.0.0');
    const res = await post(BATCH, {
      body: batch(
        { topic: 'batch-a', event: 'cursor', payload: { x: 1 } },
        { topic: 'batch-a', event: 'cursor', payload: { x: 2 }, id: UUID, private: false },
      ),
    });
    expect(res.status).toBe(202);
    expect(res.text).toBe('');
    await until(() => v2.length === 2 && v1.length === 2);
    for (const got of [v2, v1]) {
      expect(got[0]).toEqual({ event: 'cursor', payload: { x: 1 }, type: 'broadcast' });
      expect(got[1]).toEqual({ event: 'cursor', payload: { x: 2 }, type: 'broadcast', meta: { id: UUID } });
    }
  });

  it('sends the exact upstream frames to raw V2 and V1 sockets', async () => {
    const v2 = await rawSub('batch-raw', '2.0.0');
    const v1 = await rawSub('batch-raw', '1.0.0');
    expect((await post(BATCH, { body: batch({ topic: 'batch-raw', event: 'e', payload: { a: [1, 'b'] }, id: UUID }) })).status).toBe(202);
    const body = { event: 'e', meta: { id: UUID }, payload: { a: [1, 'b'] }, type: 'broadcast' };
    expect(await v2.nextText()).toEqual([null, null, 'realtime:batch-raw', 'broadcast', body]);
    expect(await v1.nextText()).toEqual({ topic: 'realtime:batch-raw', event: 'broadcast', payload: body, ref: null });
    v2.close();
    v1.close();
  });

  it('routes each message of a batch to its own topic only', async () => {
    const a = await supabaseSub('route-a', '2.0.0');
    const b = await supabaseSub('route-b', '2.0.0');
    const res = await post(BATCH, {
      body: batch(
        { topic: 'route-a', event: 'one', payload: { to: 'a' } },
        { topic: 'route-b', event: 'two', payload: { to: 'b' } },
        { topic: 'route-a', event: 'three', payload: { to: 'a' } },
      ),
    });
    expect(res.status).toBe(202);
    await until(() => a.length === 2 && b.length === 1);
    expect(a.map((m) => m.event)).toEqual(['one', 'three']);
    expect(b.map((m) => m.payload)).toEqual([{ to: 'b' }]);
  });

  it('answers 422 with one error entry per message, in order, and broadcasts none of them', async () => {
    const got = await supabaseSub('invalid-batch', '2.0.0');
    const res = await post(BATCH, {
      body: batch(
        { topic: 'invalid-batch' },
        { topic: 'invalid-batch', event: 'ok', payload: { fine: true } },
        { event: 'e', payload: {} },
        { topic: 'invalid-batch', event: 'e', payload: {}, id: 'not-a-uuid' },
        { topic: 'invalid-batch', event: 'e', payload: 'a string' },
        { topic: '', event: '', payload: null },
      ),
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(json(res.text)).toEqual({
      errors: {
        messages: [
          { event: ["can't be blank"], payload: ["can't be blank"] },
          {},
          { topic: ["can't be blank"] },
          { id: ['is invalid'] },
          { payload: ['is invalid'] },
          { topic: ["can't be blank"], event: ["can't be blank"], payload: ["can't be blank"] },
        ],
      },
    });
    // A valid message afterwards is the only thing the subscriber ever sees.
    expect((await post(BATCH, { body: batch({ topic: 'invalid-batch', event: 'marker', payload: {} }) })).status).toBe(202);
    await until(() => got.length >= 1);
    expect(got.map((m) => m.event)).toEqual(['marker']);
  });

  it('reports wrong types as "is invalid" and whitespace-only strings as blank, as Ecto casts them', async () => {
    const res = await post(BATCH, {
      body: batch({ topic: 123, event: 'e', payload: {} }, { topic: 'x', event: '   ', payload: {} }, { topic: 'x', event: 'e', payload: {}, private: 'maybe' }),
    });
    expect(res.status).toBe(422);
    expect(json(res.text)).toEqual({
      errors: { messages: [{ topic: ['is invalid'] }, { event: ["can't be blank"] }, { private: ['is invalid'] }] },
    });
    // embeds_many given something other than a list.
    const notAList = await post(BATCH, { body: '{"messages":"hello"}' });
    expect([notAList.status, json(notAList.text)]).toEqual([422, { errors: { messages: ['is invalid'] } }]);
  });

  it.each([
    ['an empty object', '{}'],
    ['an empty list', '{"messages":[]}'],
    ['an empty body', ''],
  ])('answers 422 messages can\'t be blank for %s', async (_name, body) => {
    const res = await post(BATCH, { body });
    expect(res.status).toBe(422);
    expect(json(res.text)).toEqual({ errors: { messages: ["can't be blank"] } });
  });

  it('answers 422 Payload size exceeds tenant limit for an oversize payload', async () => {
    const small = await startTestServer({ TENANT_MAX_PAYLOAD_SIZE_IN_KB: '1' });
    try {
      const res = await post(BATCH, {
        server: small,
        body: batch({ topic: 'big', event: 'e', payload: { small: 1 } }, { topic: 'big', event: 'e', payload: { blob: 'x'.repeat(3000) } }),
      });
      expect(res.status).toBe(422);
      expect(json(res.text)).toEqual({ errors: { messages: [{}, { payload: ['Payload size exceeds tenant limit'] }] } });
      // Under the limit is fine on the same tenant.
      expect((await post(BATCH, { server: small, body: batch({ topic: 'big', event: 'e', payload: { blob: 'x'.repeat(500) } }) })).status).toBe(202);
    } finally {
      await small.stop();
    }
  });

  it('never delivers private messages to public subscribers of the same topic (still 202)', async () => {
    const got = await supabaseSub('priv-batch', '2.0.0');
    const res = await post(BATCH, {
      body: batch({ topic: 'priv-batch', event: 'secret', payload: { s: 1 }, private: true }, { topic: 'priv-batch', event: 'public', payload: {} }),
    });
    expect(res.status).toBe(202);
    await until(() => got.length >= 1);
    expect(got.map((m) => m.event)).toEqual(['public']);
  });
});

describe('authentication', () => {
  const body = batch({ topic: 'auth', event: 'e', payload: {} });

  it.each([
    ['no token at all', null, {}],
    ['a non-JWT bearer token', 'Bearer not-a-jwt', {}],
    ['an empty bearer', 'Bearer ', {}],
    ['a non-bearer scheme and no apikey', `Basic dXNlcjpwYXNz`, {}],
    ['a non-JWT apikey header', null, { apikey: 'not-a-jwt' }],
  ] as const)('answers 401 Unauthorized for %s', async (_name, authorization, headers) => {
    for (const path of [BATCH, single('auth', 'e')]) {
      const res = await post(path, { body, authorization, headers });
      expect([path, res.status, json(res.text)]).toEqual([path, 401, { message: 'Unauthorized' }]);
    }
  });

  it('answers 401 for expired tokens, bad signatures and tokens without role or exp', async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = [
      await t.sign({ role: 'service_role', exp: now - 10 }),
      await t.sign({ role: 'service_role', exp: inAnHour() }, 'another-secret-with-at-least-32-characters'),
      await t.sign({ exp: inAnHour() }),
      await t.sign({ role: 'service_role' }),
    ];
    for (const token of tokens) {
      const res = await post(BATCH, { body, authorization: `Bearer ${token}` });
      expect(res.status).toBe(401);
      expect(json(res.text)).toEqual({ message: 'Unauthorized' });
    }
  });

  it('accepts the Bearer scheme in any case, and the apikey header', async () => {
    for (const authorization of [`Bearer ${t.serviceKey}`, `bearer ${t.anonKey}`, `BEARER ${t.serviceKey}`]) {
      expect((await post(BATCH, { body, authorization })).status).toBe(202);
    }
    expect((await post(BATCH, { body, authorization: null, headers: { apikey: t.anonKey } })).status).toBe(202);
    expect((await post(single('auth', 'e'), { body: '{}', authorization: null, headers: { apikey: t.anonKey } })).status).toBe(202);
    // A non-Bearer Authorization header does not hide the apikey header.
    expect((await post(BATCH, { body, authorization: 'Basic dXNlcjpwYXNz', headers: { apikey: t.anonKey } })).status).toBe(202);
  });

  it('prefers the Authorization bearer token over the apikey header', async () => {
    expect((await post(BATCH, { body, headers: { apikey: 'not-a-jwt' } })).status).toBe(202);
    const res = await post(BATCH, { body, authorization: 'Bearer not-a-jwt', headers: { apikey: t.anonKey } });
    expect(res.status).toBe(401);
  });

  it('does not authenticate with an apikey in the query string alone', async () => {
    const res = await post(`${single('auth', 'e')}?apikey=${t.anonKey}&vsn=2.0.0`, { body: '{}', authorization: null });
    expect(res.status).toBe(401);
    expect(json(res.text)).toEqual({ message: 'Unauthorized' });
  });

  it('answers an unknown tenant host with 401 Tenant not found in database, on both routes', async () => {
    for (const path of [BATCH, single('x', 'e'), `/realtime/v1${BATCH}`]) {
      const res = await rawRequest('POST', path, {
        host: `nope.localhost:${t.port}`,
        authorization: `Bearer ${t.serviceKey}`,
        'content-type': 'application/json',
      }, body);
      expect([path, res.status, json(res.text)]).toEqual([path, 401, { message: 'Tenant not found in database' }]);
    }
  });

  it('serves the default tenant under its own subdomain host too', async () => {
    const res = await rawRequest('POST', BATCH, {
      host: `realtime-dev.localhost:${t.port}`,
      authorization: `Bearer ${t.serviceKey}`,
      'content-type': 'application/json',
    }, body);
    expect(res.status).toBe(202);
  });

  it('verifies RS256 tokens through the tenant JWKS by kid', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'rest-rsa' };
    const server = await startTestServer({ JWT_JWKS: JSON.stringify({ keys: [jwk] }) });
    try {
      const sign = (kid: string) => new SignJWT({ role: 'service_role', exp: inAnHour() }).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey);
      expect((await post(BATCH, { server, body, authorization: `Bearer ${await sign('rest-rsa')}` })).status).toBe(202);
      const unknownKid = await post(BATCH, { server, body, authorization: `Bearer ${await sign('other')}` });
      expect([unknownKid.status, json(unknownKid.text)]).toEqual([401, { message: 'Unauthorized' }]);
      // The secret keeps working next to the JWKS.
      expect((await post(BATCH, { server, body })).status).toBe(202);
    } finally {
      await server.stop();
    }
  });

  it('applies JWT_CLAIM_VALIDATORS to REST tokens', async () => {
    const server = await startTestServer({ JWT_CLAIM_VALIDATORS: JSON.stringify({ iss: 'supabase' }) });
    try {
      const withIss = await server.sign({ role: 'service_role', exp: inAnHour(), iss: 'supabase' });
      const wrongIss = await server.sign({ role: 'service_role', exp: inAnHour(), iss: 'someone-else' });
      expect((await post(BATCH, { server, body, authorization: `Bearer ${withIss}` })).status).toBe(202);
      expect((await post(BATCH, { server, body, authorization: `Bearer ${wrongIss}` })).status).toBe(401);
      // The helper's service key has no `iss` at all.
      expect((await post(BATCH, { server, body })).status).toBe(401);
    } finally {
      await server.stop();
    }
  });
});

describe('rate limiting', () => {
  const body = batch({ topic: 'rate', event: 'e', payload: {} });

  it('adds x-rate-rolling, x-rate-limit and x-rate-limit-remaining headers, even to refused requests', async () => {
    for (const [path, authorization] of [
      [BATCH, `Bearer ${t.serviceKey}`],
      [single('rate', 'e'), `Bearer ${t.serviceKey}`],
      [BATCH, 'Bearer not-a-jwt'],
    ] as const) {
      const res = await post(path, { body, authorization });
      const rolling = res.headers.get('x-rate-rolling');
      const limit = res.headers.get('x-rate-limit');
      const remaining = res.headers.get('x-rate-limit-remaining');
      expect([path, limit]).toEqual([path, '100']);
      expect(rolling).toMatch(/^\d+$/);
      expect(Number(remaining)).toBe(100 - Number(rolling));
    }
  });

  it('answers 429 Too many requests on every REST route when the tenant limit is 0', async () => {
    const zero = await startTestServer({ TENANT_MAX_EVENTS_PER_SECOND: '0' });
    try {
      for (const path of [BATCH, single('z', 'e'), `/realtime/v1${BATCH}`, `/realtime/v1${single('z', 'e')}`]) {
        const res = await post(path, { server: zero, body });
        expect([path, res.status, json(res.text)]).toEqual([path, 429, { message: 'Too many requests' }]);
        expect(res.headers.get('x-rate-limit')).toBe('0');
        expect(res.headers.get('x-rate-limit-remaining')).toBe('0');
      }
    } finally {
      await zero.stop();
    }
  });

  it('refuses a batch larger than the remaining event budget, then everything once the rate is exceeded', async () => {
    // A one-tick window, so the rate is what happened in the last second whatever the server's uptime.
    const five = await startTestServer({ TENANT_MAX_EVENTS_PER_SECOND: '5', RATE_COUNTER_TICK_MS: '1000', RATE_COUNTER_WINDOW_MS: '1000' });
    const subs: RawClient[] = [];
    try {
      const six = Array.from({ length: 6 }, (_, i) => ({ topic: 'budget', event: 'e', payload: { i } }));
      const tooBig = await post(BATCH, { server: five, body: batch(...six) });
      expect([tooBig.status, json(tooBig.text)]).toEqual([429, { message: 'Too many messages to broadcast, please reduce the batch size' }]);
      // Deliveries count as events: the first message reaches nine subscribers and puts the tenant over its limit
      // (the rest of the batch then shuts the channels down, as upstream does).
      for (let i = 0; i < 9; i++) subs.push(await rawSub('budget', '2.0.0', five));
      expect((await post(BATCH, { server: five, body: batch(...six.slice(0, 5)) })).status).toBe(202);
      for (const s of subs) await s.next((f) => typeof f === 'string' && f.includes('"i":0'));
      const over = await post(BATCH, { server: five, body: batch(six[0]) });
      expect([over.status, json(over.text)]).toEqual([429, { message: 'You have exceeded your rate limit' }]);
      const overSingle = await post(single('budget', 'e'), { server: five, body: '{}' });
      expect([overSingle.status, json(overSingle.text)]).toEqual([429, { message: 'You have exceeded your rate limit' }]);
    } finally {
      for (const s of subs) s.close();
      await five.stop();
    }
  });
});

describe('POST /api/broadcast/:topic/events/:event (single)', () => {
  it('answers 202 to a JSON body and delivers it to V2 and V1 subscribers as a broadcast', async () => {
    const v2 = await supabaseSub('single-json', '2.0.0');
    const v1 = await supabaseSub('single-json', '1.0.0');
    const res = await post(single('single-json', 'greet'), { body: JSON.stringify({ hello: 'world', n: [1, 2] }) });
    expect(res.status).toBe(202);
    expect(res.text).toBe('');
    await until(() => v2.length === 1 && v1.length === 1);
    for (const got of [v2, v1]) expect(got[0]).toMatchObject({ event: 'greet', payload: { hello: 'world', n: [1, 2] }, type: 'broadcast' });
  });

  it('sends V2 sockets a kind-4 JSON user broadcast without metadata, and V1 sockets the JSON broadcast', async () => {
    const v2 = await rawSub('single-raw', '2.0.0');
    const v1 = await rawSub('single-raw', '1.0.0');
    expect((await post(single('single-raw', 'ev'), { body: '{"k":"v"}' })).status).toBe(202);
    const frame = decodeUserBroadcast((await v2.next(isBinary)) as Buffer);
    expect(frame).toMatchObject({ topic: 'realtime:single-raw', event: 'ev', meta: '', encoding: 1 });
    expect(JSON.parse(frame.payload.toString())).toEqual({ k: 'v' });
    expect(await v1.nextText()).toEqual({
      topic: 'realtime:single-raw',
      event: 'broadcast',
      payload: { event: 'ev', payload: { k: 'v' }, type: 'broadcast' },
      ref: null,
    });
    v2.close();
    v1.close();
  });

  it.each([
    ['{}', 'accepts-1', '{}', {}],
    ['an empty body', 'accepts-2', '', {}],
    ['charset=utf-8', 'accepts-3', '{"c":1}', { 'content-type': 'application/json; charset=utf-8' }],
  ] as const)('accepts %s', async (_name, topic, body, headers) => {
    const v2 = await rawSub(topic, '2.0.0');
    const res = await post(single(topic, 'e'), { body, headers });
    expect(res.status).toBe(202);
    const frame = decodeUserBroadcast((await v2.next(isBinary)) as Buffer);
    expect(JSON.parse(frame.payload.toString())).toEqual(body === '' ? {} : JSON.parse(body));
    v2.close();
  });

  it('treats a body without a Content-Type header as JSON', async () => {
    const v2 = await rawSub('no-content-type', '2.0.0');
    const res = await rawRequest('POST', single('no-content-type', 'e'), { authorization: `Bearer ${t.serviceKey}` }, '{"bare":true}');
    expect(res.status).toBe(202);
    const frame = decodeUserBroadcast((await v2.next(isBinary)) as Buffer);
    expect([frame.encoding, JSON.parse(frame.payload.toString())]).toEqual([1, { bare: true }]);
    v2.close();
  });

  it('works for a topic with ":" in it, URL-encoded in the path', async () => {
    const got = await supabaseSub('room:123:chat', '2.0.0');
    const res = await post(`/api/broadcast/${encodeURIComponent('room:123:chat')}/events/${encodeURIComponent('new message')}`, { body: '{"m":1}' });
    expect(res.status).toBe(202);
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ event: 'new message', payload: { m: 1 } });
  });

  it('delivers application/octet-stream bodies byte for byte to V2 only', async () => {
    const v2 = await supabaseSub('single-bin', '2.0.0');
    const v1 = await supabaseSub('single-bin', '1.0.0');
    const raw = await rawSub('single-bin', '2.0.0');
    const bytes = Uint8Array.from([0, 1, 2, 250, 255, 128, 10, 13]);
    const res = await post(single('single-bin', 'blob'), { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(202);
    // A JSON marker afterwards: V1 sees it and nothing before it.
    expect((await post(single('single-bin', 'after'), { body: '{"marker":true}' })).status).toBe(202);
    await until(() => v2.length === 2 && v1.length === 1);
    expect(v2[0].event).toBe('blob');
    expect(v2[0].payload).toBeInstanceOf(ArrayBuffer);
    expect(new Uint8Array(v2[0].payload as ArrayBuffer)).toEqual(bytes);
    expect(v1.map((m) => m.event)).toEqual(['after']);
    const frame = decodeUserBroadcast((await raw.next(isBinary)) as Buffer);
    expect(frame).toMatchObject({ topic: 'realtime:single-bin', event: 'blob', meta: '', encoding: 0 });
    expect(new Uint8Array(frame.payload)).toEqual(bytes);
    raw.close();
  });

  it('accepts an empty octet-stream body', async () => {
    const raw = await rawSub('single-bin-empty', '2.0.0');
    const res = await post(single('single-bin-empty', 'nothing'), { body: new Uint8Array(0), headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(202);
    const frame = decodeUserBroadcast((await raw.next(isBinary)) as Buffer);
    expect(frame).toMatchObject({ event: 'nothing', encoding: 0 });
    expect(frame.payload.length).toBe(0);
    raw.close();
  });

  it.each(['text/plain', 'application/xml', 'multipart/form-data; boundary=x'])('answers 415 to content type %s', async (contentType) => {
    const res = await post(single('ct', 'e'), { body: '{}', headers: { 'content-type': contentType } });
    expect(res.status).toBe(415);
    expect(json(res.text)).toEqual({ error: 'Unsupported Media Type. Use application/json or application/octet-stream' });
  });

  it('answers 422 Payload size exceeds tenant limit for JSON and binary bodies over the limit', async () => {
    const small = await startTestServer({ TENANT_MAX_PAYLOAD_SIZE_IN_KB: '1' });
    try {
      const big = JSON.stringify({ blob: 'x'.repeat(3000) });
      const asJson = await post(single('big', 'e'), { server: small, body: big });
      expect([asJson.status, json(asJson.text)]).toEqual([422, { errors: { payload: ['Payload size exceeds tenant limit'] } }]);
      const asBinary = await post(single('big', 'e'), { server: small, body: new Uint8Array(3000), headers: { 'content-type': 'application/octet-stream' } });
      expect([asBinary.status, json(asBinary.text)]).toEqual([422, { errors: { payload: ['Payload size exceeds tenant limit'] } }]);
      expect((await post(single('big', 'e'), { server: small, body: JSON.stringify({ blob: 'x'.repeat(300) }) })).status).toBe(202);
    } finally {
      await small.stop();
    }
  });

  it('tolerates the apikey and vsn query parameters realtime-js adds', async () => {
    const got = await supabaseSub('with-query', '2.0.0');
    const res = await post(single('with-query', 'q', `?apikey=${t.anonKey}&vsn=2.0.0`), { body: '{"q":1}' });
    expect(res.status).toBe(202);
    await until(() => got.length === 1);
    expect(got[0]).toMatchObject({ event: 'q', payload: { q: 1 } });
  });

  it('answers 403 Unauthorized to a private broadcast without an RLS write policy', async () => {
    // anon, not the service key: service_role bypasses RLS and may write anywhere.
    const res = await post(single('locked', 'e', '?private=true'), { body: '{}', authorization: `Bearer ${t.anonKey}` });
    expect([res.status, json(res.text)]).toEqual([403, { message: 'Unauthorized' }]);
  });
});

describe('prefixes and CORS', () => {
  it('serves both routes under /realtime/v1/api as well', async () => {
    const got = await supabaseSub('prefixed', '2.0.0');
    expect((await post(`/realtime/v1${BATCH}`, { body: batch({ topic: 'prefixed', event: 'b', payload: {} }) })).status).toBe(202);
    expect((await post(`/realtime/v1${single('prefixed', 's')}`, { body: '{}' })).status).toBe(202);
    await until(() => got.length === 2);
    expect(got.map((m) => m.event).sort()).toEqual(['b', 's']);
  });

  it('allows any origin on REST broadcast responses, successful or not', async () => {
    const ok = await post(BATCH, { body: batch({ topic: 'cors', event: 'e', payload: {} }), headers: { origin: 'https://example.com' } });
    expect([ok.status, ok.headers.get('access-control-allow-origin')]).toEqual([202, '*']);
    const refused = await post(single('cors', 'e'), { body: '{}', authorization: null, headers: { origin: 'https://example.com' } });
    expect([refused.status, refused.headers.get('access-control-allow-origin')]).toEqual([401, '*']);
  });

  it('answers a CORS preflight for the broadcast endpoint', async () => {
    const res = await fetch(`${t.url}${BATCH}`, {
      method: 'OPTIONS',
      headers: { origin: 'https://example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, apikey' },
    });
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
  });
});
