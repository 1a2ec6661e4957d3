import { describe, expect, it } from 'vitest';
import { logicTree, opExpr, singleValue } from '../../../src/baas/rest/grammar/filters.js';
import { fieldName, jsonPath } from '../../../src/baas/rest/grammar/lexical.js';
import { orderTerms } from '../../../src/baas/rest/grammar/order.js';
import { runParser, showChar, showString, type Parser } from '../../../src/baas/rest/grammar/parsec.js';
import { parseQueryParams, parseQueryString } from '../../../src/baas/rest/grammar/query-params.js';
import { selectForest } from '../../../src/baas/rest/grammar/select.js';

// Golden error texts: PostgREST's own documented examples (doctests of ApiRequest/QueryParams.hs at 48346789),
// where Parsec's merging of expectations decides the wording and the position.

function failure(p: Parser<unknown>, input: string): string {
  const r = runParser(p, '', input);
  if (r.ok) throw new Error(`parsed: ${JSON.stringify(r.value)}`);
  return `${r.failure.message} ${r.failure.details}`;
}

describe('parser error texts (PostgREST doctests)', () => {
  it.each([
    [selectForest, 'id,clients(name[])', `(line 1, column 16) unexpected '[' expecting letter, digit, "-", "->>", "->", "::", ".", ")", "," or end of input`],
    [selectForest, 'data->>-78xy', `(line 1, column 11) unexpected 'x' expecting digit, "->", "::", ".", "," or end of input`],
    [selectForest, 'name!hint', `(line 1, column 5) unexpected '!' expecting letter, digit, "-", "->>", "->", "::", ".", ")", "," or end of input`],
    [selectForest, 'name::', '(line 1, column 7) unexpected end of input expecting letter or digit'],
    [fieldName, ':', '(line 1, column 1) unexpected ":" expecting field name (* or [a..z0..9_$])'],
    [jsonPath, '->>-78xy', `(line 1, column 7) unexpected 'x' expecting digit, "->", "::", ".", "," or end of input`],
    [jsonPath, '->>--34', '(line 1, column 5) unexpected "-" expecting digit'],
    [jsonPath, '->>-xy-4', '(line 1, column 5) unexpected "x" expecting digit'],
    [orderTerms, 'clients(name,id)', `(line 1, column 8) unexpected '(' expecting letter, digit, "-", "->>", "->", delimiter (.), "," or end of input`],
    [orderTerms, 'id.ac', '(line 1, column 4) unexpected "c" expecting "asc", "desc", "nullsfirst" or "nullslast"'],
    [orderTerms, 'id.descc', `(line 1, column 8) unexpected 'c' expecting delimiter (.), "," or end of input`],
    [orderTerms, 'id.nulsfist', '(line 1, column 4) unexpected "n" expecting "asc", "desc", "nullsfirst" or "nullslast"'],
    [orderTerms, 'id.nullslasttt', `(line 1, column 13) unexpected 't' expecting "," or end of input`],
    [orderTerms, 'id.smth34', '(line 1, column 4) unexpected "s" expecting "asc", "desc", "nullsfirst" or "nullslast"'],
    [orderTerms, 'id.asc.nlsfst', '(line 1, column 8) unexpected "l" expecting "nullsfirst" or "nullslast"'],
    [orderTerms, 'id.asc.nullslasttt', `(line 1, column 17) unexpected 't' expecting "," or end of input`],
    [orderTerms, 'id.asc.smth34', '(line 1, column 8) unexpected "s" expecting "nullsfirst" or "nullslast"'],
    [logicTree, 'or()', '(line 1, column 4) unexpected ")" expecting field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)'],
    [logicTree, 'or(id.in.1,2,id.eq.3)', '(line 1, column 10) unexpected "1" expecting "("'],
    [logicTree, 'or)(', '(line 1, column 3) unexpected ")" expecting "("'],
    [logicTree, 'and(ord(id.eq.1,id.eq.1),id.eq.2)', '(line 1, column 7) unexpected "d" expecting "("'],
    [logicTree, 'or(id.eq.1,not.xor(id.eq.2,id.eq.3))', '(line 1, column 16) unexpected "x" expecting logic operator (and, or)'],
    [opExpr(singleValue), 'fts().value', '(line 1, column 5) unexpected ")" expecting operator (eq, gt, ...)'],
    [opExpr(singleValue), 'eq().value', '(line 1, column 4) unexpected ")" expecting operator (eq, gt, ...)'],
    [opExpr(singleValue), 'is().value', '(line 1, column 3) unexpected "(" expecting operator (eq, gt, ...)'],
    [opExpr(singleValue), 'in().value', '(line 1, column 3) unexpected "(" expecting operator (eq, gt, ...)'],
  ] as Array<[Parser<unknown>, string, string]>)('%#: %s', (p, input, expected) => {
    expect(failure(p, input)).toBe(expected);
  });

  it('parses the doctests that succeed', () => {
    const parse = (p: Parser<unknown>, input: string) => {
      const r = runParser(p, '', input);
      if (!r.ok) throw new Error(r.failure.details);
      return r.value;
    };
    expect(parse(fieldName, 'identifier with spaces')).toBe('identifier with spaces');
    expect(parse(fieldName, 'identifier-with-dashes')).toBe('identifier-with-dashes');
    expect(parse(fieldName, ' no leading or trailing spaces ')).toBe('no leading or trailing spaces');
    expect(parse(fieldName, '" leading and trailing spaces "')).toBe(' leading and trailing spaces ');
    expect(parse(fieldName, '":"')).toBe(':');
    expect(parse(fieldName, '$')).toBe('$');
    expect(parse(jsonPath, '->!@#$%^&*_a')).toEqual([{ arrow: '->', key: { kind: 'key', value: '!@#$%^&*_a' } }]);
    expect(parse(jsonPath, '->>1')).toEqual([{ arrow: '->>', key: { kind: 'index', value: '+1' } }]);
    expect(parse(jsonPath, '->0,other')).toEqual([{ arrow: '->', key: { kind: 'index', value: '+0' } }]);
  });
});

