/**
 * Filter grammar: `[not.]op[(modifier)].operand` for a column (`?col=...`), the tree path of a filter key
 * (`embedded.col->json`), and `or=(...)` / `and=(...)` logic trees nested up to MAX_LOGIC_DEPTH.
 */
import type { EmbedPath, Field, Filter, FtsOperator, IsValue, LogicTree, OpExpr, Operation, QuantOperator, SimpleOperator } from './ast.js';
import { nestingTooDeep } from './bounds.js';
import { delimiter, field, fieldName, identifier, jsonPath, lexeme, quotedValue } from './lexical.js';
import { MAX_LOGIC_DEPTH } from '../limits.js';
import {
  alt,
  anyChar,
  as,
  attempt,
  between,
  char,
  label,
  left,
  many,
  map,
  noneOf,
  notFollowedBy,
  option,
  optionMaybe,
  type Parser,
  pure,
  right,
  sepBy1,
  seq,
  string,
} from './parsec.js';

const simpleOperator: Parser<SimpleOperator> = label(
  alt<SimpleOperator>(
    ...(['neq', 'cs', 'cd', 'ov', 'sl', 'sr', 'nxr', 'nxl', 'adj'] as const).map((op) => attempt(as(string(op), op))),
  ),
  'unknown single value operator',
);

const quantOperator: Parser<QuantOperator> = label(
  alt<QuantOperator>(
    ...(['eq', 'gte', 'gt', 'lte', 'lt', 'like', 'ilike', 'match', 'imatch'] as const).map((op) => attempt(as(string(op), op))),
  ),
  'unknown single value operator',
);

/** Case-insensitive keyword of `is.` (char c <|> char (toUpper c) per letter). */
function ciString(word: string): Parser<string> {
  const chars = Array.from(word).map((c) => (c.toUpperCase() === c ? char(c) : alt(char(c), char(c.toUpperCase()))));
  return map(seq(...chars), (cs) => (cs as string[]).join(''));
}

const isValue: Parser<IsValue> = label(
  alt<IsValue>(...(['null', 'not_null', 'true', 'false', 'unknown'] as const).map((v) => attempt(as(ciString(v), v)))),
  'isVal: (null, not_null, true, false, unknown)',
);

/** One element of `in.(...)`: a quoted value (when nothing but `,`/`)` follows it) or raw text. */
const listElement: Parser<string> = alt(
  attempt(left(quotedValue, notFollowedBy(noneOf(',)')))),
  map(many(noneOf(',)')), (cs) => cs.join('')),
);

const listValue: Parser<string[]> = right(lexeme(char('(')), left(sepBy1(listElement, char(',')), lexeme(char(')'))));

/** The operand of a top-level filter: everything that is left. */
export const singleValue: Parser<string> = map(many(anyChar), (cs) => cs.join(''));

/** The operand inside or/and: a quoted value, a `{...}` array literal, or text up to `,` / `)`. */
const logicSingleValue: Parser<string> = alt(
  attempt(left(quotedValue, notFollowedBy(noneOf(',)')))),
  attempt(map(seq(string('{'), many(noneOf('{}')), string('}')), ([, body]) => `{${(body as string[]).join('')}}`)),
  map(many(noneOf(',)')), (cs) => cs.join('')),
);

