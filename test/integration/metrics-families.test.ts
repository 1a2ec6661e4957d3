import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RealtimeChannel } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribedToPostgres, until } from '../support/channels.js';
import { histogram, scrape, scrapeUntil, value, type Sample } from '../support/metrics.js';
import { RawClient } from '../support/raw-client.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Each metric family Performer fills in besides traffic and joins: the action that should move it is done through a
// real server and client, then /metrics is scraped and the series compared with the scrape before, labels included.

const TENANT = 'realtime-dev';
const tenant = { tenant: TENANT };

let t: TestServer;
let db: pg.Client;

beforeAll(async () => {
  t = await startTestServer();
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE POLICY "metrics read" ON realtime.messages FOR SELECT TO authenticated USING (realtime.topic() LIKE 'mpriv%');
    CREATE POLICY "metrics write" ON realtime.messages FOR INSERT TO authenticated WITH CHECK (realtime.topic() LIKE 'mpriv%');
    CREATE TABLE public.mrows (id bigint PRIMARY KEY, body text);
    ALTER TABLE public.mrows ENABLE ROW LEVEL SECURITY;
    CREATE POLICY "every row" ON public.mrows FOR SELECT TO anon, authenticated USING (true);
    GRANT SELECT ON public.mrows TO anon, authenticated;
    ALTER PUBLICATION supabase_realtime ADD TABLE public.mrows;
  `);
  // Database broadcasts need the tenant's messages stream.
  await until(() => t.server.ctx.registry.peek(TENANT)?.replication?.status === 'up', 20_000);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

const metrics = async (): Promise<Sample[]> => (await scrape(t.url)).samples;

async function member(): Promise<{ raw: RawClient; token: string }> {
  const token = await t.sign({ role: 'authenticated', sub: randomUUID(), exp: Math.floor(Date.now() / 1000) + 3600 });
  const raw = await RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${t.anonKey}&vsn=2.0.0`);
  return { raw, token };
}

async function join(raw: RawClient, topic: string, ref: string, payload: Record<string, unknown>): Promise<unknown> {
  raw.send([ref, ref, `realtime:${topic}`, 'phx_join', payload]);
  return (await raw.reply(ref))[4];
}

function isBroadcastOn(topic: string): (msg: unknown) => boolean {
  return (msg) => Array.isArray(msg) && msg[2] === `realtime:${topic}` && msg[3] === 'broadcast';
}

describe('Postgres Changes metrics', () => {
  it('counts deliveries in realtime_channel_db_events and observes the payload size and the visibility check', async () => {
    const payload = { tenant: TENANT, message_type: 'postgres_changes' };
    const check = 'realtime_tenants_postgres_changes_authorization_check';
    const received: unknown[] = [];
    const channels: RealtimeChannel[] = [];
    for (const name of ['mrows-a', 'mrows-b']) {
      const channel = t.client().channel(name).on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'mrows' }, (p) => received.push(p));
      expect(await subscribedToPostgres(channel)).toBe('ok: Subscribed to PostgreSQL');
      channels.push(channel);
    }
    const before = await metrics();
    const body = 'x'.repeat(300);
    await db.query('INSERT INTO public.mrows (id, body) VALUES (1, $1)', [body]);
    await until(() => received.length === 2);

    const eventsBefore = value(before, 'realtime_channel_db_events', tenant) ?? 0;
    const after = await scrapeUntil(t.url, (s) => (value(s, 'realtime_channel_db_events', tenant) ?? 0) >= eventsBefore + 2, 'db events');
    // One row, two subscribers: two events delivered.
    expect(value(after, 'realtime_channel_db_events', tenant)).toBe(eventsBefore + 2);
    // The row's payload is measured once, however many receive it; it holds the 300-character body.
    const sizeBefore = histogram(before, 'realtime_tenants_payload_size', payload);
    const sizeAfter = histogram(after, 'realtime_tenants_payload_size', payload);
    expect(sizeAfter.count).toBe(sizeBefore.count + 1);
    expect(sizeAfter.inf).toBe(sizeBefore.inf + 1);
    expect(sizeAfter.sum - sizeBefore.sum).toBeGreaterThan(300);
    expect(sizeAfter.sum - sizeBefore.sum).toBeLessThan(1000);
    // Both subscribers share their claims: at least one visibility transaction was timed for the row.
    const checkBefore = histogram(before, check, tenant);
    const checkAfter = histogram(after, check, tenant);
    expect(checkAfter.count).toBeGreaterThanOrEqual(checkBefore.count + 1);
    expect(checkAfter.inf).toBe(checkAfter.count);
    expect(checkAfter.sum).toBeGreaterThan(checkBefore.sum);
    for (const c of channels) await c.unsubscribe();
  });
});