describe('PGRST100 bodies of whole query strings', () => {
  const body = (qs: string, rpcRead = false) => {
    try {
      parseQueryParams(parseQueryString(qs), { rpcRead });
    } catch (err) {
      return (err as { status: number; body(): unknown }).body();
    }
    throw new Error('parsed');
  };

  it('names the parameter and the position, as PostgREST', () => {
    expect(body('a.b=noop.0')).toEqual({
      code: 'PGRST100',
      message: '"failed to parse filter (noop.0)" (line 1, column 1)',
      details: 'unexpected "o" expecting "not" or operator (eq, gt, ...)',
      hint: null,
    });
    expect(body('id=val')).toMatchObject({ details: 'unexpected "v" expecting "not" or operator (eq, gt, ...)' });
    expect(body('select=id,clients(name[])')).toMatchObject({ message: '"failed to parse select parameter (id,clients(name[]))" (line 1, column 16)' });
    expect(body('order=id.ac')).toMatchObject({ message: '"failed to parse order (id.ac)" (line 1, column 4)' });
    // The logic value is parsed behind its operator, so positions count `or` too; the message shows the value.
    expect(body('or=(id.eq.1,not.xor(id.eq.2))')).toMatchObject({
      message: '"failed to parse logic tree ((id.eq.1,not.xor(id.eq.2)))" (line 1, column 16)',
      details: 'unexpected "x" expecting logic operator (and, or)',
    });
    expect(body('on_conflict=,')).toMatchObject({ message: '"failed to parse on_conflict parameter (,)" (line 1, column 1)' });
    expect(body('columns=')).toMatchObject({ message: '"failed to parse columns parameter ()" (line 1, column 1)' });
  });

  it('an rpc GET argument that starts like an operator and then fails is an error, others are arguments', () => {
    expect(body('b=in.x', true)).toMatchObject({ message: '"failed to parse filter (in.x)" (line 1, column 4)', details: 'unexpected "x" expecting "("' });
    expect(parseQueryParams(parseQueryString('a=1&b=equal&c=eq.3'), { rpcRead: true })).toMatchObject({
      rpcArguments: [{ name: 'a', value: '1' }, { name: 'b', value: 'equal' }],
      filters: [{ path: [], filter: { field: { name: 'c' } } }],
    });
  });

  it('shows unexpected characters as Haskell does (escapes, \\& after numeric escapes)', () => {
    expect(showString('é1')).toBe('"\\233\\&1"');
    expect(showString('a"b\\')).toBe('"a\\"b\\\\"');
    expect(showString('\n\u0001\u000eH\u007f')).toBe('"\\n\\SOH\\SO\\&H\\DEL"');
    expect(showChar("'")).toBe("'\\''");
    expect(showChar('"')).toBe(`'"'`);
    expect(body('id=é')).toMatchObject({ details: 'unexpected "\\233" expecting "not" or operator (eq, gt, ...)' });
    expect(body('order=id.é')).toMatchObject({ details: 'unexpected "\\233" expecting "asc", "desc", "nullsfirst" or "nullslast"' });
  });

  it('counts a tab up to the next multiple of 8 columns and a newline as a new line (Parsec positions)', () => {
    expect(body('order=id,\tx.ac')).toMatchObject({ message: '"failed to parse order (id,\tx.ac)" (line 1, column 11)' });
    expect(body('order=id,\nx.ac')).toMatchObject({ message: '"failed to parse order (id,\nx.ac)" (line 1, column 4)' });
    expect(body('order=%22a%0Ab%22.ac')).toMatchObject({ message: '"failed to parse order ("a\nb".ac)" (line 2, column 4)' });
  });
});
