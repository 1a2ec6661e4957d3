/**
 * Tokens shared by the select, filter, order and logic grammars: field names (bare or double-quoted), JSON paths,
 * the `.` delimiter. Shaped like PostgREST's grammar so error positions and "expecting" lists come out the same.
 */
import type { Field, JsonStep } from './ast.js';
import {
  alt,
  anyChar,
  as,
  attempt,
  char,
  digit,
  eof,
  label,
  left,
  letter,
  lookAhead,
  many,
  many1,
  map,
  memo,
  noneOf,
  notFollowedBy,
  oneOf,
  option,
  type Parser,
  right,
  sepBy1,
  seq,
  string,
} from './parsec.js';

/** Haskell's Data.Char.isSpace. */
export const isSpace = (c: string): boolean => ' \t\n\r\f\v\u00a0'.includes(c) || (c > '\u00ff' && /\p{Zs}/u.test(c));

/** Haskell's T.strip: drops surrounding white space. */
export function strip(s: string): string {
  const cps = Array.from(s);
  let a = 0;
  let b = cps.length;
  while (a < b && isSpace(cps[a])) a++;
  while (b > a && isSpace(cps[b - 1])) b--;
  return cps.slice(a, b).join('');
}

export const ws: Parser<string> = map(many(oneOf(' \t')), (cs) => cs.join(''));

export const lexeme = <T>(p: Parser<T>): Parser<T> => right(ws, left(p, ws));

/** `"..."` with `\"` and `\\` (any char after a backslash is taken literally). */
export const quotedValue: Parser<string> = map(
  seq(char('"'), many(alt(noneOf('\\"'), right(char('\\'), anyChar))), char('"')),
  (v) => (v[1] as string[]).join(''),
);

const identifierChar: Parser<string> = alt(letter, digit, oneOf('_ $'));

export const identifier: Parser<string> = map(many1(identifierChar), (cs) => strip(cs.join('')));

/** A `-` that does not start an arrow. */
const dash: Parser<string> = as(attempt(seq(char('-'), notFollowedBy(char('>')))), '-');

const sepByDash = (p: Parser<string>): Parser<string> => map(sepBy1(p, dash), (parts) => parts.join('-'));

export const fieldName: Parser<string> = memo(label(alt(quotedValue, sepByDash(identifier)), 'field name (* or [a..z0..9_$])'));

const jsonKeyIdentifier: Parser<string> = map(many1(noneOf('(-:.,>)')), (cs) => strip(cs.join('')));

const jsonKeyName: Parser<string> = label(
  alt(quotedValue, sepByDash(jsonKeyIdentifier)),
  'any non reserved character different from: .,>()',
);

const jsonIndexEnd: Parser<unknown> = alt<unknown>(
  attempt(lookAhead(string('->'))),
  attempt(lookAhead(string('::'))),
  attempt(lookAhead(string('.'))),
  attempt(lookAhead(string(','))),
  attempt(eof),
);

const jsonIndex: Parser<JsonStep['key']> = map(
  left(seq(option('+', char('-')), many1(digit)), jsonIndexEnd),
  ([sign, digits]) => ({ kind: 'index', value: `${sign as string}${(digits as string[]).join('')}` }),
);

const jsonKey: Parser<JsonStep['key']> = map(jsonKeyName, (value) => ({ kind: 'key', value }));

const jsonArrow: Parser<JsonStep['arrow']> = alt<JsonStep['arrow']>(
  attempt(as(string('->>'), '->>' as const)),
  attempt(as(string('->'), '->' as const)),
);

const jsonStep: Parser<JsonStep> = map(seq(jsonArrow, alt(attempt(jsonIndex), attempt(jsonKey))), ([arrow, key]) => ({
  arrow: arrow as JsonStep['arrow'],
  key: key as JsonStep['key'],
}));

export const jsonPath: Parser<JsonStep[]> = many(jsonStep);

export const field: Parser<Field> = memo(
  lexeme(map(seq(fieldName, option<JsonStep[]>([], jsonPath)), ([name, path]) => ({ name: name as string, jsonPath: path as JsonStep[] }))),
);

export const delimiter: Parser<string> = label(char('.'), 'delimiter (.)');

/** `alias:` (but not `::`). */
export const aliasSeparator: Parser<unknown> = seq(char(':'), notFollowedBy(char(':')));
