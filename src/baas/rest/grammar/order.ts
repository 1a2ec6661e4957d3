/** `order=` grammar: `col[->path][.asc|.desc][.nullsfirst|.nullslast]` and `rel(col).desc`, comma-separated. */
import type { Field, OrderTerm } from './ast.js';
import { delimiter, field, fieldName, lexeme } from './lexical.js';
import { alt, as, attempt, between, char, eof, lookAhead, map, optionMaybe, type Parser, right, sepBy1, seq, string } from './parsec.js';

type Direction = 'asc' | 'desc';
type Nulls = 'first' | 'last';

const termEnd: Parser<unknown> = alt<unknown>(attempt(lookAhead(char(','))), attempt(eof));

const nulls: Parser<Nulls> = alt<Nulls>(
  attempt(as(right(delimiter, string('nullsfirst')), 'first' as const)),
  attempt(as(right(delimiter, string('nullslast')), 'last' as const)),
);

const direction: Parser<Direction> = alt<Direction>(
  attempt(as(right(delimiter, string('asc')), 'asc' as const)),
  attempt(as(right(delimiter, string('desc')), 'desc' as const)),
);

/** `optionMaybe pNulls <* pEnd <|> pEnd $> Nothing` */
const nullsThenEnd: Parser<Nulls | undefined> = alt<Nulls | undefined>(
  map(seq(optionMaybe(nulls), termEnd), (v) => v[0] as Nulls | undefined),
  as(termEnd, undefined),
);

function withModifiers(dir: unknown, nl: unknown): { direction?: Direction; nulls?: Nulls } {
  return { ...(dir !== undefined ? { direction: dir as Direction } : {}), ...(nl !== undefined ? { nulls: nl as Nulls } : {}) };
}

const fieldTerm: Parser<OrderTerm> = map(seq(field, optionMaybe(direction), nullsThenEnd), ([fld, dir, nl]) => ({
  type: 'field',
  field: fld as Field,
  ...withModifiers(dir, nl),
}));

const relationTerm: Parser<OrderTerm> = map(
  seq(fieldName, between(char('('), char(')'), field), optionMaybe(direction), nullsThenEnd),
  ([relation, fld, dir, nl]) => ({ type: 'relation', relation: relation as string, field: fld as Field, ...withModifiers(dir, nl) }),
);

export const orderTerms: Parser<OrderTerm[]> = sepBy1(lexeme(alt(attempt(relationTerm), fieldTerm)), char(','));
