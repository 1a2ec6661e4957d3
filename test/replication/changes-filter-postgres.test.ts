import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFilters, inList, postgresErrorText, type FilterOp } from '../../src/replication/changes/index.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

// Drives our filter evaluator and PostgreSQL 18 with the same generated values: the column value is a literal cast
// to the column type and printed back (exactly what pgoutput's text mode carries), the filter value is another
// literal, and every operator's SQL result (true/false/NULL) must equal ours. The database uses the C collation;
// the session zone is +05:30 so timestamptz column texts carry an offset; zone-bearing types always get explicit
// zones in their literals (we read a zone-less timestamptz literal as UTC).

let db: TestDatabase;
let client: pg.Client;

const SQL_OPS: Array<[FilterOp, string]> = [
  ['eq', '='],
  ['neq', '<>'],
  ['lt', '<'],
  ['lte', '<='],
  ['gt', '>'],
  ['gte', '>='],
];

interface Spec {
  name: string;
  oid: number;
  /** SQL type of the column (may carry a typmod) and of the literal. */
  column: string;
  literal: string;
  value: fc.Arbitrary<string>;
  /** Also evaluate `in` lists. */
  inList?: boolean;
  /** Extra operators with their SQL (the pattern is the literal). */
  patterns?: Array<[FilterOp, string, fc.Arbitrary<string>]>;
}

const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
const pad2 = (n: number) => String(n).padStart(2, '0');
const withUnderscores = (s: string) => (s.length > 3 ? `${s.slice(0, -3)}_${s.slice(-3)}` : s);

const intText = (min: number, max: number) =>
  fc.tuple(fc.integer({ min, max }), pick(0, 1, 2, 3, 4)).map(([n, form]) => {
    if (form === 1) return ` ${n} `;
    if (form === 2 && n >= 0) return `+${n}`;
    if (form === 3 && n >= 0) return `0x${n.toString(16)}`;
    if (form === 4 && n >= 0) return withUnderscores(String(n));
    return String(n);
  });

const numericText = fc.oneof(
  fc.tuple(fc.bigInt({ min: -(10n ** 35n), max: 10n ** 35n }), fc.nat({ max: 20 })).map(([c, s]) => {
    const neg = c < 0n;
    const d = (neg ? -c : c).toString().padStart(s + 1, '0');
    return `${neg ? '-' : ''}${s ? `${d.slice(0, -s)}.${d.slice(-s)}` : d}`;
  }),
  fc.tuple(fc.integer({ min: -999, max: 999 }), fc.integer({ min: -5, max: 5 })).map(([m, e]) => `${m / 10}e${e}`),
  pick('NaN', 'Infinity', '-Infinity', '0', '-0.000', '1.10', '1.1'),
);

// No non-ASCII letters: the test database uses the C locale, where Postgres neither case-folds them (ILIKE, ~*)
// nor counts them as [[:alpha:]]; we follow a UTF-8 locale there (see pattern.ts). Caseless non-ASCII stays in.
const text = fc.string({ unit: pick('a', 'b', 'B', ' ', '😀', '\uffff', '%', '_', '.', '\\'), maxLength: 5 });

const likePattern = fc
  .array(pick('a', 'b', 'B', '%', '_', '\\%', '\\_', '\\\\', '😀', ' '), { maxLength: 5 })
  .map((parts) => parts.join(''));

const regexAtom = pick('a', 'b', 'B', '😀', '.', '[ab]', '[^a]', '\\d', '[[:alpha:]]', '[[:upper:]]', '\\s', '😀', '(a|%)');
const regex = fc
  .array(fc.tuple(regexAtom, pick('', '*', '+', '?', '{1,2}', '*?')), { maxLength: 4 })
  .chain((atoms) =>
    fc.tuple(pick('', '^'), pick('', '$'), pick(false, true)).map(([start, end, alt]) => {
      const body = atoms.map(([a, q]) => a + q).join('');
      return `${start}${alt ? `(${body}|b)` : body}${end}`;
    }),
  );

