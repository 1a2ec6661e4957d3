import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  builtinTypes,
  columnsJson,
  createRowPlan,
  renderTuple,
  typeInfoFromCatalog,
  TYPE_CATALOG_QUERY,
  type CatalogTypeRow,
  type PgTypeInfo,
  type RowPlan,
  type TypeResolver,
} from '../../src/replication/changes/index.js';
import {
  createPgoutputContext,
  decodePgoutput,
  RelationCache,
  type InsertMessage,
} from '../../src/replication/pgoutput/index.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

// Proves the renderer against PostgreSQL 18 itself: rows go through a real pgoutput slot (text mode), are decoded
// by our decoder and rendered, and each value must equal to_jsonb(column) computed by the server with TimeZone=UTC.
// The decoding session runs in a non-UTC zone on purpose, so timestamptz conversion is exercised.

let db: TestDatabase;
let client: pg.Client;

const COLUMNS: Array<[string, string]> = [
  ['i2', 'int2'],
  ['i4', 'int4'],
  ['i8', 'int8'],
  ['n', 'numeric'],
  ['n2', 'numeric(10,2)'],
  ['f4', 'float4'],
  ['f8', 'float8'],
  ['b', 'bool'],
  ['t', 'text'],
  ['vc', 'varchar(20)'],
  ['c3', 'char(3)'],
  ['u', 'uuid'],
  ['j', 'json'],
  ['jb', 'jsonb'],
  ['ia', 'int4[]'],
  ['ta', 'text[]'],
  ['ia2', 'int4[][]'],
  ['ts', 'timestamp'],
  ['tstz', 'timestamptz'],
  ['d', 'date'],
  ['tm', 'time'],
  ['tmtz', 'timetz'],
  ['iv', 'interval'],
  ['by', 'bytea'],
  ['ip', 'inet'],
  ['m', 'mood'],
  ['ma', 'mood[]'],
  ['fa', 'float8[]'],
  ['tsa', 'timestamptz[]'],
  ['ba', 'bytea[]'],
  ['mo', 'money'],
  ['o', 'oid'],
  ['bx', 'box[]'],
  ['na', 'numeric[]'],
  ['jba', 'jsonb[]'],
  ['nm', 'name'],
  ['ch', '"char"'],
  ['bits', 'bit(3)'],
  ['pt', 'point'],
  ['rng', 'tstzrange'],
  ['dom', 'posint'],
  ['bdom', 'blob'],
];

