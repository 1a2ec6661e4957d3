/**
 * `rpc/<fn>`: choosing the overload by argument names (PostgREST's findProc) and calling it with named arguments,
 * as the base CTE of the statement. GET arguments are parameters cast to the declared types; a POST body is ONE
 * parameter turned into arguments by json_to_record with the declared types.
 */
import type { RpcArgument } from '../grammar/ast.js';
import { RestError } from '../errors.js';
import { keyOf, type Routine, type SchemaCache } from '../schema/types.js';
import { arrayLiteral, type Params, qualified, quoteIdent } from './fragments.js';

const sameSet = (a: Set<string>, b: Set<string>): boolean => a.size === b.size && [...a].every((x) => b.has(x));

/** The overload whose parameters match the argument names; PGRST202 / 300 PGRST203 otherwise. */
export function findRoutine(cache: SchemaCache, schema: string, name: string, argumentNames: readonly string[], jsonBody: boolean): Routine {
  const keys = new Set(argumentNames);
  const overloads = cache.routines.get(keyOf({ schema, name })) ?? [];
  const matching: Routine[] = [];
  const singleJson: Routine[] = [];
  for (const r of overloads) {
    const required = new Set(r.params.filter((p) => p.required).map((p) => p.name));
    const optional = new Set(r.params.filter((p) => !p.required).map((p) => p.name));
    let matches: boolean;
    if (r.params.length === 0) matches = keys.size === 0;
    else if (optional.size === 0) matches = sameSet(keys, required);
    else if (required.size === 0) matches = [...keys].every((k) => optional.has(k));
    else matches = sameSet(new Set([...keys].filter((k) => !optional.has(k))), required);
    if (matches) matching.push(r);
    else if (jsonBody && r.params.length === 1 && r.params[0].name === '' && ['json', 'jsonb'].includes(r.params[0].typeName)) singleJson.push(r);
  }
  const candidates = matching.length > 0 ? matching : singleJson;
  if (candidates.length === 1) return candidates[0];
  if (candidates.length === 0) throw RestError.noFunction(schema, name, [...keys].sort());
  throw RestError.ambiguousFunction(candidates.map((r) => `${r.schema}.${r.name}(${r.params.map((p) => `${p.name} => ${p.type}`).join(', ')})`));
}

export type CallArguments = { kind: 'query'; args: RpcArgument[] } | { kind: 'json'; json: string; isArray: boolean; keys: string[] };

/**
 * The SELECT producing the function's rows: `pgrst_scalar` for scalar results, the result's columns for
 * composite ones. Only the parameters given are passed, so the others take their defaults.
 */
export function callSql(routine: Routine, args: CallArguments, params: Params): string {
  const fn = qualified(routine.schema, routine.name);
  let from = '';
  let argsSql: string;
  const single = routine.params.length === 1 && routine.params[0].name === '';
  if (args.kind === 'json' && single) {
    argsSql = `${params.body(args.json)}::${routine.params[0].type}`;
  } else if (args.kind === 'json') {
    const used = routine.params.filter((p) => args.keys.includes(p.name));
    if (used.length > 0) {
      const columns = used.map((p) => `${quoteIdent(p.name)} ${p.type}`).join(', ');
      const record = `json_to_record${args.isArray ? 'set' : ''}(${params.body(args.json)}::json) AS "pgrst_args"(${columns})`;
      from = args.isArray ? ` FROM (SELECT * FROM ${record} LIMIT 1) AS "pgrst_args"` : ` FROM ${record}`;
    }
    argsSql = used.map((p) => `${p.variadic ? 'VARIADIC ' : ''}${quoteIdent(p.name)} := "pgrst_args".${quoteIdent(p.name)}`).join(', ');
  } else {
    const given = new Map<string, string[]>();
    for (const a of args.args) given.set(a.name, [...(given.get(a.name) ?? []), a.value]);
    argsSql = routine.params
      .filter((p) => given.has(p.name))
      .map((p) => {
        const values = given.get(p.name)!;
        const value = p.variadic ? arrayLiteral(values) : values[values.length - 1];
        return `${p.variadic ? 'VARIADIC ' : ''}${quoteIdent(p.name)} := ${params.add(value)}::${p.type}`;
      })
      .join(', ');
  }
  const call = `${fn}(${argsSql})`;
  if (routine.returns.kind === 'scalar' || routine.returns.kind === 'void') return `SELECT ${call} AS "pgrst_scalar"${from}`;
  return `SELECT "pgrst_call".*${from ? `${from} CROSS JOIN LATERAL` : ' FROM'} ${call} AS "pgrst_call"`;
}
