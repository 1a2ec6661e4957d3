import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureMessagePartitions } from '../../src/tenants/migrate.js';
import { RawClient } from '../support/raw-client.js';
import { until } from '../support/channels.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * A write (or lazily asked presence read) check that FAILS, rather than answering no, must not stick for the
 * channel's life: upstream refuses that one message and asks again next time. The failure here is real: the
 * realtime.messages partitions are gone (MissingPartition), then recreated.
 */
let t: TestServer;
let db: pg.Client;
const alice = randomUUID();
/** What the server logged: a failed check is logged (as upstream), the one sign that it ran. */
const logged: Record<string, unknown>[] = [];

beforeAll(async () => {
  t = await startTestServer({}, undefined, pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) }));
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE POLICY "members read" ON realtime.messages FOR SELECT TO authenticated USING (realtime.topic() LIKE 'outage%');
    CREATE POLICY "members write" ON realtime.messages FOR INSERT TO authenticated WITH CHECK (realtime.topic() LIKE 'outage%');
  `);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

/** Drops every realtime.messages partition: any insert (the write check's, the read probe's) fails with 23514. */
async function dropPartitions(): Promise<void> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.oid::regclass::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'realtime.messages'::regclass`,
  );
  expect(rows.length).toBeGreaterThan(0);
  for (const { name } of rows) await db.query(`DROP TABLE ${name}`);
}

async function connect(): Promise<RawClient> {
  const token = await t.sign({ role: 'authenticated', sub: alice, exp: Math.floor(Date.now() / 1000) + 3600 });
  return RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${token}&vsn=1.0.0`);
}

const isEvent = (event: string) => (m: unknown) => (m as { event?: string }).event === event;

describe('private channel checks after a transient database failure', () => {
  it('asks the write policy again after a failed check: broadcasts and presence tracks go through once it recovers', async () => {
    const c = await connect();
    c.send(JSON.stringify({ topic: 'realtime:outage-w', event: 'phx_join', ref: '1', join_ref: '1', payload: { config: { private: true, broadcast: { ack: true, self: true }, presence: { key: 'alice', enabled: true } } } }));
    expect(await c.nextText(isEvent('phx_reply'))).toMatchObject({ payload: { status: 'ok' } });
    expect(await c.nextText(isEvent('presence_state'))).toMatchObject({ payload: {} });

    await dropPartitions();
    // Presence replies at once: the failed write check refuses the track.
    c.send(JSON.stringify({ topic: 'realtime:outage-w', event: 'presence', ref: '2', join_ref: '1', payload: { type: 'presence', event: 'track', payload: { n: 1 } } }));
    expect(await c.nextText((m) => (m as { ref?: string }).ref === '2')).toMatchObject({ payload: { status: 'error' } });

    await ensureMessagePartitions(db);
    c.send(JSON.stringify({ topic: 'realtime:outage-w', event: 'presence', ref: '3', join_ref: '1', payload: { type: 'presence', event: 'track', payload: { n: 2 } } }));
    expect(await c.nextText((m) => (m as { ref?: string }).ref === '3')).toMatchObject({ payload: { status: 'ok' } });
    const diff = (await c.nextText(isEvent('presence_diff'))) as { payload: { joins: Record<string, unknown> } };
    expect(Object.keys(diff.payload.joins)).toEqual(['alice']);

    // Broadcast: the first write check (which failed for presence) is per extension; ask it after recovery too.
    c.send(JSON.stringify({ topic: 'realtime:outage-w', event: 'broadcast', ref: '4', join_ref: '1', payload: { type: 'broadcast', event: 'e', payload: { n: 3 } } }));
    expect(await c.nextText((m) => (m as { ref?: string }).ref === '4')).toMatchObject({ payload: { status: 'ok' } });
    expect(await c.nextText(isEvent('broadcast'))).toMatchObject({ payload: { payload: { n: 3 } } });
    c.close();
  });

  it('asks the broadcast write policy again: a send during the failure is dropped, the next one after it is delivered', async () => {
    const c = await connect();
    c.send(JSON.stringify({ topic: 'realtime:outage-b', event: 'phx_join', ref: '1', join_ref: '1', payload: { config: { private: true, broadcast: { ack: true, self: true } } } }));
    expect(await c.nextText(isEvent('phx_reply'))).toMatchObject({ payload: { status: 'ok' } });

    await dropPartitions();
    // Refused: no ack and no delivery (as upstream: the failed check drops the message, logged on the server).
    c.send(JSON.stringify({ topic: 'realtime:outage-b', event: 'broadcast', ref: '2', join_ref: '1', payload: { type: 'broadcast', event: 'e', payload: { n: 1 } } }));
    await until(() => logged.some((l) => l.error_code === 'MissingPartition' && l.topic === 'outage-b'), 10_000, 'the failed write check');
    await ensureMessagePartitions(db);
    c.send(JSON.stringify({ topic: 'realtime:outage-b', event: 'broadcast', ref: '3', join_ref: '1', payload: { type: 'broadcast', event: 'e', payload: { n: 2 } } }));
    expect(await c.nextText((m) => (m as { ref?: string }).ref === '3', 10_000)).toMatchObject({ payload: { status: 'ok' } });
    expect(await c.nextText(isEvent('broadcast'))).toMatchObject({ payload: { payload: { n: 2 } } });
    // The send made during the failure never arrived (the failed check dropped it).
    expect(c.frames.map((f) => String(f)).filter((f) => f.includes('"ref":"2"') || f.includes('"n":1'))).toEqual([]);
    c.close();
  });

  it('asks a presence read not evaluated at join again after a failed check', async () => {
    const c = await connect();
    // Presence off at join: its read permission is asked at the first track.
    c.send(JSON.stringify({ topic: 'realtime:outage-p', event: 'phx_join', ref: '1', join_ref: '1', payload: { config: { private: true } } }));
    expect(await c.nextText(isEvent('phx_reply'))).toMatchObject({ payload: { status: 'ok' } });

    await dropPartitions();
    c.send(JSON.stringify({ topic: 'realtime:outage-p', event: 'presence', ref: '2', join_ref: '1', payload: { type: 'presence', event: 'track', payload: { n: 1 } } }));
    expect(await c.nextText((m) => (m as { ref?: string }).ref === '2')).toMatchObject({ payload: { status: 'error' } });

    await ensureMessagePartitions(db);
    c.send(JSON.stringify({ topic: 'realtime:outage-p', event: 'presence', ref: '3', join_ref: '1', payload: { type: 'presence', event: 'track', payload: { n: 2 } } }));
    expect(await c.nextText((m) => (m as { ref?: string }).ref === '3')).toMatchObject({ payload: { status: 'ok' } });
    // Read is known to be allowed now, so the channel receives presence: its own join arrives as a diff.
    const diff = (await c.nextText(isEvent('presence_diff'))) as { payload: { joins: Record<string, unknown> } };
    expect(Object.keys(diff.payload.joins)).toHaveLength(1);
    c.close();
  });
});
