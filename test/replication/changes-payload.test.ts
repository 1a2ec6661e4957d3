import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildChangeData,
  changePayloadParts,
  changeError,
  createRowPlan,
  formatCommitTimestamp,
  renderTuple,
  type Change,
  type RenderedRow,
  type RowPlan,
} from '../../src/replication/changes/index.js';
import {
  createPgoutputContext,
  decodePgoutput,
  epochMsToPgTimestamp,
  RelationCache,
  type PgoutputMessage,
  type RelationColumn,
  type TupleData,
} from '../../src/replication/pgoutput/index.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const col = (name: string, typeOid: number, isKey = false): RelationColumn => ({
  flags: isKey ? 1 : 0,
  isKey,
  name,
  typeOid,
  typeModifier: -1,
});
const t = (value: string) => ({ kind: 'text', value }) as const;
const NULL = { kind: 'null' } as const;
const U = { kind: 'unchanged' } as const;

// todos(id int8 PK, title text, tags text[], done bool, body text)
const PLAN = createRowPlan([col('id', 20, true), col('title', 25), col('tags', 1009), col('done', 16), col('body', 25)]);
const row = (tuple: TupleData): RenderedRow => renderTuple(PLAN, tuple);
const TS = '2026-03-01T12:34:56.789Z';
const base = { schema: 'public', table: 'todos', commitTimestamp: TS, plan: PLAN };
const COLUMNS =
  '[{"name":"id","type":"int8"},{"name":"title","type":"text"},{"name":"tags","type":"_text"},{"name":"done","type":"bool"},{"name":"body","type":"text"}]';