const ROWS: Array<Record<string, string | null>> = [
  {
    i2: '32767',
    i4: '2147483647',
    i8: '9223372036854775807',
    n: '123456789012345678901234567890.123456789012345',
    n2: '12345678.9',
    f4: 'NaN',
    f8: 'Infinity',
    b: 'true',
    t: 'héllo "quoted" \\ back\nslash\ttab \u0001 ☃ 😀',
    vc: 'varchar',
    c3: 'a',
    u: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
    j: '{"b":1, "a" : [1,2.50], "b":3}',
    jb: '{"z":{"y":[1,2.50,"x"]},"a":null}',
    ia: '{1,2,NULL}',
    ta: '{"a,b","say \\"hi\\"",NULL,"NULL","back\\\\slash","",café}',
    ia2: '{{1,2},{3,4}}',
    ts: '2026-01-01 12:34:56.789',
    tstz: '2026-01-01 00:00:00+00',
    d: '2026-03-01',
    tm: '23:59:59.999999',
    tmtz: '12:00:00.5+05:30',
    iv: '1 year 2 mons 3 days 04:05:06.5',
    by: '\\x0102030405',
    ip: '192.168.0.1/24',
    m: 'happy',
    ma: '{happy,sad}',
    fa: '{NaN,1e300,-0,1.5e-7,-Infinity}',
    tsa: '{"2026-06-30 23:30:00-03","infinity"}',
    ba: '{"\\\\x01ff"}',
    mo: '12.34',
    o: '4294967295',
    bx: '{(1,2),(3,4);(5,6),(7,8)}',
    na: '{1.50,NaN,-Infinity,0.000001}',
    jba: '{"{\\"a\\": 1}","[1, 2]","\\"s\\""}',
    nm: 'a_name',
    ch: 'x',
    bits: '101',
    pt: '(1.5,-2)',
    rng: '[2026-01-01 00:00:00+00,2026-02-01 00:00:00+00)',
    dom: '42',
    bdom: '\\xcafe',
  },
  {
    i2: '-32768',
    i4: '-2147483648',
    i8: '-9223372036854775808',
    n: '-0.000000000000000000000000000001',
    n2: '-0.5',
    f4: '-Infinity',
    f8: '1e100',
    b: 'false',
    t: '',
    vc: ' spaced ',
    c3: 'abc',
    u: '00000000-0000-0000-0000-000000000000',
    j: '[]',
    jb: '"just a string"',
    ia: '{}',
    ta: '{}',
    ia2: '{}',
    ts: '0044-03-15 12:00:00 BC',
    tstz: '1900-01-01 00:00:00+00',
    d: '0001-01-01 BC',
    tm: '00:00:00',
    tmtz: '00:00:00-03',
    iv: '-1 days +02:00:00',
    by: '\\x',
    ip: '::1',
    m: 'sad',
    ma: '{}',
    fa: '{1.7976931348623157e308,5e-324}',
    tsa: '{"0044-03-15 12:00:00+00 BC"}',
    ba: '{}',
    mo: '-1',
    o: '0',
    bx: '{}',
    na: '{}',
    jba: '{}',
    nm: '',
    ch: ' ',
    bits: '000',
    pt: '(0,0)',
    rng: 'empty',
    dom: '1',
  },
  { f4: '3.4028235e+38', f8: '-0', n: 'NaN', tstz: 'infinity', ts: '-infinity', d: 'infinity' },
  { n: 'Infinity', f4: '1.17549435e-38', f8: '-1.2345678901234567e-300', tstz: '1970-06-15 10:11:12.123456+07:30' },
  {},
];

async function typeResolver(oids: number[]): Promise<TypeResolver> {
  const map = new Map<number, PgTypeInfo>();
  const resolve: TypeResolver = (oid) => map.get(oid);
  const res = await client.query<CatalogTypeRow>(TYPE_CATALOG_QUERY, [oids]);
  // Elements before arrays, bases before domains: resolve in two passes.
  for (let pass = 0; pass < 2; pass++) for (const row of res.rows) map.set(Number(row.oid), typeInfoFromCatalog(row, resolve));
  return resolve;
}

async function readInserts(slot: string, peek = false): Promise<{ cache: RelationCache; inserts: InsertMessage[] }> {
  const res = await client.query<{ data: Buffer }>(
    `SELECT data FROM pg_logical_slot_${peek ? 'peek' : 'get'}_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', 'pub')`,
    [slot],
  );
  const ctx = createPgoutputContext(1);
  const cache = new RelationCache();
  const inserts: InsertMessage[] = [];
  for (const row of res.rows) {
    const msg = decodePgoutput(row.data, ctx);
    if (msg.tag === 'relation') cache.set(msg);
    if (msg.tag === 'insert') inserts.push(msg);
  }
  return { cache, inserts };
}

async function planFor(cache: RelationCache, relid: number): Promise<RowPlan> {
  const rel = cache.require(relid);
  const types = await typeResolver(rel.columns.map((c) => c.typeOid));
  return createRowPlan(rel.columns, { types });
}

/** Canonical JSON text: whitespace dropped, object keys sorted (last duplicate wins), number texts kept as is. */
function canonical(text: string): string {
  let i = 0;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const str = (): string => {
    const s = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.stringify(JSON.parse(text.slice(s, i)));
  };
  const val = (): string => {
    ws();
    if (text[i] === '{') {
      i++;
      const m = new Map<string, string>();
      ws();
      while (text[i] !== '}') {
        ws();
        const k = str();
        ws();
        i++; // :
        m.delete(k);
        m.set(k, val());
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
      return `{${[...m.keys()].sort().map((k) => `${k}:${m.get(k)}`).join(',')}}`;
    }
    if (text[i] === '[') {
      i++;
      const items: string[] = [];
      ws();
      while (text[i] !== ']') {
        items.push(val());
        ws();
        if (text[i] === ',') i++;
        ws();
      }
      i++;
      return `[${items.join(',')}]`;
    }
    if (text[i] === '"') return str();
    const m = /^[^,\]}\s]+/.exec(text.slice(i))![0];
    i += m.length;
    return m;
  };
  return val();
}

