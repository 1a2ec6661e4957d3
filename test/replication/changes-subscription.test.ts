import { describe, expect, it } from 'vitest';
import { postgresChangesId } from '../../src/shared/subscription-id.js';
import {
  bindingAcceptsAction,
  bindingMatchesTable,
  bindingParamsForLog,
  inspect,
  legacyTopicParams,
  notEnabledMessage,
  parseBinding,
  parseLegacyTopic,
  postgresErrorText,
  SELECT_NOT_A_LIST,
  SELECT_ON_WILDCARD,
  subscriptionExceptionMessage,
  type Binding,
  type BindingResult,
} from '../../src/replication/changes/index.js';

const ok = (r: BindingResult): Binding => {
  if (!r.ok) throw new Error(`expected ok, got ${r.message}`);
  return r.binding;
};
const err = (r: BindingResult): string => {
  if (r.ok) throw new Error('expected an error');
  return r.message;
};
const NO_PARAMS = 'No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: ';

describe('parseBinding: shapes and defaults (§6.1)', () => {
  it('schema + table + filter', () => {
    const params = { event: 'INSERT', schema: 'public', table: 'todos', filter: 'id=eq.1' };
    expect(ok(parseBinding(params))).toEqual({
      id: postgresChangesId(params),
      event: 'INSERT',
      schema: 'public',
      table: 'todos',
      filters: [{ column: 'id', op: 'eq', value: '1', negate: false }],
      select: null,
    });
  });

  it('schema + table without a filter key; schema alone = all its tables; table alone = public', () => {
    expect(ok(parseBinding({ schema: 'app', table: 't' }))).toMatchObject({ schema: 'app', table: 't', filters: [] });
    expect(ok(parseBinding({ event: 'INSERT', schema: 'public' }))).toMatchObject({ schema: 'public', table: '*' });
    expect(ok(parseBinding({ table: 'messages' }))).toMatchObject({ schema: 'public', table: 'messages' });
    expect(ok(parseBinding({ schema: '*' }))).toMatchObject({ schema: '*', table: '*' });
  });

  it('empty or whitespace filter is no filter', () => {
    expect(ok(parseBinding({ schema: 'public', table: 't', filter: '' })).filters).toEqual([]);
    expect(ok(parseBinding({ schema: 'public', table: 't', filter: '   ' })).filters).toEqual([]);
  });

  it.each([
    ['*', '*'],
    ['INSERT', 'INSERT'],
    ['insert', 'INSERT'],
    ['uPdAtE', 'UPDATE'],
    ['delete', 'DELETE'],
    ['TRUNCATE', '*'],
    ['', '*'],
    [5, '*'],
    [null, '*'],
    [undefined, '*'],
  ])('event %j behaves as %s', (event, expected) => {
    expect(ok(parseBinding({ event, schema: 'public' })).event).toBe(expected);
  });

  it('uses the id the join reply carries, by default postgresChangesId of the entry as sent', () => {
    const params = { schema: 'public', event: '*' };
    expect(ok(parseBinding(params)).id).toBe(postgresChangesId({ event: '*', schema: 'public' }));
    expect(ok(parseBinding(params, 7)).id).toBe(7);
  });
});