describe('postgres_changes payload (golden)', () => {
  it('INSERT: key order, columns, record, no old_record, errors null', () => {
    const change: Change = { ...base, type: 'INSERT', record: row([t('1'), t('new'), t('{a}'), t('f'), NULL]) };
    expect(buildChangeData(change)).toBe(
      `{"schema":"public","table":"todos","commit_timestamp":"${TS}","type":"INSERT","columns":${COLUMNS},` +
        '"record":{"id":1,"title":"new","tags":["a"],"done":false,"body":null},"errors":null}',
    );
  });

  it('wraps data with the matched binding ids', () => {
    expect(changePayloadParts('[67392054,11120322]', '{"x":1}').join('')).toBe('{"ids":[67392054,11120322],"data":{"x":1}}');
  });

  it('UPDATE under the default identity: old_record is the primary key (from the new row when the key is unchanged)', () => {
    const change: Change = { ...base, type: 'UPDATE', record: row([t('1'), t('b'), t('{}'), t('t'), U]), old: null };
    const data = JSON.parse(buildChangeData(change));
    expect(data.record).toEqual({ id: 1, title: 'b', tags: [], done: true });
    expect(data.old_record).toEqual({ id: 1 });
    expect(Object.keys(data)).toEqual(['schema', 'table', 'commit_timestamp', 'type', 'columns', 'record', 'old_record', 'errors']);
  });

  it('UPDATE that changed the key carries the old key; unchanged TOAST is absent without a full old image', () => {
    const change: Change = {
      ...base,
      type: 'UPDATE',
      record: row([t('2'), t('b'), NULL, t('t'), U]),
      old: { kind: 'key', row: row([t('1'), NULL, NULL, NULL, NULL]) },
    };
    const data = JSON.parse(buildChangeData(change));
    expect(data.record).toEqual({ id: 2, title: 'b', tags: null, done: true });
    expect(data.old_record).toEqual({ id: 1 });
  });

  it('UPDATE with REPLICA IDENTITY FULL fills unchanged TOAST from the old row and sends the full old row', () => {
    const old = row([t('1'), t('a'), t('{x}'), t('f'), t('big')]);
    const change: Change = { ...base, type: 'UPDATE', record: row([t('1'), t('b'), t('{x}'), t('f'), U]), old: { kind: 'full', row: old } };
    const data = JSON.parse(buildChangeData(change));
    expect(data.record).toEqual({ id: 1, title: 'b', tags: ['x'], done: false, body: 'big' });
    expect(data.old_record).toEqual({ id: 1, title: 'a', tags: ['x'], done: false, body: 'big' });
  });

  it('DELETE: no record key, old_record = identity; with RLS only the primary key', () => {
    const key: Change = { ...base, type: 'DELETE', old: { kind: 'key', row: row([t('7'), NULL, NULL, NULL, NULL]) } };
    expect(buildChangeData(key)).toBe(
      `{"schema":"public","table":"todos","commit_timestamp":"${TS}","type":"DELETE","columns":${COLUMNS},"old_record":{"id":7},"errors":null}`,
    );
    const fullRow = row([t('7'), t('x'), NULL, t('t'), t('b')]);
    const full: Change = { ...base, type: 'DELETE', old: { kind: 'full', row: fullRow } };
    expect(JSON.parse(buildChangeData(full)).old_record).toEqual({ id: 7, title: 'x', tags: null, done: true, body: 'b' });
    expect(JSON.parse(buildChangeData({ ...full, rlsEnabled: true })).old_record).toEqual({ id: 7 });
  });

  it('select keeps selected + primary key columns in columns, record and old_record', () => {
    const old = row([t('1'), t('a'), t('{x}'), t('f'), t('big')]);
    const change: Change = { ...base, type: 'UPDATE', record: row([t('1'), t('b'), t('{x}'), t('t'), t('big')]), old: { kind: 'full', row: old } };
    const data = JSON.parse(buildChangeData(change, { select: ['done'] }));
    expect(data.columns).toEqual([
      { name: 'id', type: 'int8' },
      { name: 'done', type: 'bool' },
    ]);
    expect(data.record).toEqual({ id: 1, done: true });
    expect(data.old_record).toEqual({ id: 1, done: false });
  });

  it('columns the role cannot SELECT disappear everywhere', () => {
    const change: Change = { ...base, type: 'INSERT', record: row([t('1'), t('x'), NULL, t('t'), t('secret')]) };
    const data = JSON.parse(buildChangeData(change, { selectable: (c) => c !== 'body' }));
    expect(data.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'title', 'tags', 'done']);
    expect(data.record).toEqual({ id: 1, title: 'x', tags: null, done: true });
  });

  it('400 without a primary key, 401 when the role cannot read it (INSERT/UPDATE only)', () => {
    const noPk = createRowPlan([col('a', 23), col('b', 25)]);
    const r = renderTuple(noPk, [t('1'), t('x')]);
    const ins: Change = { ...base, plan: noPk, type: 'INSERT', record: r };
    expect(buildChangeData(ins)).toBe(
      '{"schema":"public","table":"todos","commit_timestamp":null,"type":"INSERT","columns":[],"record":{},"errors":["Error 400: Bad Request, no primary key"]}',
    );
    expect(buildChangeData({ ...ins, type: 'UPDATE', old: null })).toBe(
      '{"schema":"public","table":"todos","commit_timestamp":null,"type":"UPDATE","columns":[],"record":{},"old_record":{},"errors":["Error 400: Bad Request, no primary key"]}',
    );
    const del: Change = { ...base, plan: noPk, type: 'DELETE', old: { kind: 'full', row: r } };
    expect(changeError(del)).toBeNull();
    expect(JSON.parse(buildChangeData(del)).old_record).toEqual({ a: 1, b: 'x' });

    const change: Change = { ...base, type: 'INSERT', record: row([t('1'), t('x'), NULL, t('t'), NULL]) };
    expect(buildChangeData(change, { selectable: (c) => c !== 'id' })).toBe(
      '{"schema":"public","table":"todos","commit_timestamp":null,"type":"INSERT","columns":[],"record":{},"errors":["Error 401: Unauthorized"]}',
    );
  });

  it('413: a record over the limit keeps only fields whose jsonb text is at most 64 bytes', () => {
    const long = 'x'.repeat(62); // "xxx…" is 64 bytes with its quotes
    const tags = `{${Array.from({ length: 11 }, () => 'ab').join(',')}}`; // ["ab", "ab", …] in jsonb text: 66 bytes
    const change: Change = {
      ...base,
      type: 'UPDATE',
      record: row([t('1'), t(long), t(tags), NULL, U]),
      old: { kind: 'full', row: row([t('1'), t(`${long}y`), t('{ab}'), t('t'), t('toasted')]) },
    };
    const data = JSON.parse(buildChangeData(change, { maxRecordBytes: 100 }));
    // tags is too long as jsonb text, done is NULL, body would come from the old row: all dropped.
    expect(data.record).toEqual({ id: 1, title: long });
    expect(data.old_record).toEqual({ id: 1, tags: ['ab'], done: true, body: 'toasted' });
    expect(data.errors).toEqual(['Error 413: Payload Too Large']);
    expect(data.columns).toHaveLength(5);
    expect(JSON.parse(buildChangeData(change)).errors).toBeNull();
    expect(JSON.parse(buildChangeData({ ...change, recordBytes: 2_000_000 })).errors).toEqual(['Error 413: Payload Too Large']);
  });

  it('formats commit timestamps as upstream (UTC, milliseconds, Z)', () => {
    expect(formatCommitTimestamp(epochMsToPgTimestamp(Date.parse('2026-01-01T00:00:00.123Z')))).toBe('2026-01-01T00:00:00.123Z');
    expect(formatCommitTimestamp(epochMsToPgTimestamp(Date.parse('2026-01-01T00:00:00Z') + 0.999))).toBe('2026-01-01T00:00:00.000Z');
  });
});