const year = fc.integer({ min: 1, max: 9999 });
const dateParts = fc.tuple(year, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 28 }), fc.boolean());
const dateText = dateParts.map(([y, m, d, bc]) => `${String(y).padStart(4, '0')}-${pad2(m)}-${pad2(d)}${bc && y < 300 ? ' BC' : ''}`);
const timeText = fc
  .tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 59 }), fc.nat({ max: 999999 }), pick(0, 1, 2))
  .map(([h, m, s, us, form]) =>
    form === 0 ? `${pad2(h)}:${pad2(m)}` : form === 1 ? `${pad2(h)}:${pad2(m)}:${pad2(s)}` : `${pad2(h)}:${pad2(m)}:${pad2(s)}.${String(us).padStart(6, '0')}`,
  );
const zoneText = fc
  .tuple(pick('+', '-'), fc.integer({ min: 0, max: 14 }), pick(0, 30, 45), pick(0, 1, 2, 3))
  .map(([sign, h, m, form]) =>
    form === 0 ? 'Z' : form === 1 ? `${sign}${pad2(h)}` : form === 2 ? `${sign}${pad2(h)}:${pad2(m)}` : `${sign}${pad2(h)}${pad2(m)}`,
  );
const timestampText = (zone: boolean) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.tuple(dateParts, pick(' ', 'T'), timeText, zoneText).map(([[y, m, d, bc], sep, t, z]) => {
      const date = `${String(y).padStart(4, '0')}-${pad2(m)}-${pad2(d)}`;
      return `${date}${sep}${t}${zone ? z : ''}${bc && y < 300 ? ' BC' : ''}`;
    }) },
    { weight: 1, arbitrary: pick('infinity', '-infinity', 'epoch') },
  );
const intervalText = fc.oneof(
  fc.tuple(fc.integer({ min: -40, max: 40 }), pick('days', 'mons', 'years', 'hours', 'minutes', 'weeks')).map(([n, u]) => `${n} ${u}`),
  fc.tuple(fc.integer({ min: -3, max: 3 }), fc.integer({ min: -30, max: 30 }), timeText).map(([mo, d, t]) => `${mo} mons ${d} days ${t}`),
  fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 })).map(([a, b]) => `${a}.${b} days`),
  fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 48 })).map(([y, h]) => `P${y}YT${h}H`),
);
const uuidText = fc.tuple(fc.uuid(), pick(0, 1, 2, 3)).map(([u, form]) =>
  form === 1 ? u.toUpperCase() : form === 2 ? `{${u}}` : form === 3 ? u.replace(/-/g, '') : u,
);
const jsonText = fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)).filter((s) => !s.includes('\\u0000'));
const smallJson = fc.oneof(jsonText, pick('1', '1.0', '[1, 2]', '{"a": 1}', '{"aa": 1}', '{"b": [1]}', '"x"', 'null', 'true', '[]', '{}'));

