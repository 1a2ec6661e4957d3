import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PubSubMessage } from '../../src/shared/messages.js';
import { topicKey } from '../../src/shared/topic-keys.js';
import {
  ensureMessagesPublication,
  MESSAGES_PUBLICATION,
  messagesSlotName,
  startDatabaseBroadcast,
  type DatabaseBroadcast,
  type DatabaseBroadcastOptions,
} from '../../src/replication/db-broadcast.js';
import { decodeByteaText, rowToPubSub, timestampTextToEpochMs } from '../../src/replication/messages-rows.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const TENANT = 'tenant-a';
const log = pino({ level: 'silent' });

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('utf8');
const payloadOf = (msg: PubSubMessage) => (msg.env.type === 'user' ? JSON.parse(text(msg.env.payload)) : undefined);
const metaOf = (msg: PubSubMessage) => (msg.env.type === 'user' && msg.env.metaJson ? JSON.parse(msg.env.metaJson) : undefined);

let db: TestDatabase;
let client: pg.Client;
let running: DatabaseBroadcast[] = [];
let suffixes = 0;

function start(overrides: Partial<DatabaseBroadcastOptions> = {}): { bc: DatabaseBroadcast; got: PubSubMessage[] } {
  const got: PubSubMessage[] = [];
  const bc = startDatabaseBroadcast({
    databaseUrl: db.url,
    tenantId: TENANT,
    publish: (msg) => got.push(msg),
    log,
    payloadLimitBytes: 3_000_500,
    slotSuffix: `t${++suffixes}`,
    replication: { backoff: { initialMs: 100, maxMs: 1000 }, statusIntervalMs: 200 },
    ...overrides,
  });
  running.push(bc);
  return { bc, got };
}

async function up(bc: DatabaseBroadcast): Promise<void> {
  await waitUntil(() => bc.status === 'up', 15_000, 'replication up');
}

beforeAll(async () => {
  db = await createTestDatabase('dbbroadcast');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await migrateTenantDatabase(client);
});