describe('payloads from a real pgoutput stream (TOAST and replica identity)', () => {
  let db: TestDatabase;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase('changes_payload');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    for (const name of ['plain', 'fullrow']) {
      await client.query(`CREATE TABLE ${name} (id int8 PRIMARY KEY, title text, big text)`);
      // EXTERNAL storage keeps big out of line, so updates that do not touch it send it as unchanged TOAST.
      await client.query(`ALTER TABLE ${name} ALTER big SET STORAGE EXTERNAL`);
    }
    await client.query(`ALTER TABLE fullrow REPLICA IDENTITY FULL`);
    await client.query(`CREATE PUBLICATION pub FOR TABLE plain, fullrow`);
    await client.query(`SELECT pg_create_logical_replication_slot('payload_slot', 'pgoutput')`);
  });

  afterAll(async () => {
    await client?.end();
    await db?.drop();
  });

  it('builds upstream payloads for insert, toast-skipping updates and deletes', async () => {
    const big = 'z'.repeat(5000);
    for (const name of ['plain', 'fullrow']) {
      await client.query(`INSERT INTO ${name} VALUES (1, 'a', $1)`, [big]);
      await client.query(`UPDATE ${name} SET title = 'b' WHERE id = 1`);
      await client.query(`DELETE FROM ${name} WHERE id = 1`);
    }
    const res = await client.query<{ data: Buffer }>(
      `SELECT data FROM pg_logical_slot_get_binary_changes('payload_slot', NULL, NULL, 'proto_version', '1', 'publication_names', 'pub')`,
    );
    const ctx = createPgoutputContext(1);
    const cache = new RelationCache();
    const plans = new Map<number, RowPlan>();
    let commitTimestamp = '';
    const out: Record<string, unknown>[] = [];
    for (const r of res.rows) {
      const msg: PgoutputMessage = decodePgoutput(r.data, ctx);
      if (msg.tag === 'begin') commitTimestamp = formatCommitTimestamp(msg.commitTime);
      if (msg.tag === 'relation') {
        cache.set(msg);
        // With REPLICA IDENTITY FULL every column carries the key flag, so the primary key must be given.
        const inferred = () => createRowPlan(msg.columns, { replicaIdentity: msg.replicaIdentity });
        if (msg.name === 'fullrow') expect(inferred).toThrow('primaryKey is required for replica identity full');
        else expect(inferred().columns.filter((c) => c.isPrimaryKey).map((c) => c.name)).toEqual(['id']);
        plans.set(msg.relationId, createRowPlan(msg.columns, { primaryKey: ['id'], replicaIdentity: msg.replicaIdentity }));
      }
      if (msg.tag !== 'insert' && msg.tag !== 'update' && msg.tag !== 'delete') continue;
      const relation = cache.require(msg.relationId);
      const plan = plans.get(msg.relationId)!;
      const common = { schema: relation.namespace, table: relation.name, commitTimestamp, plan };
      const old = msg.tag === 'insert' ? undefined : msg.old && { kind: msg.old.kind, row: renderTuple(plan, msg.old.tuple) };
      const change: Change =
        msg.tag === 'delete'
          ? { ...common, type: 'DELETE', old }
          : { ...common, type: msg.tag === 'insert' ? 'INSERT' : 'UPDATE', record: renderTuple(plan, msg.new), old };
      out.push(JSON.parse(buildChangeData(change)));
    }
    expect(out.map((d) => [d.table, d.type, d.record, d.old_record])).toEqual([
      ['plain', 'INSERT', { id: 1, title: 'a', big }, undefined],
      ['plain', 'UPDATE', { id: 1, title: 'b' }, { id: 1 }],
      ['plain', 'DELETE', undefined, { id: 1 }],
      ['fullrow', 'INSERT', { id: 1, title: 'a', big }, undefined],
      ['fullrow', 'UPDATE', { id: 1, title: 'b', big }, { id: 1, title: 'a', big }],
      ['fullrow', 'DELETE', undefined, { id: 1, title: 'b', big }],
    ]);
    for (const d of out) {
      expect(d.commit_timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(d.errors).toBeNull();
      expect(d.columns).toEqual([
        { name: 'id', type: 'int8' },
        { name: 'title', type: 'text' },
        { name: 'big', type: 'text' },
      ]);
    }
  });
});
