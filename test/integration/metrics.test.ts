import http from 'node:http';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrape as scrapeMetrics, value, type Sample, type Scrape } from '../support/metrics.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';

const TENANT = 'realtime-dev';
const METRICS_SECRET = 'metrics-secret-with-at-least-32-characters!!';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t?.stop();
});

async function scrape(server = t, headers: Record<string, string> = {}): Promise<Scrape> {
  return scrapeMetrics(server.url, headers);
}

async function metricValue(name: string, labels: Record<string, string>, server = t): Promise<number> {
  return value((await scrape(server)).samples, name, labels) ?? 0;
}

/** Polls until the series satisfies `pred`; returns the last value. */
async function eventually(name: string, labels: Record<string, string>, pred: (v: number) => boolean, ms = 12_000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await metricValue(name, labels);
    if (pred(v)) return v;
    if (Date.now() > deadline) throw new Error(`${name}${JSON.stringify(labels)} stayed at ${v}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function connect(server = t): Promise<RawClient> {
  return RawClient.connect(`ws://127.0.0.1:${server.port}/socket/websocket?apikey=${server.anonKey}&vsn=2.0.0`);
}

async function joined(c: RawClient, topic: string, ref: string, payload: unknown = { config: {} }): Promise<unknown[]> {
  c.send([ref, ref, `realtime:${topic}`, 'phx_join', payload]);
  return c.reply(ref);
}

function get(path: string, headers: Record<string, string>, port = t.port): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'GET', path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('GET /metrics', () => {
  it('serves Prometheus text with the realtime families and the Node process metrics', async () => {
    const { text, samples, contentType } = await scrape();
    expect(contentType).toMatch(/^text\/plain/);
    for (const [name, type] of [
      ['realtime_connections_connected', 'gauge'],
      ['realtime_channel_joins', 'counter'],
      ['realtime_channel_events', 'counter'],
      ['realtime_channel_input_bytes', 'counter'],
      ['realtime_channel_output_bytes', 'counter'],
      ['realtime_channel_error', 'counter'],
      ['realtime_tenants_payload_size', 'histogram'],
      ['realtime_channel_db_events', 'counter'],
      ['realtime_channel_presence_events', 'counter'],
      ['realtime_tenants_read_authorization_check', 'histogram'],
      ['realtime_tenants_write_authorization_check', 'histogram'],
      ['realtime_tenants_postgres_changes_authorization_check', 'histogram'],
      ['realtime_tenants_replay', 'histogram'],
      ['realtime_tenants_replay_messages_total', 'counter'],
      ['realtime_tenants_broadcast_from_database_latency_committed_at', 'histogram'],
      ['realtime_tenants_broadcast_from_database_latency_inserted_at', 'histogram'],
      ['realtime_tenants_connected', 'gauge'],
      ['process_cpu_seconds_total', 'counter'],
    ]) {
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    }
    expect(value(samples, 'process_cpu_seconds_total', {})).toBeGreaterThan(0);
    expect(samples.some((s) => s.name === 'nodejs_heap_size_used_bytes')).toBe(true);
    // The default tenant runs from start-up.
    expect(value(samples, 'realtime_tenants_connected', {})).toBeGreaterThanOrEqual(1);
  });

  it('counts connected sockets per tenant while they are connected', async () => {
    const labels = { tenant: TENANT };
    const before = await metricValue('realtime_connections_connected', labels);
    const a = await connect();
    const b = await connect();
    expect(await eventually('realtime_connections_connected', labels, (v) => v === before + 2)).toBe(before + 2);
    const { text } = await scrape();
    expect(text).toContain(`realtime_connections_connected{tenant="${TENANT}"} ${before + 2}\n`);
    a.close();
    await a.closed;
    expect(await eventually('realtime_connections_connected', labels, (v) => v === before + 1)).toBe(before + 1);
    b.close();
    await b.closed;
    expect(await eventually('realtime_connections_connected', labels, (v) => v === before)).toBe(before);
  });

  it('counts successful joins, and failed joins under realtime_channel_error by code', async () => {
    const c = await connect();
    const joinsBefore = await metricValue('realtime_channel_joins', { tenant: TENANT });
    const topicErrBefore = await metricValue('realtime_channel_error', { tenant: TENANT, code: 'TopicNameRequired' });
    const jwtErrBefore = await metricValue('realtime_channel_error', { tenant: TENANT, code: 'MalformedJWT' });
    expect((await joined(c, 'metrics-join-1', '1'))[4]).toMatchObject({ status: 'ok' });
    expect((await joined(c, 'metrics-join-2', '2'))[4]).toMatchObject({ status: 'ok' });
    expect((await joined(c, '', '3'))[4]).toMatchObject({ status: 'error' });
    expect((await joined(c, 'metrics-join-3', '4', { config: {}, access_token: 'potato' }))[4]).toMatchObject({
      status: 'error',
      response: { reason: 'MalformedJWT: The token provided is not a valid JWT' },
    });
    const { samples } = await scrape();
    expect(value(samples, 'realtime_channel_joins', { tenant: TENANT })).toBe(joinsBefore + 2);
    expect(value(samples, 'realtime_channel_error', { tenant: TENANT, code: 'TopicNameRequired' })).toBe(topicErrBefore + 1);
    expect(value(samples, 'realtime_channel_error', { tenant: TENANT, code: 'MalformedJWT' })).toBe(jwtErrBefore + 1);
    c.close();
  });

  it('counts broadcast events, input and output bytes, and observes the payload size', async () => {
    const sender = await connect();
    const receiver = await connect();
    expect((await joined(sender, 'metrics-bc', '1'))[4]).toMatchObject({ status: 'ok' });
    expect((await joined(receiver, 'metrics-bc', '1'))[4]).toMatchObject({ status: 'ok' });
    const tenant = { tenant: TENANT };
    const hist = { tenant: TENANT, message_type: 'broadcast' };
    const before = (await scrape()).samples;
    const eventsBefore = value(before, 'realtime_channel_events', tenant) ?? 0;
    const inBefore = value(before, 'realtime_channel_input_bytes', tenant) ?? 0;
    const outBefore = value(before, 'realtime_channel_output_bytes', tenant) ?? 0;
    const countBefore = value(before, 'realtime_tenants_payload_size_count', hist) ?? 0;
    const sumBefore = value(before, 'realtime_tenants_payload_size_sum', hist) ?? 0;
    const bucket500Before = value(before, 'realtime_tenants_payload_size_bucket', { ...hist, le: '500' }) ?? 0;

    const payload = { text: 'x'.repeat(300) };
    const payloadBytes = Buffer.byteLength(JSON.stringify(payload));
    const frame = JSON.stringify(['1', '2', 'realtime:metrics-bc', 'broadcast', { type: 'broadcast', event: 'm', payload }]);
    sender.send(frame);
    const delivered = await receiver.nextText((m) => (m as unknown[])[3] === 'broadcast');
    const deliveredBytes = Buffer.byteLength(JSON.stringify(delivered));

    // One send and one delivery: two events, as upstream counts them.
    expect(await eventually('realtime_channel_events', tenant, (v) => v >= eventsBefore + 2)).toBe(eventsBefore + 2);
    expect(await eventually('realtime_channel_input_bytes', tenant, (v) => v >= inBefore + Buffer.byteLength(frame))).toBeGreaterThanOrEqual(
      inBefore + Buffer.byteLength(frame),
    );
    expect(await eventually('realtime_channel_output_bytes', tenant, (v) => v >= outBefore + deliveredBytes)).toBeGreaterThanOrEqual(
      outBefore + deliveredBytes,
    );
    const after = (await scrape()).samples;
    expect(value(after, 'realtime_tenants_payload_size_count', hist)).toBe(countBefore + 1);
    // The JSON payload is about 300 bytes: in the 500 bucket, and the sum grew by its size (give or take framing).
    expect(value(after, 'realtime_tenants_payload_size_bucket', { ...hist, le: '500' })).toBe(bucket500Before + 1);
    expect(value(after, 'realtime_tenants_payload_size_bucket', { ...hist, le: '+Inf' })).toBe(countBefore + 1);
    const grew = (value(after, 'realtime_tenants_payload_size_sum', hist) ?? 0) - sumBefore;
    expect(grew).toBeGreaterThanOrEqual(payloadBytes);
    expect(grew).toBeLessThan(500);
    sender.close();
    receiver.close();
  });

  it('counts REST broadcasts as channel events', async () => {
    const before = await metricValue('realtime_channel_events', { tenant: TENANT });
    const res = await fetch(`${t.url}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.serviceKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ topic: 'nobody-listens', event: 'e', payload: {} }] }),
    });
    expect(res.status).toBe(202);
    expect(await eventually('realtime_channel_events', { tenant: TENANT }, (v) => v >= before + 1)).toBe(before + 1);
  });
});

describe('replication metrics', () => {
  let r: TestServer;
  beforeAll(async () => {
    r = await startTestServer({ CHANGES_LAG_CHECK_MS: '100' });
  });
  afterAll(async () => {
    await r?.stop();
  });

  it('report the changes slot\'s lag and retained WAL per tenant and slot, and no misconfiguration', async () => {
    const sql = new pg.Client({ connectionString: r.db.url });
    await sql.connect();
    await sql.query(`CREATE TABLE public.m (id int PRIMARY KEY); GRANT SELECT ON public.m TO anon; ALTER PUBLICATION supabase_realtime ADD TABLE public.m;`);
    const c = await connect(r);
    await joined(c, 'm', '1', { config: { postgres_changes: [{ event: '*', schema: 'public', table: 'm' }] } });
    await c.nextText((m) => (m as unknown[])[3] === 'system', 15_000);
    const slot = (await sql.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE database = current_database() AND NOT temporary`)).rows[0]!.slot_name;
    await sql.query('INSERT INTO public.m SELECT generate_series(1, 100)');
    let samples: Sample[] = [];
    const deadline = Date.now() + 15_000;
    while (value(samples, 'realtime_replication_slot_retained_wal_bytes', { tenant: TENANT, slot }) === undefined && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
      samples = (await scrape(r)).samples;
    }
    const lag = value(samples, 'realtime_replication_slot_lag_bytes', { tenant: TENANT, slot });
    const retained = value(samples, 'realtime_replication_slot_retained_wal_bytes', { tenant: TENANT, slot });
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(retained).toBeGreaterThanOrEqual(lag!);
    expect(samples.filter((x) => x.name === 'realtime_replication_misconfigured')).toEqual([]);
    // The tenant health shows the same slot.
    const health = await fetch(`${r.url}/api/tenants/${TENANT}/health`, { headers: { authorization: `Bearer ${await r.sign({ role: 'service_role' }, r.managementSecret)}` } });
    expect(((await health.json()) as { data: { replication: unknown } }).data.replication).toMatchObject({
      state: 'up',
      problem: null,
      postgres_changes: { state: 'up', slot, subscribers: 1, slot_lag_bytes: expect.any(Number), retained_wal_bytes: expect.any(Number) },
    });
    c.close();
    await sql.end();
  });
});