const SPECS: Spec[] = [
  { name: 'int4', oid: 23, column: 'int4', literal: 'int4', value: intText(-2147483648, 2147483647), inList: true },
  { name: 'int8', oid: 20, column: 'int8', literal: 'int8', value: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String), inList: true },
  { name: 'numeric', oid: 1700, column: 'numeric', literal: 'numeric', value: numericText, inList: true },
  { name: 'float8', oid: 701, column: 'float8', literal: 'float8', value: fc.oneof(fc.double().map(String), pick('NaN', '-Infinity', '1e-300', '-0')), inList: true },
  { name: 'float4', oid: 700, column: 'float4', literal: 'float4', value: fc.oneof(fc.float().map(String), pick('0.1', '1e-40', '3.4e38')), inList: true },
  {
    name: 'text',
    oid: 25,
    column: 'text',
    literal: 'text',
    value: text,
    inList: true,
    patterns: [
      ['like', 'LIKE', likePattern],
      ['ilike', 'ILIKE', likePattern],
      ['match', '~', regex],
      ['imatch', '~*', regex],
    ],
  },
  { name: 'varchar', oid: 1043, column: 'varchar(10)', literal: 'varchar', value: text, inList: true },
  { name: 'bpchar', oid: 1042, column: 'char(3)', literal: 'bpchar', value: fc.string({ unit: pick('a', 'b', ' '), maxLength: 3 }), inList: true, patterns: [['like', 'LIKE', likePattern]] },
  { name: 'name', oid: 19, column: 'name', literal: 'name', value: text, patterns: [['like', 'LIKE', likePattern]] },
  { name: 'bool', oid: 16, column: 'bool', literal: 'bool', value: pick('t', 'f', 'true', 'FALSE', ' yes ', 'no', 'on', 'off', '1', '0', 'y', 'n'), inList: true },
  { name: 'uuid', oid: 2950, column: 'uuid', literal: 'uuid', value: fc.oneof(uuidText, pick('00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff')), inList: true },
  { name: 'timestamptz', oid: 1184, column: 'timestamptz', literal: 'timestamptz', value: timestampText(true), inList: true },
  { name: 'timestamp', oid: 1114, column: 'timestamp', literal: 'timestamp', value: timestampText(false), inList: true },
  { name: 'date', oid: 1082, column: 'date', literal: 'date', value: fc.oneof(dateText, pick('infinity', '-infinity', 'epoch')), inList: true },
  { name: 'time', oid: 1083, column: 'time', literal: 'time', value: fc.oneof(timeText, pick('24:00:00')), inList: true },
  { name: 'timetz', oid: 1266, column: 'timetz', literal: 'timetz', value: fc.tuple(timeText, zoneText).map(([t, z]) => t + z), inList: true },
  { name: 'interval', oid: 1186, column: 'interval', literal: 'interval', value: intervalText, inList: true },
  { name: 'jsonb', oid: 3802, column: 'jsonb', literal: 'jsonb', value: smallJson, inList: true },
  {
    name: 'bytea',
    oid: 17,
    column: 'bytea',
    literal: 'bytea',
    value: fc.oneof(
      fc.uint8Array({ maxLength: 3 }).map((b) => `\\x${Buffer.from(b).toString('hex')}`),
      fc.stringMatching(/^[a-c]{0,3}$/),
    ),
    patterns: [['like', 'LIKE', fc.stringMatching(/^[a-c%_]{0,3}$/)]],
  },
  {
    name: 'int4[]',
    oid: 1007,
    column: 'int4[]',
    literal: 'int4[]',
    value: fc.oneof(
      fc
        .array(fc.option(fc.integer({ min: -3, max: 3 }), { nil: null }), { maxLength: 3 })
        .map((xs) => inList(xs.map((x) => (x === null ? null : String(x))))),
      pick('{{1,2},{3,4}}', '{{1}}'),
    ),
  },
];