describe('private channel authorization metrics', () => {
  it('times the read check of a private join, and the write checks of a socket send and a REST broadcast', async () => {
    const read = 'realtime_tenants_read_authorization_check';
    const write = 'realtime_tenants_write_authorization_check';
    const { raw, token } = await member();
    const before = await metrics();
    expect(await join(raw, 'mpriv-auth', '1', { config: { private: true, broadcast: { self: true } }, access_token: token })).toMatchObject({ status: 'ok' });
    const afterJoin = await metrics();
    expect(histogram(afterJoin, read, tenant).count).toBe(histogram(before, read, tenant).count + 1);
    expect(histogram(afterJoin, read, tenant).sum).toBeGreaterThan(histogram(before, read, tenant).sum);
    expect(histogram(afterJoin, write, tenant).count).toBe(histogram(before, write, tenant).count);

    // The first send asks broadcast.write (then cached for the channel).
    raw.send(['1', '2', 'realtime:mpriv-auth', 'broadcast', { type: 'broadcast', event: 'e', payload: { n: 1 } }]);
    await raw.nextText(isBroadcastOn('mpriv-auth'));
    const res = await fetch(`${t.url}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, apikey: t.anonKey, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ topic: 'mpriv-auth', event: 'e', payload: { n: 2 }, private: true }] }),
    });
    expect(res.status).toBe(202);
    await raw.nextText(isBroadcastOn('mpriv-auth'));
    const after = await metrics();
    expect(histogram(after, write, tenant).count).toBe(histogram(before, write, tenant).count + 2);
    expect(histogram(after, write, tenant).inf).toBe(histogram(after, write, tenant).count);
    expect(histogram(after, write, tenant).sum).toBeGreaterThan(histogram(before, write, tenant).sum);
    raw.close();
  });
});

describe('broadcast payload size', () => {
  it('observes REST broadcasts, single and batched, by their payload bytes', async () => {
    const labels = { tenant: TENANT, message_type: 'broadcast' };
    const samplesBefore = await metrics();
    const before = histogram(samplesBefore, 'realtime_tenants_payload_size', labels);
    const bucket = (samples: Sample[], le: string) => value(samples, 'realtime_tenants_payload_size_bucket', { ...labels, le }) ?? 0;
    const batchPayload = { text: 'y'.repeat(700) };
    const batch = await fetch(`${t.url}/api/broadcast`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.serviceKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ topic: 'nobody', event: 'e', payload: batchPayload }] }),
    });
    expect(batch.status).toBe(202);
    const singleBody = JSON.stringify({ text: 'z'.repeat(40) });
    const single = await fetch(`${t.url}/api/broadcast/nobody/events/e`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.serviceKey}`, 'content-type': 'application/json' },
      body: singleBody,
    });
    expect(single.status).toBe(202);
    const samples = await metrics();
    const after = histogram(samples, 'realtime_tenants_payload_size', labels);
    expect(after.count).toBe(before.count + 2);
    expect(after.sum - before.sum).toBe(Buffer.byteLength(JSON.stringify(batchPayload)) + Buffer.byteLength(singleBody));
    // The 700-odd bytes land in the 1000 bucket, the 50-odd in the 100 one (buckets are cumulative).
    expect(['100', '500', '1000'].map((le) => bucket(samples, le) - bucket(samplesBefore, le))).toEqual([1, 1, 2]);
    expect(after.inf).toBe(before.inf + 2);
  });
});

describe('broadcast from the database metrics', () => {
  it('observes commit-to-fan-out and inserted_at latencies, the payload size and the send, per database broadcast', async () => {
    const committed = 'realtime_tenants_broadcast_from_database_latency_committed_at';
    const inserted = 'realtime_tenants_broadcast_from_database_latency_inserted_at';
    const size = { tenant: TENANT, message_type: 'broadcast' };
    const { raw } = await member();
    expect(await join(raw, 'mdb', '1', { config: {} })).toMatchObject({ status: 'ok' });
    const before = await metrics();
    const payload = { text: 'd'.repeat(400) };
    const started = performance.now();
    await db.query(`SELECT realtime.send($1::jsonb, 'e', 'mdb', false)`, [JSON.stringify(payload)]);
    // A user broadcast: a binary frame on V2.
    await raw.next((f) => f instanceof Buffer);
    const elapsedMs = performance.now() - started;
    const eventsBefore = value(before, 'realtime_channel_events', tenant) ?? 0;
    // One send and one delivery, as for a socket broadcast.
    const after = await scrapeUntil(t.url, (s) => (value(s, 'realtime_channel_events', tenant) ?? 0) >= eventsBefore + 2, 'channel events');
    expect(value(after, 'realtime_channel_events', tenant)).toBe(eventsBefore + 2);
    for (const name of [committed, inserted]) {
      const a = histogram(after, name, tenant);
      const b = histogram(before, name, tenant);
      expect([name, a.count, a.inf]).toEqual([name, b.count + 1, b.inf + 1]);
      // In milliseconds: the commit and the insert happened within what this test waited (timestamps are whole ms).
      expect(a.sum - b.sum).toBeGreaterThanOrEqual(0);
      expect(a.sum - b.sum).toBeLessThanOrEqual(elapsedMs + 1);
    }
    const sizeBefore = histogram(before, 'realtime_tenants_payload_size', size);
    const sizeAfter = histogram(after, 'realtime_tenants_payload_size', size);
    expect(sizeAfter.count).toBe(sizeBefore.count + 1);
    // The stored jsonb text: the payload plus the id realtime.send injects.
    expect(sizeAfter.sum - sizeBefore.sum).toBeGreaterThan(Buffer.byteLength(JSON.stringify(payload)));
    expect(sizeAfter.sum - sizeBefore.sum).toBeLessThan(Buffer.byteLength(JSON.stringify(payload)) + 100);
    raw.close();
  });
});