afterEach(async () => {
  await Promise.all(running.map((bc) => bc.stop()));
  running = [];
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe('broadcast from the database', () => {
  it('turns realtime.send into user broadcasts on the public or private topic key', async () => {
    const { bc, got } = start();
    await up(bc);
    await client.query(`SELECT realtime.send('{"body":"hi"}'::jsonb, 'greet', 'room:1', false)`);
    await client.query(`SELECT realtime.send('{"body":"psst"}'::jsonb, 'whisper', 'room:1', true)`);
    await client.query(`SELECT realtime.send('{"id":"mine","x":1}'::jsonb, 'own-id', 'room:2')`);
    await waitUntil(() => got.length === 3, 10_000, 'three messages');

    const [pub, priv, own] = got as [PubSubMessage, PubSubMessage, PubSubMessage];
    const rows = (await client.query<{ id: string; event: string }>('SELECT id::text, event FROM realtime.messages ORDER BY inserted_at, event')).rows;
    const rowId = (event: string) => rows.find((r) => r.event === event)!.id;

    expect(pub).toMatchObject({ tenantId: TENANT, key: topicKey(TENANT, 'room:1', false), subTopic: 'room:1' });
    expect(pub.env).toMatchObject({ type: 'user', userEvent: 'greet', encoding: 1 });
    expect(payloadOf(pub)).toEqual({ body: 'hi', id: rowId('greet') });
    expect(metaOf(pub)).toEqual({ id: rowId('greet') });

    expect(priv.key).toBe(topicKey(TENANT, 'room:1', true));
    expect(payloadOf(priv)).toEqual({ body: 'psst', id: rowId('whisper') });
    expect(metaOf(priv)).toEqual({ id: rowId('whisper') });

    // private defaults to true; a caller-provided id stays in the payload, meta carries the row id.
    expect(own.key).toBe(topicKey(TENANT, 'room:2', true));
    expect(payloadOf(own)).toEqual({ id: 'mine', x: 1 });
    expect(metaOf(own)).toEqual({ id: rowId('own-id') });
  });

  it('delivers send_binary rows as encoding 0 with the exact bytes', async () => {
    const { bc, got } = start();
    await up(bc);
    await client.query(`SELECT realtime.send_binary('\\x00ff10805c'::bytea, 'bin', 'files', false)`);
    await waitUntil(() => got.length === 1, 10_000, 'binary message');
    const env = got[0]!.env;
    expect(env.type === 'user' && env.encoding).toBe(0);
    expect(env.type === 'user' && Buffer.from(env.payload).toString('hex')).toBe('00ff10805c');
    expect(got[0]!.key).toBe(topicKey(TENANT, 'files', false));
  });

  it('delivers broadcast_changes from a trigger on insert, update and delete', async () => {
    await client.query(`
      CREATE TABLE public.todos (id int PRIMARY KEY, title text);
      CREATE FUNCTION public.todos_broadcast() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        PERFORM realtime.broadcast_changes('todos:' || coalesce(NEW.id, OLD.id), TG_OP, TG_OP, TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD);
        RETURN NULL;
      END $$;
      CREATE TRIGGER todos_broadcast AFTER INSERT OR UPDATE OR DELETE ON public.todos
        FOR EACH ROW EXECUTE FUNCTION public.todos_broadcast();`);
    const { bc, got } = start();
    await up(bc);
    await client.query(`INSERT INTO public.todos VALUES (1, 'write tests')`);
    await client.query(`UPDATE public.todos SET title = 'run tests' WHERE id = 1`);
    await client.query(`DELETE FROM public.todos WHERE id = 1`);
    await waitUntil(() => got.length === 3, 10_000, 'three changes');

    expect(got.map((m) => m.key)).toEqual(Array(3).fill(topicKey(TENANT, 'todos:1', true)));
    expect(got.map((m) => m.env.type === 'user' && m.env.userEvent)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    const [ins, upd, del] = got.map(payloadOf);
    const base = { table: 'todos', schema: 'public' };
    expect(ins).toEqual({ ...base, id: metaOf(got[0]!).id, operation: 'INSERT', record: { id: 1, title: 'write tests' }, old_record: null });
    expect(upd).toEqual({
      ...base,
      id: metaOf(got[1]!).id,
      operation: 'UPDATE',
      record: { id: 1, title: 'run tests' },
      old_record: { id: 1, title: 'write tests' },
    });
    expect(del).toEqual({ ...base, id: metaOf(got[2]!).id, operation: 'DELETE', record: null, old_record: { id: 1, title: 'run tests' } });
  });

  it('drops rows over the payload limit, rate-limited rows and incomplete rows', async () => {
    let allow = false;
    let asked = 0;
    // allow() is consulted only for rows that passed the other checks, when they arrive.
    const { bc, got } = start({ payloadLimitBytes: () => 100, allow: () => (asked++, allow) });
    await up(bc);
    await client.query(`SELECT realtime.send(jsonb_build_object('big', repeat('x', 200)), 'big', 'limits', false)`);
    await client.query(`INSERT INTO realtime.messages (topic, extension, payload, private) VALUES ('limits', 'broadcast', '{}', false)`);
    await client.query(`INSERT INTO realtime.messages (topic, extension, event, private) VALUES ('limits', 'broadcast', 'no-payload', false)`);
    await client.query(`INSERT INTO realtime.messages (topic, extension, event, payload) VALUES ('limits', 'presence', 'p', '{}')`);
    await client.query(`SELECT realtime.send('{"n":1}'::jsonb, 'limited', 'limits', false)`);
    await waitUntil(() => asked === 1, 10_000, 'the limiter to be asked');
    allow = true;
    await client.query(`SELECT realtime.send('{"n":2}'::jsonb, 'small', 'limits', false)`);
    await waitUntil(() => got.length >= 1, 10_000, 'the small message');
    await new Promise((r) => setTimeout(r, 300));
    expect(got.map((m) => m.env.type === 'user' && m.env.userEvent)).toEqual(['small']);
  });

  it('reports up, then stops and removes its temporary slot', async () => {
    const { bc } = start({ slotSuffix: 'Node-1' });
    expect(bc.slot).toBe('supabase_realtime_messages_replication_slot_node_1');
    const statuses: string[] = [];
    bc.onStatus((s) => statuses.push(s));
    await up(bc);
    await bc.stop();
    expect(statuses).toEqual(['up', 'stopped']);
    await waitUntil(async () => {
      const res = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [bc.slot]);
      return res.rowCount === 0;
    }, 5000, 'slot dropped');
  });

  it('a second node with the same slot name waits until the first one stops', async () => {
    const first = start({ slotSuffix: 'shared' });
    await up(first.bc);
    const second = start({ slotSuffix: 'shared' });
    await new Promise((r) => setTimeout(r, 500));
    expect(second.bc.status).toBe('down');
    await first.bc.stop();
    await up(second.bc);
    await client.query(`SELECT realtime.send('{}'::jsonb, 'after', 'handover', false)`);
    await waitUntil(() => second.got.length === 1, 10_000, 'message on the second node');
  });
});

describe('messages publication', () => {
  it('creates a missing publication and recreates one that publishes other tables', async () => {
    const tables = async () =>
      (await client.query<{ t: string }>('SELECT schemaname || \'.\' || tablename AS t FROM pg_publication_tables WHERE pubname = $1', [MESSAGES_PUBLICATION])).rows.map((r) => r.t);
    expect(await ensureMessagesPublication(client)).toBe('ok');
    await client.query('CREATE TABLE public.other (id int PRIMARY KEY)');
    await client.query(`ALTER PUBLICATION ${MESSAGES_PUBLICATION} ADD TABLE public.other`);
    expect(await ensureMessagesPublication(client)).toBe('recreated');
    expect(await tables()).toEqual(['realtime.messages']);
    await client.query(`DROP PUBLICATION ${MESSAGES_PUBLICATION}`);
    expect(await ensureMessagesPublication(client)).toBe('created');
    expect(await ensureMessagesPublication(client)).toBe('ok');
  });
});

describe('row conversion', () => {
  const row = { id: 'a1', topic: 't', extension: 'broadcast', event: 'e', payload: '{"a": 1}', binaryPayload: null, private: 'f', insertedAt: '2025-01-01 00:00:00' };

  it('builds the envelope and enforces required fields and the limit', () => {
    const out = rowToPubSub('x', row, 100);
    expect(out.ok && out.msg).toEqual({
      tenantId: 'x',
      key: topicKey('x', 't', false),
      subTopic: 't',
      env: { type: 'user', userEvent: 'e', encoding: 1, payload: Buffer.from('{"a": 1}'), metaJson: '{"id":"a1"}' },
    });
    expect(rowToPubSub('x', { ...row, event: null }, 100)).toEqual({ ok: false, reason: 'missing_fields' });
    expect(rowToPubSub('x', { ...row, insertedAt: null }, 100)).toEqual({ ok: false, reason: 'missing_fields' });
    expect(rowToPubSub('x', { ...row, payload: null }, 100)).toEqual({ ok: false, reason: 'missing_fields' });
    expect(rowToPubSub('x', row, 7)).toEqual({ ok: false, reason: 'too_large' });
    expect(rowToPubSub('x', { ...row, extension: 'presence' }, 100)).toEqual({ ok: false, reason: 'not_broadcast' });
  });

  it('decodes bytea text in hex and escape formats', () => {
    expect(decodeByteaText('\\x00ff')?.toString('hex')).toBe('00ff');
    expect(decodeByteaText('\\x0')).toBeNull();
    expect(decodeByteaText('a\\\\b\\000\\377')?.toString('hex')).toBe('615c6200ff');
    expect(decodeByteaText('\\9')).toBeNull();
  });

  it('reads inserted_at text (timestamp without time zone, ISO) as UTC milliseconds', () => {
    expect(timestampTextToEpochMs('2026-11-25 10:00:00')).toBe(Date.UTC(2026, 10, 25, 10, 0, 0));
    expect(timestampTextToEpochMs('2026-11-25 10:00:00.123456')).toBe(Date.UTC(2026, 10, 25, 10, 0, 0, 123));
    expect(timestampTextToEpochMs('2026-11-25 10:00:00.5')).toBe(Date.UTC(2026, 10, 25, 10, 0, 0, 500));
    expect(timestampTextToEpochMs('infinity')).toBeNaN();
    expect(timestampTextToEpochMs('0044-03-15 12:00:00 BC')).toBeNaN();
  });

  it('names slots like upstream', () => {
    expect(messagesSlotName('')).toBe('supabase_realtime_messages_replication_slot_');
    expect(messagesSlotName('Eu-West')).toBe('supabase_realtime_messages_replication_slot_eu_west');
  });
});
