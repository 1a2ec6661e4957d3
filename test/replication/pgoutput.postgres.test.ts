import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPgoutputContext,
  decodePgoutput,
  formatLsn,
  parseLsn,
  pgTimestampToEpochMs,
  RelationCache,
  type PgoutputMessage,
  type PgoutputProtocolVersion,
} from '../../src/replication/pgoutput/index.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

// Checks the decoder against bytes produced by a real PostgreSQL 18 pgoutput.
// pg_logical_slot_peek_binary_changes returns exactly the messages a walsender
// would put in XLogData, one per row, so no replication connection is needed.

interface Row {
  lsn: string;
  xid: string;
  data: Buffer;
}

let db: TestDatabase;
let client: pg.Client;
let oids: { items: number; full: number; mood: number };

const q = (sql: string) => client.query(sql);

async function peek(slot: string, version: PgoutputProtocolVersion, extra: string[] = []) {
  const opts = ['proto_version', String(version), 'publication_names', 'pub', 'messages', 'true', ...extra];
  const placeholders = opts.map((_, i) => `$${i + 2}`).join(', ');
  const res = await client.query<Row>(
    `SELECT lsn::text AS lsn, xid::text AS xid, data
       FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, ${placeholders})`,
    [slot, ...opts],
  );
  const ctx = createPgoutputContext(version);
  const msgs = res.rows.map((row) => ({ row, msg: decodePgoutput(row.data, ctx) }));
  expect(ctx.inStream).toBe(false);
  return msgs;
}

const tags = (msgs: Array<{ msg: PgoutputMessage }>) => msgs.map((m) => m.msg.tag);
const recent = (ts: bigint) => Math.abs(pgTimestampToEpochMs(ts) - Date.now()) < 120_000;