describe('metrics authentication', () => {
  const exp = () => Math.floor(Date.now() / 1000) + 600;
  const metricsToken = (claims: Record<string, unknown> = {}, secret = METRICS_SECRET) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));

  let s: TestServer;
  let blocked: string;
  beforeAll(async () => {
    blocked = await metricsToken({ exp: exp(), sub: 'leaked' });
    s = await startTestServer({ METRICS_JWT_SECRET: METRICS_SECRET, METRICS_TOKEN_BLOCKLIST: `some-other-token, ${blocked}` });
  });
  afterAll(async () => {
    await s?.stop();
  });

  async function status(headers: Record<string, string>, path = '/metrics'): Promise<{ status: number; text: string }> {
    const res = await fetch(`${s.url}${path}`, { headers });
    return { status: res.status, text: await res.text() };
  }

  it('answers 403 with an empty body without a token, with a wrong one, or with a tenant key', async () => {
    const wrong = await metricsToken({ exp: exp() }, 'not-the-metrics-secret-but-32-characters-long');
    const expired = await metricsToken({ exp: Math.floor(Date.now() / 1000) - 60 });
    const refused: Record<string, string>[] = [
      {},
      { authorization: 'Bearer not-a-jwt' },
      { authorization: `Bearer ${wrong}` },
      { authorization: `Bearer ${expired}` },
      // Signed with the tenant's JWT secret, not the metrics one.
      { authorization: `Bearer ${s.serviceKey}` },
      // The token counts only as a Bearer Authorization header.
      { authorization: await metricsToken({ exp: exp() }) },
      { apikey: await metricsToken({ exp: exp() }) },
    ];
    for (const headers of refused) {
      expect([headers, await status(headers)]).toEqual([headers, { status: 403, text: '' }]);
    }
  });

  it('serves metrics for a Bearer token signed with METRICS_JWT_SECRET, with or without claims', async () => {
    for (const token of [await metricsToken({ exp: exp() }), await metricsToken()]) {
      const res = await status({ authorization: `Bearer ${token}` });
      expect(res.status).toBe(200);
      expect(res.text).toContain('realtime_connections_connected');
      expect(res.text).toContain('process_cpu_seconds_total');
    }
  });

  it('refuses a correctly signed token listed in METRICS_TOKEN_BLOCKLIST', async () => {
    expect(await status({ authorization: `Bearer ${blocked}` })).toEqual({ status: 403, text: '' });
    expect(await status({ authorization: `Bearer ${blocked}` }, '/metrics/eu-west-2')).toEqual({ status: 403, text: '' });
  });

  it('shows tenants in /healthcheck?verbose=1 only to whoever may read the metrics', async () => {
    const anonymous = await fetch(`${s.url}/healthcheck?verbose=1`);
    const body = (await anonymous.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(['node', 'status']);
    const authorized = await fetch(`${s.url}/healthcheck?verbose=1`, { headers: { authorization: `Bearer ${await metricsToken({ exp: exp() })}` } });
    expect(((await authorized.json()) as { tenants: Record<string, unknown> }).tenants).toHaveProperty(TENANT);
    expect(anonymous.status).toBe(authorized.status);
  });

  it('guards /metrics/:region the same way', async () => {
    expect(await status({}, '/metrics/us-east-1')).toEqual({ status: 403, text: '' });
    const res = await status({ authorization: `Bearer ${await metricsToken({ exp: exp() })}` }, '/metrics/us-east-1');
    expect(res.status).toBe(200);
    expect(res.text).toContain('realtime_connections_connected');
  });
});