describe('broadcast from the database metrics, carried by the Postgres Changes stream', () => {
  it('still observes the commit-to-fan-out latency once the changes stream reads realtime.messages', async () => {
    const committed = 'realtime_tenants_broadcast_from_database_latency_committed_at';
    const changes = t.client().channel('mrows-carrier').on('postgres_changes', { event: '*', schema: 'public', table: 'mrows' }, () => undefined);
    expect(await subscribedToPostgres(changes)).toBe('ok: Subscribed to PostgreSQL');
    // The pipeline hands realtime.messages to the changes stream and stops its own.
    await until(() => t.server.ctx.registry.peek(TENANT)?.replication?.ownStream === false, 15_000);
    const { raw } = await member();
    expect(await join(raw, 'mdb-carried', '1', { config: {} })).toMatchObject({ status: 'ok' });
    const before = histogram(await metrics(), committed, tenant);
    await db.query(`SELECT realtime.send('{"carried":true}'::jsonb, 'e', 'mdb-carried', false)`);
    await raw.next((f) => f instanceof Buffer);
    const after = histogram(await metrics(), committed, tenant);
    expect([after.count, after.inf]).toEqual([before.count + 1, before.inf + 1]);
    raw.close();
    await changes.unsubscribe();
  });
});

describe('replay metrics', () => {
  it('times the replay query of a join and counts the messages replayed', async () => {
    const since = Date.now() - 1000;
    for (let i = 1; i <= 3; i++) await db.query(`SELECT realtime.send($1::jsonb, 'r', 'mpriv-replay', true)`, [JSON.stringify({ i })]);
    const { raw, token } = await member();
    const before = await metrics();
    const reply = await join(raw, 'mpriv-replay', '1', { config: { private: true, broadcast: { replay: { since, limit: 2 } } }, access_token: token });
    expect(reply).toMatchObject({ status: 'ok' });
    // Two replayed frames arrive after the reply.
    const replayed = [await raw.next((f) => f instanceof Buffer), await raw.next((f) => f instanceof Buffer)];
    expect(replayed).toHaveLength(2);
    const after = await metrics();
    const b = histogram(before, 'realtime_tenants_replay', tenant);
    const a = histogram(after, 'realtime_tenants_replay', tenant);
    expect([a.count, a.inf]).toEqual([b.count + 1, b.inf + 1]);
    expect(a.sum).toBeGreaterThan(b.sum);
    expect(value(after, 'realtime_tenants_replay_messages_total', tenant)).toBe((value(before, 'realtime_tenants_replay_messages_total', tenant) ?? 0) + 2);
    // A join without replay asks no replay query.
    const { raw: other, token: otherToken } = await member();
    expect(await join(other, 'mpriv-replay', '1', { config: { private: true }, access_token: otherToken })).toMatchObject({ status: 'ok' });
    expect(histogram(await metrics(), 'realtime_tenants_replay', tenant).count).toBe(a.count);
    raw.close();
    other.close();
  });
});

describe('presence metrics', () => {
  it('counts presence_state pushes and delivered diffs, and observes the tracked payload size', async () => {
    const size = { tenant: TENANT, message_type: 'presence' };
    const { raw } = await member();
    const before = await metrics();
    expect(await join(raw, 'mpres', '1', { config: { presence: { enabled: true, key: 'a' } } })).toMatchObject({ status: 'ok' });
    await raw.nextText((m) => Array.isArray(m) && m[3] === 'presence_state');
    const meta = { name: 'p'.repeat(200) };
    raw.send(['1', '2', 'realtime:mpres', 'presence', { type: 'presence', event: 'track', payload: meta }]);
    await raw.nextText((m) => Array.isArray(m) && m[3] === 'presence_diff');
    const eventsBefore = value(before, 'realtime_channel_presence_events', tenant) ?? 0;
    // The presence_state push and the diff delivered back to the tracking socket.
    const after = await scrapeUntil(t.url, (s) => (value(s, 'realtime_channel_presence_events', tenant) ?? 0) >= eventsBefore + 2, 'presence events');
    expect(value(after, 'realtime_channel_presence_events', tenant)).toBe(eventsBefore + 2);
    const a = histogram(after, 'realtime_tenants_payload_size', size);
    const b = histogram(before, 'realtime_tenants_payload_size', size);
    expect([a.count, a.inf, a.sum - b.sum]).toEqual([b.count + 1, b.inf + 1, Buffer.byteLength(JSON.stringify(meta))]);
    raw.close();
  });
});