export function opExpr(operand: Parser<string>): Parser<OpExpr> {
  const inOp: Parser<Operation> = map(right(attempt(seq(string('in'), delimiter)), listValue), (values) => ({ kind: 'in', values }));
  const isOp: Parser<Operation> = map(right(attempt(seq(string('is'), delimiter)), isValue), (value) => ({ kind: 'is', value }));
  const isDistinct: Parser<Operation> = map(right(attempt(seq(string('isdistinct'), delimiter)), operand), (value) => ({
    kind: 'isdistinct',
    value,
  }));
  const fts: Parser<Operation> = map(
    seq(
      alt<FtsOperator>(...(['fts', 'plfts', 'phfts', 'wfts'] as const).map((op) => attempt(as(string(op), op)))),
      optionMaybe(attempt(between(char('('), char(')'), identifier))),
      right(delimiter, operand),
    ),
    ([op, config, value]) => ({ kind: 'fts', op: op as FtsOperator, ...(config !== undefined ? { config: config as string } : {}), value: value as string }),
  );
  const simple: Parser<Operation> = map(seq(simpleOperator, right(delimiter, operand)), ([op, value]) => ({
    kind: 'simple',
    op: op as SimpleOperator,
    value: value as string,
  }));
  const quantifier = optionMaybe(
    attempt(between(char('('), char(')'), alt<'any' | 'all'>(attempt(as(string('any'), 'any' as const)), as(string('all'), 'all' as const)))),
  );
  const quant: Parser<Operation> = map(seq(quantOperator, quantifier, right(delimiter, operand)), ([op, q, value]) => ({
    kind: 'quant',
    op: op as QuantOperator,
    ...(q !== undefined ? { quantifier: q as 'any' | 'all' } : {}),
    value: value as string,
  }));
  const operation = label(alt(inOp, isOp, isDistinct, attempt(fts), attempt(simple), attempt(quant)), 'operator (eq, gt, ...)');
  const negation = alt(attempt(as(seq(string('not'), delimiter), true)), pure(false));
  return map(seq(negation, operation), ([negated, op]) => ({ negated: negated as boolean, operation: op as Operation }));
}

/** The value of `?col=...` (and of GET rpc arguments, where a value without operator is an argument). */
export const filterExpr: Parser<OpExpr> = opExpr(singleValue);

/** A filter key: `a.b.col->x` -> embed path ['a','b'] and field col->x. */
export const treePath: Parser<{ path: EmbedPath; field: Field }> = map(
  seq(sepBy1(fieldName, delimiter), option([], jsonPath)),
  ([names, path]) => {
    const ns = names as string[];
    return { path: ns.slice(0, -1), field: { name: ns[ns.length - 1], jsonPath: path as Field['jsonPath'] } };
  },
);

/** A logic key: `a.not.or` -> embed path ['a'] and operator `not.or`. */
export const logicPath: Parser<{ path: EmbedPath; op: string }> = map(sepBy1(fieldName, delimiter), (names) => {
  const last = names[names.length - 1];
  return { path: names.slice(0, -1).filter((n) => n !== 'not'), op: names.includes('not') ? `not.${last}` : last };
});

const logicFilter: Parser<Filter> = map(seq(field, delimiter, opExpr(logicSingleValue)), ([fld, , expr]) => ({
  field: fld as Field,
  expr: expr as OpExpr,
}));

const negationOp: Parser<boolean> = label(alt(attempt(as(seq(string('not'), delimiter), true)), pure(false)), 'negation operator (not)');

const logicOperator: Parser<'and' | 'or'> = label(
  alt<'and' | 'or'>(attempt(as(string('and'), 'and' as const)), as(string('or'), 'or' as const)),
  'logic operator (and, or)',
);

const logicTrees: Array<Parser<LogicTree>> = [];

/** `or(...)`/`and(...)`, `not.` allowed; depth counts the parentheses already open. */
function logicTreeAt(depth: number): Parser<LogicTree> {
  if (logicTrees[depth]) return logicTrees[depth];
  const inner: Parser<LogicTree> = (st) => {
    if (depth + 1 > MAX_LOGIC_DEPTH) throw nestingTooDeep('logic', MAX_LOGIC_DEPTH);
    return logicTreeAt(depth + 1)(st);
  };
  const children = right(lexeme(char('(')), left(sepBy1(inner, lexeme(char(','))), lexeme(char(')'))));
  logicTrees[depth] = alt<LogicTree>(
    map(attempt(logicFilter), (filter) => ({ type: 'filter', filter })),
    map(seq(negationOp, logicOperator, children), ([negated, op, trees]) => ({
      type: 'expr',
      negated: negated as boolean,
      op: op as 'and' | 'or',
      children: trees as LogicTree[],
    })),
  );
  return logicTrees[depth];
}

export const logicTree: Parser<LogicTree> = logicTreeAt(0);