describe('operational endpoints', () => {
  it('GET /healthcheck answers 200 ok', async () => {
    const res = await fetch(`${t.url}/healthcheck`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  it('GET /healthcheck?verbose=1 answers 200 with every running tenant\'s replication once it streams', async () => {
    let res = await fetch(`${t.url}/healthcheck?verbose=1`);
    const deadline = Date.now() + 15_000;
    while (res.status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      res = await fetch(`${t.url}/healthcheck?verbose=1`);
    }
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({
      status: 'ok',
      node: expect.any(String),
      tenants: { [TENANT]: { state: 'ready', db_connected: true, replication: { state: 'up', problem: null } } },
    });
    expect(await (await fetch(`${t.url}/healthcheck?verbose=0`)).text()).toBe('ok');
  });

  it('GET /healthcheck needs no tenant', async () => {
    expect(await get('/healthcheck', { host: `nope.localhost:${t.port}` })).toEqual({ status: 200, text: 'ok' });
  });

  it.each(['/api/ping', '/realtime/v1/api/ping'])('GET %s answers 200 {"message":"Success"} with rate-limit headers', async (path) => {
    const res = await fetch(`${t.url}${path}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ message: 'Success' });
    expect(res.headers.get('x-rate-limit')).toBe('100');
    expect(res.headers.get('x-rate-rolling')).toMatch(/^\d+$/);
  });

  it('GET /api/ping for an unknown tenant host is refused as upstream AssignTenant does: 401 Tenant not found in database', async () => {
    for (const path of ['/api/ping', '/realtime/v1/api/ping']) {
      const res = await get(path, { host: `nope.localhost:${t.port}` });
      expect([path, res.status, JSON.parse(res.text)]).toEqual([path, 401, { message: 'Tenant not found in database' }]);
    }
  });

  it('answers other paths of an unknown tenant host with 404 Tenant not found', async () => {
    const res = await get('/api/nothing-here', { host: `nope.localhost:${t.port}` });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toEqual({ error: 'Tenant not found' });
    const known = await get('/api/nothing-here', { host: `127.0.0.1:${t.port}` });
    expect(known.status).toBe(404);
    expect(JSON.parse(known.text)).toEqual({ error: 'Not found' });
  });
});