beforeAll(async () => {
  db = await createTestDatabase('changes_filter');
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query(`SET TimeZone = 'Asia/Kolkata'`);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

type Truth = boolean | null;

describe('filter evaluation agrees with PostgreSQL', () => {
  it.each(SPECS.map((s) => [s.name, s] as const))('%s', async (_name, spec) => {
    const cases = fc.sample(
      fc.record({
        a: fc.option(spec.value, { nil: null, freq: 8 }),
        b: spec.value,
        list: fc.array(fc.option(spec.value, { nil: null, freq: 6 }), { maxLength: 4 }),
        patterns: fc.tuple(...(spec.patterns ?? []).map(([, , arb]) => arb)),
      }),
      { numRuns: 250, seed: 20260601 },
    );
    const cols = SQL_OPS.map(([op, sym]) => `x.a::${spec.column} ${sym} x.b::${spec.literal} AS ${op}`);
    cols.push(`x.a::${spec.column} IS DISTINCT FROM x.b::${spec.literal} AS isdistinct`);
    if (spec.inList) cols.push(`x.a::${spec.column} = ANY(x.l::${spec.literal}[]) AS in_list`);
    // bytea LIKE takes a bytea pattern; the text-like types take text.
    const patternType = spec.name === 'bytea' ? 'bytea' : 'text';
    (spec.patterns ?? []).forEach(([, sym], k) =>
      cols.push(`x.a::${spec.column} ${sym} (x.p::text[])[${k + 1}]::${patternType} AS pattern_${k}`),
    );
    // concat() prints with the type's output function, as pgoutput does (a ::text cast would not: bool would read
    // `true`, bpchar would lose its padding).
    const res = await client.query<Record<string, Truth | string>>(
      `SELECT CASE WHEN x.a IS NOT NULL THEN concat(x.a::${spec.column}) END AS col, ${cols.join(', ')}
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(a, b, l, p, i) ORDER BY x.i`,
      [
        cases.map((c) => c.a),
        cases.map((c) => c.b),
        cases.map((c) => inList(c.list)),
        cases.map((c) => `{${(c.patterns as string[]).map((p) => `"${p.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`),
      ],
    );
    const table = [{ name: 'c', typeOid: spec.oid }];
    const ours = (op: FilterOp, value: string, col: string | null): Truth => {
      const r = compileFilters([{ column: 'c', op, value, negate: false }], table);
      if (!r.ok) throw new Error(`${op} ${JSON.stringify(value)}: ${postgresErrorText(r.error)}`);
      return r.filters.conditions[0]!.test(col);
    };
    let compared = 0;
    for (const [i, c] of cases.entries()) {
      const row = res.rows[i]!;
      const col = row.col as string | null;
      const checks: Array<[string, FilterOp, string, Truth]> = [
        ...SQL_OPS.map(([op]) => [op, op, c.b, row[op] as Truth] as [string, FilterOp, string, Truth]),
        ['isdistinct', 'isdistinct', c.b, row.isdistinct as Truth],
      ];
      if (spec.inList) checks.push(['in', 'in', inList(c.list), row.in_list as Truth]);
      (spec.patterns ?? []).forEach(([op], k) => checks.push([op, op, (c.patterns as string[])[k]!, row[`pattern_${k}`] as Truth]));
      for (const [label, op, value, expected] of checks) {
        const got = ours(op, value, col);
        expect({ label, column: col, value, result: got }).toEqual({ label, column: col, value, result: expected });
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it('casts reject the same literals with the same messages as Postgres', async () => {
    const probes: Array<[number, string, string]> = [
      [23, 'int4', 'hey'],
      [23, 'int4', '1.5'],
      [23, 'int4', '2147483648'],
      [21, 'int2', '40000'],
      [20, 'int8', '9223372036854775808'],
      [1700, 'numeric', 'abc'],
      [701, 'float8', '1e400'],
      [701, 'float8', 'one'],
      [700, 'float4', '1e40'],
      [16, 'bool', 'maybe'],
      [2950, 'uuid', 'abc'],
      [2950, 'uuid', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
      [1184, 'timestamptz', 'soon'],
      [1082, 'date', 'x'],
      [1083, 'time', 'noon?'],
      [1186, 'interval', 'forever'],
      [3802, 'jsonb', '{"a":'],
      [17, 'bytea', '\\xzz'],
      [17, 'bytea', '\\x123'],
      [1007, 'int4[]', '{1,{2}'],
      [1007, 'int4[]', '{1,x}'],
    ];
    for (const [oid, type, literal] of probes) {
      let pgMessage = '';
      try {
        await client.query(`SELECT $1::${type}`, [literal]);
      } catch (err) {
        pgMessage = (err as Error).message;
      }
      const r = compileFilters([{ column: 'c', op: 'eq', value: literal, negate: false }], [{ name: 'c', typeOid: oid }]);
      expect({ type, literal, message: r.ok ? '' : r.error.message }).toEqual({ type, literal, message: pgMessage });
    }
  });
});
