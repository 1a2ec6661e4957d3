/**
 * `select=` grammar: columns with alias, cast and JSON path, `*`, embedded relations (`alias:rel!hint!inner(...)`),
 * spreads (`...rel(...)`) and aggregates (`count()`, `col.sum()`), nested up to MAX_EMBED_DEPTH.
 */
import type { AggregateFunction, Field, JoinType, SelectItem } from './ast.js';
import { aliasSeparator, field, fieldName, identifier, lexeme } from './lexical.js';
import { nestingTooDeep } from './bounds.js';
import { MAX_EMBED_DEPTH } from '../limits.js';
import {
  alt,
  as,
  attempt,
  between,
  bind,
  char,
  eof,
  lookAhead,
  map,
  optionMaybe,
  type Parser,
  pure,
  right,
  sepBy,
  seq,
  string,
  zero,
} from './parsec.js';

const itemEnd: Parser<unknown> = alt<unknown>(
  attempt(lookAhead(string(')'))),
  attempt(lookAhead(string(','))),
  attempt(eof),
);

const optionalAlias: Parser<string | undefined> = optionMaybe(attempt(map(seq(fieldName, aliasSeparator), (v) => v[0] as string)));

const castSuffix: Parser<string | undefined> = optionMaybe(right(string('::'), identifier));

const aggregation: Parser<AggregateFunction> = alt<AggregateFunction>(
  as(string('sum'), 'sum' as const),
  as(string('avg'), 'avg' as const),
  as(string('count'), 'count' as const),
  as(attempt(string('max')), 'max' as const),
  as(attempt(string('min')), 'min' as const),
);

const starItem: Parser<SelectItem> = attempt(
  map(seq(string('*'), itemEnd), (): SelectItem => ({ type: 'field', field: { name: '*', jsonPath: [] } })),
);

const countItem: Parser<SelectItem> = attempt(
  map(seq(optionalAlias, string('count()'), castSuffix, itemEnd), ([alias, , aggregateCast]): SelectItem => ({
    type: 'field',
    field: { name: '*', jsonPath: [] },
    aggregate: 'count',
    ...(aggregateCast !== undefined ? { aggregateCast: aggregateCast as string } : {}),
    ...(alias !== undefined ? { alias: alias as string } : {}),
  })),
);

const plainItem: Parser<SelectItem> = map(
  seq(
    optionalAlias,
    field,
    castSuffix,
    optionMaybe(attempt(map(seq(char('.'), aggregation, string('()')), (v) => v[1] as AggregateFunction))),
    castSuffix,
    itemEnd,
  ),
  ([alias, fld, cast, aggregate, aggregateCast]): SelectItem => ({
    type: 'field',
    field: fld as Field,
    ...(alias !== undefined ? { alias: alias as string } : {}),
    ...(cast !== undefined ? { cast: cast as string } : {}),
    ...(aggregate !== undefined ? { aggregate: aggregate as AggregateFunction } : {}),
    ...(aggregateCast !== undefined ? { aggregateCast: aggregateCast as string } : {}),
  }),
);

const fieldSelect: Parser<SelectItem> = lexeme(alt(starItem, countItem, plainItem));

type EmbedParam = { hint: string } | { joinType: JoinType };

const embedParam: Parser<EmbedParam> = right(
  char('!'),
  alt<EmbedParam>(
    attempt(as(string('left'), { joinType: 'left' as const })),
    attempt(as(string('inner'), { joinType: 'inner' as const })),
    attempt(map(fieldName, (hint) => ({ hint }))),
  ),
);

const embedParams: Parser<{ hint?: string; joinType?: JoinType }> = map(
  seq(optionMaybe(embedParam), optionMaybe(embedParam)),
  ([p1, p2]) => {
    const params = [p1, p2] as Array<EmbedParam | undefined>;
    const hint = params.map((p) => (p && 'hint' in p ? p.hint : undefined)).find((h) => h !== undefined);
    const joinType = params.map((p) => (p && 'joinType' in p ? p.joinType : undefined)).find((j) => j !== undefined);
    return { ...(hint !== undefined ? { hint } : {}), ...(joinType !== undefined ? { joinType } : {}) };
  },
);

const openParenAhead: Parser<unknown> = attempt(lookAhead(string('(')));

type RelationHead = { alias?: string; relation: string; hint?: string; joinType?: JoinType };

const relationHead: Parser<RelationHead> = lexeme(
  map(
    seq(
      optionalAlias,
      bind(fieldName, (name) => (name === 'count' ? zero : pure(name))),
      embedParams,
      openParenAhead,
    ),
    ([alias, relation, params]) => ({
      ...(alias !== undefined ? { alias: alias as string } : {}),
      relation: relation as string,
      ...(params as object),
    }),
  ),
);

const spreadHead: Parser<RelationHead> = lexeme(
  map(seq(right(string('...'), fieldName), embedParams, openParenAhead), ([relation, params]) => ({
    relation: relation as string,
    ...(params as object),
  })),
);

/** Forest parsers per nesting level, built on demand; past the bound the parser aborts. */
const forests: Array<Parser<SelectItem[]>> = [];

function fieldForest(depth: number): Parser<SelectItem[]> {
  if (forests[depth]) return forests[depth];
  const children: Parser<SelectItem[]> = (st) => {
    if (depth + 1 > MAX_EMBED_DEPTH) throw nestingTooDeep('select', MAX_EMBED_DEPTH);
    return fieldForest(depth + 1)(st);
  };
  const inParens = between(char('('), char(')'), children);
  const tree: Parser<SelectItem> = alt<SelectItem>(
    map(seq(attempt(spreadHead), inParens), ([head, items]) => ({ type: 'spread', ...(head as RelationHead), children: items as SelectItem[] }) as SelectItem),
    map(seq(attempt(relationHead), inParens), ([head, items]) => ({ type: 'relation', ...(head as RelationHead), children: items as SelectItem[] }) as SelectItem),
    fieldSelect,
  );
  forests[depth] = sepBy(tree, lexeme(char(',')));
  return forests[depth];
}

export const selectForest: Parser<SelectItem[]> = fieldForest(0);