describe('parseBinding: errors with upstream texts', () => {
  it('missing schema and table renders the params as Elixir inspects them', () => {
    expect(err(parseBinding({}))).toBe(`${NO_PARAMS}%{}`);
    expect(err(parseBinding({ event: '*' }))).toBe(`${NO_PARAMS}%{"event" => "*"}`);
    expect(err(parseBinding({ filter: 'id=eq.1', event: 'INSERT' }))).toBe(
      `${NO_PARAMS}%{"event" => "INSERT", "filter" => "id=eq.1"}`,
    );
    // A filter with only a schema (or only a table) is not one of the accepted shapes.
    expect(err(parseBinding({ schema: 'public', filter: 'id=eq.1' }))).toBe(
      `${NO_PARAMS}%{"filter" => "id=eq.1", "schema" => "public"}`,
    );
    expect(err(parseBinding({ schema: 'public', table: 'images', filter: [123] }))).toBe(
      `${NO_PARAMS}%{"filter" => [123], "schema" => "public", "table" => "images"}`,
    );
    expect(err(parseBinding({ schema: 'public', table: 't', filter: null }))).toBe(
      `${NO_PARAMS}%{"filter" => nil, "schema" => "public", "table" => "t"}`,
    );
    expect(err(parseBinding({ schema: 5, table: true, x: { a: [1.5, 'q"'] } }))).toBe(
      `${NO_PARAMS}%{"schema" => 5, "table" => true, "x" => %{"a" => [1.5, "q\\""]}}`,
    );
  });

  it('redacts params carrying a token', () => {
    expect(err(parseBinding({ user_token: 'secret' }))).toBe(`${NO_PARAMS}<redacted>`);
    expect(err(parseBinding({ auth_token: 'secret', event: '*' }))).toBe(`${NO_PARAMS}<redacted>`);
  });

  it('select rules', () => {
    expect(ok(parseBinding({ schema: 'public', table: 't', select: ['a', 1, 'b', null] })).select).toEqual(['a', 'b']);
    expect(ok(parseBinding({ schema: 'public', table: 't', select: [] })).select).toBeNull();
    expect(ok(parseBinding({ schema: 'public', table: 't', select: [1, 2] })).select).toBeNull();
    expect(ok(parseBinding({ schema: 'public', table: 't', select: { a: 1 } })).select).toBeNull();
    expect(err(parseBinding({ schema: 'public', table: 't', select: 'a,b' }))).toBe(SELECT_NOT_A_LIST);
    expect(SELECT_NOT_A_LIST).toBe(
      'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]',
    );
    // The select check comes before the shape check...
    expect(err(parseBinding({ select: 'a' }))).toBe(SELECT_NOT_A_LIST);
    // ...and the wildcard check after the filter parse.
    expect(err(parseBinding({ schema: 'public', select: ['a'] }))).toBe(SELECT_ON_WILDCARD);
    expect(err(parseBinding({ schema: '*', table: 't', select: ['a'] }))).toBe(SELECT_ON_WILDCARD);
    expect(err(parseBinding({ schema: 'public', table: '*', filter: 'x', select: ['a'] }))).toBe(
      'Error parsing `filter` params: ["x"]',
    );
    expect(SELECT_ON_WILDCARD).toBe(
      'Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name.',
    );
  });

  it.each([
    ['wrong', 'Error parsing `filter` params: ["wrong"]'],
    ['undefined', 'Error parsing `filter` params: ["undefined"]'],
    ['subject=foo.hey', 'Error parsing `filter` params: ["foo", "hey"]'],
    ['id=gt.0,id=foo.100', 'Error parsing `filter` params: ["foo", "100"]'],
    ['id=eq', 'Error parsing `filter` params: ["eq"]'],
    ['id=not.5', 'Error parsing `filter` params: ["5"]'],
    ['id=', 'Error parsing `filter` params: [""]'],
    ['id=in.1,2', 'Error parsing `filter` params: `in` filter value must be wrapped by parentheses'],
    ['id=gt.0,', 'Error parsing `filter` params: filter must not contain empty segments (check for extra commas)'],
    [',id=gt.0', 'Error parsing `filter` params: filter must not contain empty segments (check for extra commas)'],
    ['a=eq.1,,b=eq.2', 'Error parsing `filter` params: filter must not contain empty segments (check for extra commas)'],
    ['a=bad."q\\"x"', 'Error parsing `filter` params: ["bad", "\\"q\\\\\\"x\\""]'],
  ])('filter %j -> %s', (filter, message) => {
    expect(err(parseBinding({ schema: 'public', table: 't', filter }))).toBe(message);
  });
});

describe('legacy topic form (§6.8)', () => {
  it.each([
    ['public', { schema: 'public' }],
    ['public:todos', { schema: 'public', table: 'todos' }],
    ['public:todos:id=eq.1', { schema: 'public', table: 'todos', filter: 'id=eq.1' }],
    ['public:todos:ts=eq.12:00', { schema: 'public', table: 'todos', filter: 'ts=eq.12:00' }],
    ['*', { schema: '*' }],
    ['public:', { schema: 'public', table: '' }],
  ])('%s -> %j', (topic, params) => {
    expect(legacyTopicParams(topic)).toEqual(params);
  });

  it('becomes one binding whose id is that of the derived entry', () => {
    const b = ok(parseLegacyTopic('public:todos:id=eq.1'));
    expect(b).toMatchObject({ event: '*', schema: 'public', table: 'todos', select: null });
    expect(b.filters).toEqual([{ column: 'id', op: 'eq', value: '1', negate: false }]);
    expect(b.id).toBe(postgresChangesId({ schema: 'public', table: 'todos', filter: 'id=eq.1' }));
    expect(ok(parseLegacyTopic('public'))).toMatchObject({ schema: 'public', table: '*' });
    expect(err(parseLegacyTopic('public:todos:bogus'))).toBe('Error parsing `filter` params: ["bogus"]');
  });
});