beforeAll(async () => {
  db = await createTestDatabase('changes_render');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(`CREATE TYPE mood AS ENUM ('happy', 'sad', 'ok')`);
  await client.query(`CREATE DOMAIN posint AS int4 CHECK (VALUE > 0)`);
  // A domain over bytea is not special-cased upstream: to_jsonb keeps its `\x`.
  await client.query(`CREATE DOMAIN blob AS bytea`);
  await client.query(`CREATE TABLE wide (id int8 PRIMARY KEY, ${COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')})`);
  await client.query(`CREATE TABLE floats (id int8 PRIMARY KEY, f8 float8, f4 float4, n numeric, tstz timestamptz, t text)`);
  await client.query(`CREATE PUBLICATION pub FOR TABLE wide, floats`);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe('rendering pgoutput rows like to_jsonb', () => {
  it('renders a wide table of types exactly like to_jsonb (UTC), bytea as bare hex', async () => {
    await client.query(`SELECT pg_create_logical_replication_slot('wide_slot', 'pgoutput')`);
    for (const [i, row] of ROWS.entries()) {
      const cols = COLUMNS.map(([n]) => n).filter((n) => n in row);
      const params = cols.map((n) => row[n]);
      const placeholders = cols.map((_, k) => `$${k + 2}`).join(', ');
      await client.query(
        `INSERT INTO wide (id${cols.map((c) => `, ${c}`).join('')}) VALUES ($1${placeholders ? `, ${placeholders}` : ''})`,
        [i + 1, ...params],
      );
    }
    // Output functions run in this session: print timestamptz in a zone with a non-zero, DST-changing offset.
    await client.query(`SET TimeZone = 'America/Sao_Paulo'`);
    const { cache, inserts } = await readInserts('wide_slot');
    await client.query(`SET TimeZone = 'UTC'`);
    expect(inserts).toHaveLength(ROWS.length);
    const relid = inserts[0]!.relationId;
    const plan = await planFor(cache, relid);

    const select = ['id', ...COLUMNS.map(([n]) => n)].map((n) => `to_jsonb(${n})::text AS ${n}`).join(', ');
    const expected = await client.query<Record<string, string | null>>(`SELECT ${select} FROM wide ORDER BY id`);
    // Only timestamptz itself is normalised to UTC; a range of it is plain text in the decoding session's zone.
    await client.query(`SET TimeZone = 'America/Sao_Paulo'`);
    const ranges = await client.query<{ rng: string | null }>(`SELECT to_jsonb(rng)::text AS rng FROM wide ORDER BY id`);
    await client.query(`SET TimeZone = 'UTC'`);
    ranges.rows.forEach((row, r) => (expected.rows[r]!.rng = row.rng));
    for (const [r, insert] of inserts.entries()) {
      const rendered = renderTuple(plan, insert.new);
      for (const col of plan.columns) {
        const pgText = expected.rows[r]![col.name] ?? 'null';
        let want = pgText;
        // Upstream delivers a bytea column as wal2json prints it: hex without the \x prefix.
        if (col.name === 'by' && pgText !== 'null') want = pgText.replace('"\\\\x', '"');
        const got = rendered.values[col.index]!;
        expect({ row: r + 1, col: col.name, json: canonical(got) }).toEqual({ row: r + 1, col: col.name, json: canonical(want) });
        // Numbers (and everything but the json column, which to_jsonb re-normalises) match as exact text.
        if (col.name !== 'j') expect({ col: col.name, text: compact(got) }).toEqual({ col: col.name, text: compact(want) });
      }
    }
  });

  it('renders columns with pg_type names, including arrays, enums and domains', async () => {
    await client.query(`SELECT pg_create_logical_replication_slot('cols_slot', 'pgoutput')`);
    await client.query(`INSERT INTO wide (id) VALUES (100)`);
    const { cache, inserts } = await readInserts('cols_slot');
    const plan = await planFor(cache, inserts[0]!.relationId);
    const res = await client.query<{ attname: string; typname: string }>(
      `SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = 'wide'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    );
    expect(JSON.parse(columnsJson(plan))).toEqual(res.rows.map((r) => ({ name: r.attname, type: r.typname })));
    expect(plan.byName.get('dom')!.type).toMatchObject({ name: 'posint', kind: 'int4' });
    expect(plan.byName.get('ma')!.type).toMatchObject({ name: '_mood', kind: 'array' });
  });

  it('agrees with pg_type on every built-in entry (typname and regtype text)', async () => {
    const entries = [...builtinTypes()];
    const res = await client.query<{ oid: number; typname: string; regtype: string }>(
      `SELECT oid::int AS oid, typname::text, oid::regtype::text AS regtype FROM pg_type WHERE oid = ANY($1)`,
      [entries.map((e) => e.oid)],
    );
    const byOid = new Map(res.rows.map((r) => [r.oid, r]));
    for (const e of entries) {
      expect({ oid: e.oid, name: e.name, sqlName: e.sqlName }).toEqual({
        oid: e.oid,
        name: byOid.get(e.oid)?.typname,
        sqlName: byOid.get(e.oid)?.regtype,
      });
    }
  });

  it('renders generated floats, numerics, timestamps and strings like to_jsonb (property)', async () => {
    await client.query(`SELECT pg_create_logical_replication_slot('prop_slot', 'pgoutput')`);
    const rows = fc.sample(
      fc.record({
        f8: fc.double({ noNaN: false }),
        f4: fc.float(),
        n: fc.tuple(fc.bigInt({ min: -(10n ** 40n), max: 10n ** 40n }), fc.nat({ max: 30 })),
        tstz: fc.date({ min: new Date('0100-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
        t: fc.string({ unit: 'grapheme', maxLength: 20 }),
      }),
      { numRuns: 200, seed: 4242 },
    );
    const values = rows.map((r) => [
      Object.is(r.f8, -0) ? '-0' : String(r.f8),
      Object.is(r.f4, -0) ? '-0' : String(r.f4),
      numericText(r.n[0], r.n[1]),
      r.tstz.toISOString(),
      r.t,
    ]);
    await client.query(
      `INSERT INTO floats SELECT i, f8::float8, f4::float4, n::numeric, tstz::timestamptz, t
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS x(f8, f4, n, tstz, t, i)`,
      [0, 1, 2, 3, 4].map((k) => values.map((v) => v[k])),
    );
    // The same changes decoded by a UTC session (the short path) and by one with an odd offset.
    const utc = await readInserts('prop_slot', true);
    await client.query(`SET TimeZone = 'Asia/Kathmandu'`);
    const zoned = await readInserts('prop_slot');
    await client.query(`SET TimeZone = 'UTC'`);
    const expected = await client.query<Record<string, string>>(
      `SELECT to_jsonb(f8)::text AS f8, to_jsonb(f4)::text AS f4, to_jsonb(n)::text AS n, to_jsonb(tstz)::text AS tstz,
              to_jsonb(t)::text AS t FROM floats ORDER BY id`,
    );
    for (const { cache, inserts } of [utc, zoned]) {
      expect(inserts).toHaveLength(rows.length);
      const plan = await planFor(cache, inserts[0]!.relationId);
      for (const [r, insert] of inserts.entries()) {
        const rendered = renderTuple(plan, insert.new);
        for (const name of ['f8', 'f4', 'n', 'tstz', 't']) {
          const got = rendered.values[plan.byName.get(name)!.index];
          expect({ r, name, got }).toEqual({ r, name, got: expected.rows[r]![name] });
        }
      }
    }
  });
});

function compact(json: string): string {
  return json.replace(/("(?:[^"\\]|\\.)*")|, |: /g, (m, s: string | undefined) => s ?? m.trim());
}

function numericText(coef: bigint, scale: number): string {
  const neg = coef < 0n;
  const digits = (neg ? -coef : coef).toString().padStart(scale + 1, '0');
  const body = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return neg ? `-${body}` : body;
}
