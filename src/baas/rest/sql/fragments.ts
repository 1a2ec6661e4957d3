/**
 * Building blocks of the SQL text. The rule they enforce: identifiers come from the schema cache and are quoted
 * here; every value of the request becomes a `$n` parameter (Params), so no request text reaches the SQL text.
 */
import type { JsonStep } from '../grammar/ast.js';
import { RestError } from '../errors.js';
import type { SchemaCache } from '../schema/types.js';

/** Postgres allows at most this many arguments to json_build_object (FUNC_MAX_ARGS / 2 pairs). */
const MAX_PAIRS_PER_OBJECT = 50;

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

export const qualified = (schema: string, name: string): string => `${quoteIdent(schema)}.${quoteIdent(name)}`;

/** The statement's parameters: each value is appended and referenced as `$n`. */
export class Params {
  readonly values: Array<string | null> = [];
  /** Indexes in `values` of the request body (the only values a cached write statement changes per request). */
  readonly bodyIndexes: number[] = [];

  /** An untyped parameter: Postgres infers its type from where it is used (like PostgREST's unknown literals). */
  add(value: string | null): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  text(value: string): string {
    return `${this.add(value)}::text`;
  }

  /** The request body (JSON text Postgres parses), as an untyped parameter marked as the body. */
  body(json: string): string {
    this.bodyIndexes.push(this.values.length);
    return this.add(json);
  }
}

/** A Postgres array literal of text items (`{"a","b\"c"}`), sent as one parameter. */
export function arrayLiteral(items: readonly string[]): string {
  return `{${items.map((v) => `"${v.replace(/\0/g, '').replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

/** `->key` / `->>key` / `->0` with keys and indexes as parameters. */
export function jsonPathSql(path: readonly JsonStep[], params: Params): string {
  return path
    .map((step) => {
      const operand = step.key.kind === 'key' ? params.text(step.key.value) : `${params.add(step.key.value)}::int`;
      return ` ${step.arrow} ${operand}`;
    })
    .join('');
}

/**
 * The JSON object of one output row from (key, value SQL) pairs, keys as parameters. json_build_object takes at
 * most 50 pairs; wider rows are built in chunks and joined as text, keeping the key order.
 */
export function jsonObjectSql(pairs: ReadonlyArray<{ key: string; value: string }>, params: Params): string {
  if (pairs.length === 0) return 'json_build_object()';
  const chunks: string[] = [];
  for (let i = 0; i < pairs.length; i += MAX_PAIRS_PER_OBJECT) {
    const chunk = pairs.slice(i, i + MAX_PAIRS_PER_OBJECT);
    chunks.push(`json_build_object(${chunk.map((p) => `${params.text(p.key)}, ${p.value}`).join(', ')})`);
  }
  if (chunks.length === 1) return chunks[0];
  const [first, ...rest] = chunks;
  const middle = rest.map((c, k) => (k === rest.length - 1 ? `substr(${c}::text, 2)` : `substr(left(${c}::text, -1), 2)`));
  return `(left(${first}::text, -1) || ${middle.map((m) => `', ' || ${m}`).join(' || ')})::json`;
}

const TYPE_ALIASES: Record<string, string> = {
  int: 'int4',
  integer: 'int4',
  smallint: 'int2',
  bigint: 'int8',
  real: 'float4',
  float: 'float8',
  'double precision': 'float8',
  boolean: 'bool',
  decimal: 'numeric',
  dec: 'numeric',
  varchar: 'varchar',
  'character varying': 'varchar',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
  'time without time zone': 'time',
  'time with time zone': 'timetz',
  'bit varying': 'varbit',
};

/**
 * The SQL type of a `::cast` in select: a type Postgres would find (pg_catalog first, then the request's schema),
 * written from the schema cache. An unknown type is Postgres's 42704, never SQL text.
 */
export function castTypeSql(cache: SchemaCache, schema: string, cast: string): string {
  const name = cast.toLowerCase().replace(/\s+/g, ' ');
  if (name === 'char' || name === 'character') return 'pg_catalog."bpchar"(1)';
  const typname = TYPE_ALIASES[name] ?? name;
  for (const s of ['pg_catalog', schema]) {
    if (cache.types.get(s)?.has(typname)) return qualified(s, typname);
  }
  throw RestError.undefinedType(cast);
}