beforeAll(async () => {
  db = await createTestDatabase('pgoutput');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await q(`CREATE TYPE mood AS ENUM ('happy', 'sad')`);
  await q(`CREATE TABLE items (id int8 PRIMARY KEY, name text, m mood, big text, b bytea)`);
  // EXTERNAL storage forces the big value out of line so untouched updates send 'u'.
  await q(`ALTER TABLE items ALTER big SET STORAGE EXTERNAL`);
  await q(`CREATE TABLE full_t (id int PRIMARY KEY, v varchar(10))`);
  await q(`ALTER TABLE full_t REPLICA IDENTITY FULL`);
  await q(`CREATE PUBLICATION pub FOR TABLE items, full_t`);
  const res = await q(
    `SELECT 'items'::regclass::oid::int AS items, 'full_t'::regclass::oid::int AS full, 'mood'::regtype::oid::int AS mood`,
  );
  oids = res.rows[0];
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe('pgoutput against PostgreSQL 18', () => {
  it('decodes protocol 1 row changes, truncate, messages, type and relation', async () => {
    await q(`SELECT pg_create_logical_replication_slot('plain', 'pgoutput')`);
    await q(`INSERT INTO items VALUES (1, 'a', 'happy', repeat('x', 10000), '\\xdead')`);
    await q(`UPDATE items SET name = 'b' WHERE id = 1`);
    await q(`UPDATE items SET id = 2 WHERE id = 1`);
    await q(`DELETE FROM items WHERE id = 2`);
    await q(`INSERT INTO full_t VALUES (1, 'x')`);
    await q(`UPDATE full_t SET v = 'y'`);
    await q(`DELETE FROM full_t`);
    await q(`TRUNCATE items, full_t RESTART IDENTITY CASCADE`);
    await q(`SELECT pg_logical_emit_message(true, 'pfx', 'hello')`);
    await q(`SELECT pg_logical_emit_message(false, 'pfx', 'nt', true)`);

    const msgs = await peek('plain', 1);
    const txn = (...inner: string[]) => ['begin', ...inner, 'commit'];
    expect(tags(msgs)).toEqual([
      ...txn('type', 'relation', 'insert'),
      ...txn('update'),
      ...txn('update'),
      ...txn('delete'),
      ...txn('relation', 'insert'),
      ...txn('update'),
      ...txn('delete'),
      ...txn('type', 'relation', 'relation', 'truncate'),
      ...txn('message'),
      'message',
    ]);

    const cache = new RelationCache();
    let begin: PgoutputMessage | undefined;
    for (const { row, msg } of msgs) {
      if (msg.tag === 'relation') cache.set(msg);
      if (msg.tag === 'begin') {
        begin = msg;
        expect(String(msg.xid)).toBe(row.xid);
        expect(recent(msg.commitTime)).toBe(true);
      }
      if (msg.tag === 'commit') {
        // The SQL interface reports a commit at its end LSN, in pg_lsn text form.
        expect(formatLsn(msg.endLsn)).toBe(row.lsn);
        expect(msg.commitLsn).toBe(begin?.tag === 'begin' ? begin.finalLsn : -1n);
        expect(begin?.tag === 'begin' && msg.commitTime === begin.commitTime).toBe(true);
      }
      if (msg.tag === 'message') expect(msg.lsn).toBe(parseLsn(row.lsn));
    }

    const all = msgs.map((m) => m.msg);
    const of = <T extends PgoutputMessage['tag']>(tag: T) =>
      all.filter((m): m is Extract<PgoutputMessage, { tag: T }> => m.tag === tag);
    const [update1, update2, update3] = of('update');
    const [delete1, delete2] = of('delete');
    const [insert1] = of('insert');
    expect(of('type')[0]).toStrictEqual({ tag: 'type', xid: null, typeOid: oids.mood, namespace: 'public', name: 'mood' });
    expect(of('relation')[0]).toMatchObject({ tag: 'relation', relationId: oids.items, name: 'items', replicaIdentity: 'default' });
    expect(cache.require(oids.items).columns).toStrictEqual([
      { flags: 1, isKey: true, name: 'id', typeOid: 20, typeModifier: -1 },
      { flags: 0, isKey: false, name: 'name', typeOid: 25, typeModifier: -1 },
      { flags: 0, isKey: false, name: 'm', typeOid: oids.mood, typeModifier: -1 },
      { flags: 0, isKey: false, name: 'big', typeOid: 25, typeModifier: -1 },
      { flags: 0, isKey: false, name: 'b', typeOid: 17, typeModifier: -1 },
    ]);
    // varchar(10) has typmod 10 + VARHDRSZ; with identity FULL every column is part of the key.
    expect(cache.require(oids.full).replicaIdentity).toBe('full');
    expect(cache.require(oids.full).columns.map((c) => [c.isKey, c.typeModifier])).toEqual([
      [true, -1],
      [true, 14],
    ]);

    const t = (value: string) => ({ kind: 'text', value });
    const n = { kind: 'null' };
    expect(insert1).toStrictEqual({
      tag: 'insert',
      xid: null,
      relationId: oids.items,
      new: [t('1'), t('a'), t('happy'), t('x'.repeat(10000)), t('\\xdead')],
    });
    expect(update1).toMatchObject({ old: null, new: [t('1'), t('b'), t('happy'), { kind: 'unchanged' }, t('\\xdead')] });
    expect(update2).toMatchObject({
      old: { kind: 'key', tuple: [t('1'), n, n, n, n] },
      new: [t('2'), t('b'), t('happy'), { kind: 'unchanged' }, t('\\xdead')],
    });
    expect(delete1).toMatchObject({ old: { kind: 'key', tuple: [t('2'), n, n, n, n] } });
    expect(update3).toMatchObject({ old: { kind: 'full', tuple: [t('1'), t('x')] }, new: [t('1'), t('y')] });
    expect(delete2).toMatchObject({ old: { kind: 'full', tuple: [t('1'), t('y')] } });
    expect(of('truncate')[0]).toStrictEqual({
      tag: 'truncate',
      xid: null,
      cascade: true,
      restartIdentity: true,
      relationIds: [oids.items, oids.full],
    });
    expect(of('message')[0]).toMatchObject({ transactional: true, prefix: 'pfx', content: Buffer.from('hello') });
    expect(of('message')[1]).toMatchObject({ xid: null, transactional: false, content: Buffer.from('nt') });

    const zipped = cache.zip(oids.items, insert1!.new);
    expect(zipped.columns.map((c) => c.name)).toEqual(['id', 'name', 'm', 'big', 'b']);
  });

  it('decodes binary-format columns', async () => {
    await q(`SELECT pg_create_logical_replication_slot('bin', 'pgoutput')`);
    await q(`INSERT INTO full_t VALUES (258, NULL)`);
    const msgs = await peek('bin', 1, ['binary', 'true']);
    const insert = msgs.find((m) => m.msg.tag === 'insert')!.msg;
    expect(insert).toStrictEqual({
      tag: 'insert',
      xid: null,
      relationId: oids.full,
      new: [{ kind: 'binary', value: Buffer.from([0, 0, 1, 2]) }, { kind: 'null' }],
    });
    await q(`DELETE FROM full_t`);
  });

  it('decodes streamed transactions with protocol 2 and parallel stream abort with protocol 4', async () => {
    await q(`SELECT pg_create_logical_replication_slot('streamed', 'pgoutput')`);
    // Decoding runs in this backend: stream every change as soon as it is decoded.
    await q(`SET debug_logical_replication_streaming = immediate`);
    await q(`BEGIN; INSERT INTO full_t VALUES (10, 'a'); SAVEPOINT s1; INSERT INTO full_t VALUES (11, 'b');
             ROLLBACK TO s1; INSERT INTO full_t VALUES (12, 'c'); COMMIT`);
    await q(`BEGIN; INSERT INTO full_t VALUES (20, 'a'); ROLLBACK`);
    // Abort records are not flushed by themselves; a flushed message makes them visible.
    await q(`SELECT pg_logical_emit_message(false, 'flush', '', true)`);

    for (const [version, streaming] of [[2, 'on'], [4, 'parallel']] as const) {
      const msgs = await peek('streamed', version, ['streaming', streaming]);
      const all = msgs.map((m) => m.msg);
      const starts = all.filter((m) => m.tag === 'stream_start');
      const top = starts[0]!.xid;
      expect(starts[0]).toStrictEqual({ tag: 'stream_start', xid: top, firstSegment: true });
      expect(starts.filter((s) => s.firstSegment).length).toBe(2);

      const inserts = all.filter((m) => m.tag === 'insert');
      expect(inserts.map((m) => (m.new[0] as { value: string }).value)).toEqual(['10', '11', '12', '20']);
      // The savepoint's insert carries the subtransaction's xid.
      const sub = inserts[1]!.xid!;
      expect(inserts[0]!.xid).toBe(top);
      expect(sub).not.toBe(top);

      const ends = all.filter((m) => m.tag === 'stream_commit' || m.tag === 'stream_abort');
      expect(ends.map((m) => m.tag)).toEqual(['stream_abort', 'stream_commit', 'stream_abort']);
      const [subAbort, commit, fullAbort] = ends;
      expect(subAbort).toMatchObject({ xid: top, subXid: sub });
      expect(commit).toMatchObject({ xid: top });
      if (commit!.tag === 'stream_commit') expect(recent(commit.commitTime)).toBe(true);
      expect(fullAbort).toMatchObject({ xid: inserts[3]!.xid, subXid: inserts[3]!.xid });

      for (const abort of [subAbort!, fullAbort!]) {
        if (abort.tag !== 'stream_abort') throw new Error('expected stream_abort');
        if (version === 4) {
          expect(abort.abortLsn).not.toBeNull();
          expect(recent(abort.abortTime!)).toBe(true);
        } else {
          expect(abort).toMatchObject({ abortLsn: null, abortTime: null });
        }
      }
      expect(all.at(-1)).toMatchObject({ tag: 'message', transactional: false, prefix: 'flush' });
    }
    await q(`RESET debug_logical_replication_streaming`);
  });
});
