import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkSelectColumns,
  compileFilters,
  FILTER_OPS,
  inList,
  parseFilters,
  postgresErrorText,
  printFilters,
  type CompileOptions,
  type Filter,
  type FilterOp,
} from '../../src/replication/changes/index.js';

// Column types by oid: int4 23, int8 20, numeric 1700, float8 701, text 25, varchar 1043, bpchar 1042, bool 16,
// uuid 2950, timestamptz 1184, timestamp 1114, date 1082, time 1083, timetz 1266, interval 1186, jsonb 3802,
// json 114, bytea 17, int4[] 1007, inet 869, name 19.
const TABLE = [
  ['i', 23],
  ['big', 20],
  ['n', 1700],
  ['f', 701],
  ['t', 25],
  ['vc', 1043],
  ['c', 1042],
  ['b', 16],
  ['u', 2950],
  ['tz', 1184],
  ['ts', 1114],
  ['d', 1082],
  ['tm', 1083],
  ['ttz', 1266],
  ['iv', 1186],
  ['jb', 3802],
  ['j', 114],
  ['by', 17],
  ['arr', 1007],
  ['ip', 869],
  ['nm', 19],
].map(([name, typeOid]) => ({ name: name as string, typeOid: typeOid as number }));

const f = (column: string, op: FilterOp, value: string, negate = false): Filter => ({ column, op, value, negate });

/** The SQL truth value of one condition for one column value. */
function truth(filter: Filter, value: string | null, opts: CompileOptions = {}): boolean | null {
  const r = compileFilters([filter], TABLE, opts);
  if (!r.ok) throw new Error(postgresErrorText(r.error));
  return r.filters.conditions[0]!.test(value);
}

function check(filter: Filter, opts: CompileOptions = {}): string | null {
  const r = compileFilters([filter], TABLE, opts);
  return r.ok ? null : postgresErrorText(r.error);
}