describe('matching and messages', () => {
  it('matches tables with LIKE semantics (no escape), * = all', () => {
    const b = (schema: string, table: string) => ok(parseBinding({ schema, table }));
    expect(bindingMatchesTable(b('public', 'todos'), 'public', 'todos')).toBe(true);
    expect(bindingMatchesTable(b('public', 'todos'), 'public', 'Todos')).toBe(false);
    expect(bindingMatchesTable(b('*', '*'), 'x', 'y')).toBe(true);
    expect(bindingMatchesTable(b('public', '*'), 'other', 'todos')).toBe(false);
    expect(bindingMatchesTable(b('public', 'my_table'), 'public', 'myXtable')).toBe(true);
    expect(bindingMatchesTable(b('public', 'to%'), 'public', 'todos')).toBe(true);
    expect(bindingMatchesTable(b('pub.ic', 't'), 'public', 't')).toBe(false);
  });

  it('filters by action', () => {
    const ins = ok(parseBinding({ event: 'INSERT', schema: 'public' }));
    expect([bindingAcceptsAction(ins, 'INSERT'), bindingAcceptsAction(ins, 'DELETE')]).toEqual([true, false]);
    const all = ok(parseBinding({ schema: 'public' }));
    expect(['INSERT', 'UPDATE', 'DELETE'].every((a) => bindingAcceptsAction(all, a as 'INSERT'))).toBe(true);
  });

  it('renders the subscription failure messages like upstream', () => {
    const none = ok(parseBinding({ event: 'INSERT', schema: 'public' }));
    expect(notEnabledMessage(none)).toBe(
      'Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [event: INSERT, schema: public, table: *, filters: [], select: nil]',
    );
    const withFilter = ok(parseBinding({ schema: 'public', table: 'test', filter: 'subject=eq.hey' }));
    const exception = postgresErrorText({
      sqlstate: 'P0001',
      condition: 'raise_exception',
      message: 'invalid column for filter subject',
    });
    expect(subscriptionExceptionMessage(withFilter, exception)).toBe(
      'Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: [event: *, schema: public, table: test, filters: [{"subject", "eq", "hey", false}], select: nil]. Exception: ERROR P0001 (raise_exception) invalid column for filter subject',
    );
    const sel = ok(parseBinding({ schema: 'public', table: 't', filter: 'id=not.in.(1,2)', select: ['a'] }));
    expect(bindingParamsForLog(sel)).toBe(
      'event: *, schema: public, table: t, filters: [{"id", "in", "{1,2}", true}], select: ["a"]',
    );
  });

  it('pretty-prints long filter lists one per line, as inspect(pretty: true) does past 80 columns', () => {
    const b = ok(parseBinding({ schema: 'public', table: 't', filter: 'aaaaaaaaaa=eq.1,bbbbbbbbbb=eq.2,cccccccccc=eq.3' }));
    expect(bindingParamsForLog(b)).toBe(
      'event: *, schema: public, table: t, filters: [\n  {"aaaaaaaaaa", "eq", "1", false},\n  {"bbbbbbbbbb", "eq", "2", false},\n  {"cccccccccc", "eq", "3", false}\n], select: nil',
    );
  });

  it('inspects strings like Elixir', () => {
    expect(inspect('a"b\\c\n#{x}')).toBe('"a\\"b\\\\c\\n\\#{x}"');
    expect(inspect('héllo ☃')).toBe('"héllo ☃"');
    expect(inspect('a\u0001')).toBe('<<97, 1>>');
    expect(inspect([0.5, 1e-7, 1234567.5, 1e21])).toBe('[0.5, 1.0e-7, 1234567.5, 1.0e21]');
    expect(inspect({ b: 1, a: null, B: false })).toBe('%{"B" => false, "a" => nil, "b" => 1}');
  });
});
