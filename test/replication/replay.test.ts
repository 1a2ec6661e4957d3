import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFor } from '../../src/channels/frames.js';
import { parseReplayParams, replayEnvelope, replayMessages, replayRefusal, type ReplayRequest } from '../../src/replication/replay.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase;
let pool: pg.Pool;
let now: number;

const member = (topic: string, since: unknown, limit?: unknown): ReplayRequest => ({
  topic,
  since,
  limit,
  claims: { role: 'authenticated', sub: '00000000-0000-0000-0000-000000000001' },
});
const service = (topic: string, since: unknown, limit?: unknown): ReplayRequest => ({ topic, since, limit, claims: { role: 'service_role' } });

/** Inserts a private broadcast row `secondsAgo` before the database's now(). */
async function row(topic: string, event: string, secondsAgo: number, extra: { payload?: unknown; binary?: Buffer; private?: boolean; extension?: string } = {}) {
  await pool.query(
    `INSERT INTO realtime.messages (topic, extension, event, payload, binary_payload, private, inserted_at)
     VALUES ($1, $2, $3, $4, $5, $6, now() - make_interval(secs => $7))`,
    [
      topic,
      extra.extension ?? 'broadcast',
      event,
      extra.binary ? null : JSON.stringify(extra.payload ?? { event }),
      extra.binary ?? null,
      extra.private ?? true,
      secondsAgo,
    ],
  );
}

const events = (result: Awaited<ReturnType<typeof replayMessages>>) => (result.ok ? result.messages.map((m) => m.event) : result);

beforeAll(async () => {
  db = await createTestDatabase('replay');
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await migrateTenantDatabase(pool);
  now = Number((await pool.query<{ ms: string }>(`SELECT (extract(epoch FROM now()) * 1000)::bigint AS ms`)).rows[0]!.ms);
  await pool.query(`
    CREATE POLICY members_read ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() LIKE 'room:%' AND coalesce(payload ->> 'level', '') <> 'admin');
  `);
  // room:order: five messages, ten seconds apart, inserted out of order.
  for (const [event, ago] of [['c', 30], ['a', 50], ['e', 10], ['b', 40], ['d', 20]] as const) await row('room:order', event, ago);
  // room:many: thirty messages.
  for (let i = 0; i < 30; i++) await row('room:many', `m${String(i).padStart(2, '0')}`, 300 - i);
  // room:mixed: things replay must leave out.
  await row('room:mixed', 'public', 5, { private: false });
  await row('room:mixed', 'presence', 5, { extension: 'presence' });
  await row('room:mixed', 'future', -300);
  await row('room:other', 'other-topic', 5);
  await row('room:mixed', 'kept', 6);
  await row('room:mixed', 'admin-only', 4, { payload: { level: 'admin' } });
  await row('room:mixed', 'bin', 3, { binary: Buffer.from([0, 1, 2, 255]) });
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('replay', () => {
  it('returns the newest messages oldest first', async () => {
    expect(events(await replayMessages(pool, member('room:order', now - 3_600_000)))).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(events(await replayMessages(pool, member('room:order', now - 3_600_000, 2)))).toEqual(['d', 'e']);
  });

  it('clamps the limit to 1..25 and defaults to 25', async () => {
    const all = Array.from({ length: 30 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    expect(events(await replayMessages(pool, member('room:many', 0)))).toEqual(all.slice(5));
    expect(events(await replayMessages(pool, member('room:many', 0, 100)))).toEqual(all.slice(5));
    expect(events(await replayMessages(pool, member('room:many', 0, 0)))).toEqual(['m29']);
    expect(events(await replayMessages(pool, member('room:many', 0, -4)))).toEqual(['m29']);
  });

  it('filters by since', async () => {
    // Rows at now-50s .. now-10s; since now-25s keeps the two newest.
    expect(events(await replayMessages(pool, member('room:order', now - 25_000)))).toEqual(['d', 'e']);
    expect(events(await replayMessages(pool, member('room:order', now + 1000)))).toEqual([]);
  });

  it('keeps to private broadcast rows of the topic up to a minute ahead, and decodes binary rows', async () => {
    const result = await replayMessages(pool, service('room:mixed', now - 60_000));
    expect(events(result)).toEqual(['kept', 'admin-only', 'bin']);
    if (!result.ok) throw new Error('unreachable');
    const [kept, , bin] = result.messages;
    expect(kept!.encoding).toBe(1);
    expect(JSON.parse(Buffer.from(kept!.payload).toString())).toEqual({ event: 'kept' });
    expect(bin!.encoding).toBe(0);
    expect(Buffer.from(bin!.payload)).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('applies RLS: members see only what read policies allow', async () => {
    expect(events(await replayMessages(pool, member('room:mixed', now - 60_000)))).toEqual(['kept', 'bin']);
    expect(events(await replayMessages(pool, { ...member('room:mixed', now - 60_000), claims: { role: 'anon' } }))).toEqual([]);
    expect(events(await replayMessages(pool, { ...member('room:mixed', now - 60_000), claims: { role: 'no_such_role' } }))).toEqual([]);
  });

  it('rejects invalid params with the upstream text', async () => {
    for (const [since, limit] of [[undefined, 5], ['123', 5], [1.5, 5], [null, undefined], [now, '10'], [now, 2.5]] as const) {
      const result = await replayMessages(pool, member('room:order', since, limit));
      expect(result).toEqual({ ok: false, error: 'InvalidParams' });
      if (!result.ok) expect(replayRefusal(result)).toBe('UnableToReplayMessages: Replay params are not valid');
    }
    expect(parseReplayParams({ since: 0, limit: null })).toEqual({ since: 0, limit: 25 });
  });

  it('reports database failures as UnableToReplayMessages', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', max: 1, connectionTimeoutMillis: 2000 });
    try {
      const result = await replayMessages(dead, member('room:order', 0));
      expect(result).toMatchObject({ ok: false, error: 'Failed', failure: { code: 'UnableToConnect' } });
      if (!result.ok) expect(replayRefusal(result)).toBe('UnableToReplayMessages: Realtime was unable to replay messages');
    } finally {
      await dead.end();
    }
  });

  it('builds replay envelopes with replayed metadata', () => {
    const env = replayEnvelope({ id: 'abc', event: 'e', encoding: 1, payload: Buffer.from('{"x":1}') });
    expect(encodeFor('1.0.0', 'realtime:room', env)).toContain('"payload":{"x":1},"type":"broadcast","meta":{"id":"abc","replayed":true}');
    expect(encodeFor('1.0.0', 'realtime:room', replayEnvelope({ id: 'b', event: 'e', encoding: 0, payload: Buffer.from([1]) }))).toBeNull();
    expect(encodeFor('2.0.0', 'realtime:room', env)).toBeInstanceOf(Uint8Array);
  });
});