describe('parsing filters', () => {
  it('parses every operator, not. and AND lists', () => {
    for (const op of FILTER_OPS) {
      const value = op === 'in' ? '(1,2)' : 'x';
      expect(parseFilters(`col=${op}.${value}`)).toEqual({
        ok: true,
        filters: [f('col', op, op === 'in' ? '{1,2}' : 'x')],
      });
      expect(parseFilters(`col=not.${op}.${value}`)).toMatchObject({ ok: true, filters: [{ negate: true, op }] });
    }
    expect(parseFilters('id=gt.0, id=lt.100')).toEqual({ ok: true, filters: [f('id', 'gt', '0'), f('id', 'lt', '100')] });
  });

  it.each<[string, Filter[]]>([
    ['name=eq.O\'Brien "x"', [f('name', 'eq', 'O\'Brien "x"')]],
    ['name=in.(O\'Brien,Smith)', [f('name', 'in', "{O'Brien,Smith}")]],
    ['name=eq."a,b",id=gt.0', [f('name', 'eq', 'a,b'), f('id', 'gt', '0')]],
    ['name=eq."a.b:c(d)"', [f('name', 'eq', 'a.b:c(d)')]],
    ['name=eq."she said \\"hi\\""', [f('name', 'eq', 'she said "hi"')]],
    ['path=eq."C:\\\\tmp"', [f('path', 'eq', 'C:\\tmp')]],
    ['path=eq."C:\\new"', [f('path', 'eq', 'C:new')]],
    ['name=eq.""', [f('name', 'eq', '')]],
    ['name=eq." a "', [f('name', 'eq', ' a ')]],
    ['tags=in.("a,b",c)', [f('tags', 'in', '{"a,b",c}')]],
    ['name=eq."unterminated', [f('name', 'eq', '"unterminated')]],
    ['name=eq."ab"cd', [f('name', 'eq', '"ab"cd')]],
    ['desc=eq.5" tall,id=gt.0', [f('desc', 'eq', '5" tall'), f('id', 'gt', '0')]],
    ['a=eq.x),b=eq.y),c=eq.z', [f('a', 'eq', 'x)'), f('b', 'eq', 'y)'), f('c', 'eq', 'z')]],
    ['a=eq.(x,y),b=eq.1', [f('a', 'eq', '(x,y)'), f('b', 'eq', '1')]],
    ['ts=gte.2026-01-01T00:00:00+00:00', [f('ts', 'gte', '2026-01-01T00:00:00+00:00')]],
    ['id=not.not.eq.1', []],
  ])('%s', (text, filters) => {
    const r = parseFilters(text);
    if (filters.length === 0) expect(r).toEqual({ ok: false, reason: '["not", "eq.1"]' });
    else expect(r).toEqual({ ok: true, filters });
  });

  it('parse(print(filters)) = filters (property)', () => {
    const column = fc.stringMatching(/^[a-z_][a-z0-9_ ]{0,8}[a-z0-9_]$/);
    const value = fc.string({ unit: fc.constantFrom('a', 'Z', '1', ' ', ',', '(', ')', '"', '\\', '.', '=', '%', 'é', '{', '}') });
    const filter = fc.oneof(
      fc.record({ column, op: fc.constantFrom(...FILTER_OPS.filter((o) => o !== 'in')), value, negate: fc.boolean() }),
      fc.record({
        column,
        op: fc.constant('in' as const),
        value: fc.array(fc.option(value, { nil: null }), { maxLength: 4 }).map(inList),
        negate: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(fc.array(filter, { minLength: 1, maxLength: 4 }), (filters) => {
        expect(parseFilters(printFilters(filters))).toEqual({ ok: true, filters });
      }),
      { numRuns: 500 },
    );
  });
});

describe('checking filters against the table (upstream trigger errors)', () => {
  it.each<[Filter, string]>([
    [f('nope', 'eq', '1'), 'ERROR P0001 (raise_exception) invalid column for filter nope'],
    [f('i', 'eq', 'hey'), 'ERROR 22P02 (invalid_text_representation) invalid input syntax for type integer: "hey"'],
    [f('i', 'eq', '1.5'), 'ERROR 22P02 (invalid_text_representation) invalid input syntax for type integer: "1.5"'],
    [f('i', 'gt', '3000000000'), 'ERROR 22003 (numeric_value_out_of_range) value "3000000000" is out of range for type integer'],
    [f('big', 'lt', 'x'), 'ERROR 22P02 (invalid_text_representation) invalid input syntax for type bigint: "x"'],
    [f('n', 'eq', '1.2.3'), 'ERROR 22P02 (invalid_text_representation) invalid input syntax for type numeric: "1.2.3"'],
    [f('f', 'eq', '1e400'), 'ERROR 22003 (numeric_value_out_of_range) "1e400" is out of range for type double precision'],
    [f('b', 'eq', 'maybe'), 'ERROR 22P02 (invalid_text_representation) invalid input syntax for type boolean: "maybe"'],
    [f('u', 'eq', 'abc'), 'ERROR 22P02 (invalid_text_representation) invalid input syntax for type uuid: "abc"'],
    [f('tz', 'gt', 'soon'), 'ERROR 22007 (invalid_datetime_format) invalid input syntax for type timestamp with time zone: "soon"'],
    [f('i', 'in', '{1,x}'), 'ERROR 22P02 (invalid_text_representation) invalid input syntax for type integer: "x"'],
    [f('i', 'in', '{1,{2}'), 'ERROR 22P02 (invalid_text_representation) malformed array literal: "{1,{2}"'],
    [f('i', 'in', `{${Array.from({ length: 101 }, (_, k) => k).join(',')}}`), 'ERROR P0001 (raise_exception) too many values for `in` filter. Maximum 100'],
    [f('b', 'is', 'maybe'), 'ERROR P0001 (raise_exception) invalid value for is filter: must be null, true, false, or unknown'],
    [f('i', 'is', 'true'), 'ERROR P0001 (raise_exception) is true filter requires a boolean column, got integer'],
    [f('i', 'like', '1%'), 'ERROR P0001 (raise_exception) operator like requires a text-compatible column type, got integer'],
    [f('vc', 'ilike', 'a%'), 'ERROR P0001 (raise_exception) operator ilike requires a text-compatible column type, got character varying'],
    [f('c', 'match', 'a'), 'ERROR P0001 (raise_exception) operator match requires a text-compatible column type, got character'],
    [f('t', 'match', '(a'), 'ERROR P0001 (raise_exception) invalid regular expression for match filter: invalid regular expression: parentheses () not balanced'],
    [f('t', 'like', 'abc\\'), 'ERROR 22025 (invalid_escape_sequence) LIKE pattern must not end with escape character'],
    [f('j', 'eq', '{}'), 'ERROR 42883 (undefined_function) operator does not exist: json = json'],
    [f('j', 'isdistinct', '{}'), 'ERROR 42883 (undefined_function) operator does not exist: json = json'],
    [f('arr', 'in', '{1,2}'), 'ERROR 42883 (undefined_function) operator does not exist: integer[] = integer'],
    [f('by', 'ilike', 'a'), 'ERROR 42883 (undefined_function) operator does not exist: bytea ~~* bytea'],
    [f('by', 'like', '\\x61%'), 'ERROR 22023 (invalid_parameter_value) invalid hexadecimal digit: "%"'],
    [f('by', 'eq', '\\x616'), 'ERROR 22023 (invalid_parameter_value) invalid hexadecimal data: odd number of digits'],
    [f('ip', 'lt', '10.0.0.1'), 'ERROR 0A000 (feature_not_supported) filter operator lt is not supported on columns of type inet'],
  ])('%j', (filter, message) => {
    expect(check(filter)).toBe(message);
  });

  it('accepts what upstream accepts', () => {
    for (const filter of [
      f('j', 'is', 'null'),
      f('b', 'is', 'unknown'),
      f('t', 'imatch', '^[[:alpha:]]+\\d$'),
      f('nm', 'like', 'a%'),
      f('c', 'like', 'a%'),
      f('by', 'like', 'a%'),
      f('ip', 'eq', '10.0.0.1'),
      f('arr', 'eq', '{1,2}'),
    ]) {
      expect({ filter, error: check(filter) }).toEqual({ filter, error: null });
    }
  });

  it('treats columns the role cannot select as unknown, and checks select columns', () => {
    const selectable = (c: string) => c !== 'secret' && c !== 't';
    expect(check(f('t', 'eq', 'x'), { selectable })).toBe('ERROR P0001 (raise_exception) invalid column for filter t');
    expect(checkSelectColumns(['i', 'zz'], TABLE)).toMatchObject({ message: 'invalid column for select zz' });
    expect(checkSelectColumns(['i', 't'], TABLE, selectable)).toMatchObject({ message: 'invalid column for select t' });
    expect(checkSelectColumns(['i'], TABLE, selectable)).toBeNull();
    expect(checkSelectColumns(null, TABLE)).toBeNull();
  });
});

describe('evaluating conditions (golden)', () => {
  it.each<[Filter, string | null, boolean | null]>([
    // integers and exact numerics
    [f('i', 'eq', ' +007 '), '7', true],
    [f('i', 'neq', '7'), '7', false],
    [f('i', 'lt', '0x10'), '15', true],
    [f('big', 'gt', '9223372036854775806'), '9223372036854775807', true],
    [f('big', 'eq', '9223372036854775806'), '9223372036854775807', false],
    [f('n', 'eq', '1.50'), '1.5', true],
    [f('n', 'gt', '123456789012345678901234567890.1'), '123456789012345678901234567890.12', true],
    [f('n', 'lt', 'NaN'), '1e10', true],
    [f('n', 'eq', 'nan'), 'NaN', true],
    [f('n', 'gte', '-Infinity'), '-1', true],
    [f('f', 'eq', '0.1'), '0.1', true],
    [f('f', 'eq', '-0'), '0', true],
    [f('f', 'gt', 'Infinity'), 'NaN', true],
    [f('f', 'lt', '1e-300'), '0', true],
    // text: C collation by code point
    [f('t', 'eq', 'abc'), 'abc', true],
    [f('t', 'lt', 'a'), 'B', true],
    [f('t', 'gt', '\uffff'), '😀', true],
    [f('vc', 'gte', 'b'), 'b', true],
    [f('c', 'eq', 'ab'), 'ab ', true],
    [f('c', 'eq', 'ab  '), 'ab ', true],
    [f('nm', 'eq', 'x'), 'x', true],
    // booleans
    [f('b', 'eq', 'yes'), 't', true],
    [f('b', 'eq', 'off'), 't', false],
    [f('b', 'lt', 'true'), 'f', true],
    [f('b', 'is', 'true'), 't', true],
    [f('b', 'is', 'false'), null, false],
    [f('b', 'is', 'unknown'), null, true],
    [f('b', 'is', 'true', true), null, true],
    // uuid: case and format of the literal do not matter
    [f('u', 'eq', '{A0EEBC999C0B4EF8BB6D6BB9BD380A11}'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true],
    [f('u', 'lt', 'b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', true],
    // date/time by instant
    [f('tz', 'eq', '2026-01-01T02:00:00+02:00'), '2026-01-01 00:00:00+00', true],
    [f('tz', 'eq', '2026-01-01 00:00:00Z'), '2025-12-31 21:00:00-03', true],
    [f('tz', 'gt', '2026-01-01'), '2026-01-01 00:00:00.000001+00', true],
    [f('tz', 'lt', 'infinity'), '294276-12-31 23:59:59.999999+00', true],
    [f('tz', 'gt', '-infinity'), '0044-03-15 12:00:00+00 BC', true],
    [f('ts', 'eq', '2026-01-01 12:00+05'), '2026-01-01 12:00:00', true],
    [f('d', 'lt', '2026-03-01'), '2026-02-28', true],
    [f('d', 'gt', '0001-01-01'), '0001-12-31 BC', false],
    [f('tm', 'eq', '12:00'), '12:00:00', true],
    [f('ttz', 'eq', '12:00+02'), '10:00:00+00', false],
    [f('ttz', 'gt', '12:00+02'), '10:00:00+00', true],
    [f('iv', 'eq', '1 mon'), '30 days', true],
    [f('iv', 'lt', '1 day'), '23:59:59', true],
    [f('iv', 'eq', 'P1DT2H'), '1 day 02:00:00', true],
    [f('iv', 'gt', '@ 1 hour ago'), '-00:59:00', true],
    // jsonb
    [f('jb', 'eq', '{"b": 2, "a": [1.0]}'), '{"a": [1], "b": 2}', true],
    [f('jb', 'gt', '[1, 2]'), '{}', true],
    [f('jb', 'lt', '[5]'), '1', true],
    // bytea, arrays, others
    [f('by', 'eq', '\\x0102'), '\\x0102', true],
    [f('by', 'lt', 'a'), '\\x60', true],
    [f('by', 'like', 'a%'), '\\x61ff', true],
    [f('arr', 'eq', '{1,2}'), '{1,2}', true],
    [f('arr', 'lt', '{1,3}'), '{1,2,9}', true],
    [f('arr', 'eq', '{NULL}'), '{NULL}', true],
    [f('ip', 'eq', '10.0.0.1'), '10.0.0.1', true],
    // null semantics
    [f('i', 'eq', '1'), null, null],
    [f('i', 'neq', '1'), null, null],
    [f('i', 'isdistinct', '1'), null, true],
    [f('i', 'isdistinct', '1', true), null, false],
    [f('i', 'isdistinct', '1'), '1', false],
    [f('i', 'is', 'null'), null, true],
    [f('i', 'is', 'null', true), '5', true],
    [f('t', 'like', '%'), null, null],
    // in
    [f('i', 'in', '{1,2,3}'), '2', true],
    [f('i', 'in', '{1,2,3}'), '4', false],
    [f('i', 'in', '{1,NULL}'), '4', null],
    [f('i', 'in', '{1,NULL}'), '1', true],
    [f('i', 'in', '{1,NULL}', true), '4', null],
    [f('t', 'in', '{"a,b",c}'), 'a,b', true],
    [f('t', 'in', '{ a , b }'), 'a', true],
    [f('t', 'in', '{"NULL"}'), 'NULL', true],
    // like / ilike
    [f('t', 'like', 'a_c%'), 'abcdef', true],
    [f('t', 'like', 'a\\%'), 'a%', true],
    [f('t', 'like', 'a\\%'), 'ab', false],
    [f('t', 'like', 'ABC'), 'abc', false],
    [f('t', 'ilike', 'ABC'), 'abc', true],
    [f('t', 'like', '_'), '😀', true],
    [f('t', 'like', 'a%'), 'a\nb', true],
    [f('c', 'like', 'a'), 'a  ', false],
    [f('c', 'like', 'a%'), 'a  ', true],
    // match / imatch (POSIX ARE)
    [f('t', 'match', '^a.c$'), 'a\nc', true],
    [f('t', 'match', '(?n)^a.c$'), 'a\nc', false],
    [f('t', 'match', '[[:digit:]]+'), 'abc123', true],
    [f('t', 'match', '\\mfoo\\M'), 'a foo b', true],
    [f('t', 'match', '\\mfoo\\M'), 'afoob', false],
    [f('t', 'match', '^\\d{2,3}$'), '1234', false],
    [f('t', 'match', 'a{'), 'a{', true],
    [f('t', 'match', '***=a.c'), 'xa.cx', true],
    [f('t', 'match', '***=a.c'), 'abc', false],
    [f('t', 'match', 'ABC'), 'xabc', false],
    [f('t', 'imatch', 'ABC'), 'xabc', true],
    [f('t', 'match', '(?i)ABC'), 'xabc', true],
    [f('t', 'match', '^.$'), '😀', true],
    [f('t', 'match', 'a\\Bb'), 'a\\b', true],
  ])('%j on %j -> %j', (filter, value, expected) => {
    expect(truth(filter, value)).toBe(expected);
  });

  it('re-reads relative literals (now, today) at each evaluation', () => {
    let clock = Date.parse('2026-01-01T12:00:00Z');
    const opts = { now: () => clock };
    const r = compileFilters([f('tz', 'gt', 'now')], TABLE, opts);
    if (!r.ok) throw new Error('compile failed');
    expect(r.filters.conditions[0]!.test('2026-01-01 13:00:00+00')).toBe(true);
    clock = Date.parse('2026-01-01T14:00:00Z');
    expect(r.filters.conditions[0]!.test('2026-01-01 13:00:00+00')).toBe(false);
    expect(truth(f('d', 'eq', 'today'), '2026-01-01', opts)).toBe(true);
    expect(truth(f('d', 'in', '{yesterday,tomorrow}'), '2026-01-02', opts)).toBe(true);
  });

  it('ANDs conditions; a NULL result or a missing column hides the row', () => {
    const r = compileFilters([f('i', 'gt', '0'), f('t', 'eq', 'a')], TABLE);
    if (!r.ok) throw new Error('compile failed');
    const row = (i: string | null | undefined, t: string | null | undefined) => {
      const values: Array<string | null | undefined> = TABLE.map(() => null);
      values[0] = i;
      values[4] = t;
      return values;
    };
    expect(r.filters.matches(row('1', 'a'))).toBe(true);
    expect(r.filters.matches(row('1', 'b'))).toBe(false);
    expect(r.filters.matches(row(null, 'a'))).toBe(false);
    expect(r.filters.matches(row('1', undefined))).toBe(false);
    const tuple = TABLE.map(() => ({ kind: 'null' }) as const) as Array<{ kind: string; value?: string }>;
    tuple[0] = { kind: 'text', value: '5' };
    tuple[4] = { kind: 'unchanged' };
    expect(r.filters.matchesTuple(tuple as never)).toBe(false);
    tuple[4] = { kind: 'text', value: 'a' };
    expect(r.filters.matchesTuple(tuple as never)).toBe(true);
    const none = compileFilters([], TABLE);
    expect(none.ok && none.filters.matches([])).toBe(true);
  });
});

describe('evaluation properties', () => {
  const intValue = fc.option(fc.integer({ min: -50, max: 50 }).map(String), { nil: null });
  const textValue = fc.option(fc.string({ unit: fc.constantFrom('a', 'b', 'B', '%', '_', 'é') , maxLength: 4 }), { nil: null });

  it('not. inverts every non-null result and keeps NULL', () => {
    const ops: FilterOp[] = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte', 'isdistinct', 'is', 'in'];
    fc.assert(
      fc.property(fc.constantFrom(...ops), fc.integer({ min: -5, max: 5 }), intValue, (op, lit, value) => {
        const v = op === 'is' ? 'null' : op === 'in' ? `{${lit},${lit + 1}}` : String(lit);
        const plain = truth(f('i', op, v), value);
        const negated = truth(f('i', op, v, true), value);
        expect(negated).toBe(plain === null ? null : !plain);
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom<FilterOp>('like', 'ilike', 'match', 'imatch', 'eq', 'lt'), textValue, textValue, (op, pat, value) => {
        fc.pre(pat !== null);
        const plain = truth(f('t', op, pat!), value);
        const negated = truth(f('t', op, pat!, true), value);
        expect(negated).toBe(plain === null ? null : !plain);
      }),
    );
  });

  it('in equals the OR of eq over its elements (SQL three-valued OR)', () => {
    fc.assert(
      fc.property(fc.array(intValue, { maxLength: 5 }), intValue, (items, value) => {
        const results = items.map((item) => (item === null ? null : truth(f('i', 'eq', item), value)));
        const or = results.includes(true) ? true : results.includes(null) ? null : false;
        expect(truth(f('i', 'in', inList(items)), value)).toBe(or);
      }),
    );
  });
});
