/**
 * One `postgres_changes` binding (§6.1), parsed and validated the way upstream's subscription parser does, with
 * its exact `system` error texts:
 *
 * - `event`: `*`, or INSERT/UPDATE/DELETE in any case; anything else (or absent, or not a string) is `*`.
 * - `select`: a list keeps its string items (none left = no selection); a string is an error; anything else is
 *   ignored. Checked first, before the shape below.
 * - shape: schema+table+filter (all strings), schema+table without a `filter` key, schema alone (all its tables),
 *   table alone (schema `public`). Anything else is `No subscription params provided. Please provide at least a
 *   \`schema\` or \`table\` to subscribe to: <params>` where <params> is the Elixir inspection of the entry as
 *   received, e.g. `%{"event" => "*", "filter" => "id=eq.1"}` (keys in binary order), or `<redacted>` when the entry
 *   has a `user_token` or `auth_token` key.
 * - `select` with a `*` schema or table is rejected after the filter is parsed.
 *
 * The legacy form (§6.8) derives the entry from the sub-topic `schema[:table[:filter]]`.
 */
import { postgresChangesId } from '../../shared/subscription-id.js';
import { inspect, inspectPretty, Tuple, type InspectTerm } from './elixir-inspect.js';
import { filterErrorMessage, parseFilters, type Filter } from './filter.js';

export type ActionFilter = '*' | 'INSERT' | 'UPDATE' | 'DELETE';

export interface Binding {
  /** The join-reply id (postgresChangesId of the entry as received). */
  readonly id: number;
  readonly event: ActionFilter;
  /** Schema name or `*`. */
  readonly schema: string;
  /** Table name or `*`. */
  readonly table: string;
  readonly filters: readonly Filter[];
  readonly select: readonly string[] | null;
}

/** A binding that cannot be subscribed; `message` is the `system` push text (such errors are not retried). */
export type BindingResult = { ok: true; binding: Binding } | { ok: false; message: string };

export const SELECT_NOT_A_LIST =
  'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]';
export const SELECT_ON_WILDCARD =
  'Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name.';
const NO_PARAMS = 'No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: ';

export function parseBinding(params: Record<string, unknown>, id: number = postgresChangesId(params)): BindingResult {
  const event = actionFilter(params.event);
  const select = parseSelect(params);
  if (typeof select === 'string') return { ok: false, message: select };

  const has = (key: string): boolean => Object.prototype.hasOwnProperty.call(params, key);
  const { schema, table, filter } = params;
  let resolved: { schema: string; table: string; filters: Filter[] } | undefined;
  if (typeof schema === 'string' && typeof table === 'string' && typeof filter === 'string') {
    const parsed = parseFilters(filter);
    if (!parsed.ok) return { ok: false, message: filterErrorMessage(parsed.reason) };
    resolved = { schema, table, filters: parsed.filters };
  } else if (typeof schema === 'string' && typeof table === 'string' && !has('filter')) {
    resolved = { schema, table, filters: [] };
  } else if (typeof schema === 'string' && !has('table') && !has('filter')) {
    resolved = { schema, table: '*', filters: [] };
  } else if (typeof table === 'string' && !has('schema') && !has('filter')) {
    resolved = { schema: 'public', table, filters: [] };
  }
  if (!resolved) {
    const shown = has('user_token') || has('auth_token') ? '<redacted>' : inspect(params as InspectTerm);
    return { ok: false, message: NO_PARAMS + shown };
  }
  if (select !== null && (resolved.schema === '*' || resolved.table === '*')) {
    return { ok: false, message: SELECT_ON_WILDCARD };
  }
  return { ok: true, binding: { id, event, ...resolved, select } };
}

function actionFilter(event: unknown): ActionFilter {
  if (typeof event !== 'string') return '*';
  const up = event.toUpperCase();
  return up === 'INSERT' || up === 'UPDATE' || up === 'DELETE' ? up : '*';
}

// null = no selection; a string = the error message.
function parseSelect(params: Record<string, unknown>): readonly string[] | null | string {
  const select = params.select;
  if (Array.isArray(select)) {
    const names = select.filter((c): c is string => typeof c === 'string');
    return names.length === 0 ? null : names;
  }
  if (typeof select === 'string') return SELECT_NOT_A_LIST;
  return null;
}

/** The entry upstream derives from a legacy sub-topic: `schema[:table[:filter]]`, split on the first two `:`. */
export function legacyTopicParams(subTopic: string): Record<string, string> {
  const first = subTopic.indexOf(':');
  if (first < 0) return { schema: subTopic };
  const second = subTopic.indexOf(':', first + 1);
  if (second < 0) return { schema: subTopic.slice(0, first), table: subTopic.slice(first + 1) };
  return {
    schema: subTopic.slice(0, first),
    table: subTopic.slice(first + 1, second),
    filter: subTopic.slice(second + 1),
  };
}

/** The one binding of a channel joined without `config` (its id is that of the derived entry). */
export function parseLegacyTopic(subTopic: string): BindingResult {
  return parseBinding(legacyTopicParams(subTopic));
}

/** Whether the binding wants this change type (`*` wants all three). */
export function bindingAcceptsAction(binding: Binding, type: 'INSERT' | 'UPDATE' | 'DELETE'): boolean {
  return binding.event === '*' || binding.event === type;
}

/**
 * Whether a publication table is covered by the binding. Upstream matches with SQL `LIKE` (no escape character),
 * `*` meaning `%`; so `_` and `%` in a given name are wildcards too (`my_table` also covers `myXtable`).
 */
export function bindingMatchesTable(binding: Binding, schema: string, table: string): boolean {
  return likeNoEscape(binding.schema === '*' ? '%' : binding.schema, schema) &&
    likeNoEscape(binding.table === '*' ? '%' : binding.table, table);
}

const likeCache = new Map<string, RegExp>();

function likeNoEscape(pattern: string, value: string): boolean {
  if (!pattern.includes('%') && !pattern.includes('_')) return pattern === value;
  let re = likeCache.get(pattern);
  if (!re) {
    let src = '^';
    for (const ch of pattern) {
      src += ch === '%' ? '[\\s\\S]*' : ch === '_' ? '[\\s\\S]' : ch.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
    }
    re = new RegExp(`${src}$`, 'u');
    if (likeCache.size > 1000) likeCache.clear();
    likeCache.set(pattern, re);
  }
  return re.test(value);
}

/** `event: *, schema: public, table: t, filters: [{"id", "eq", "1", false}], select: nil` (upstream's log form). */
export function bindingParamsForLog(binding: Binding): string {
  const filters = binding.filters.map((f) => new Tuple([f.column, f.op, f.value, f.negate]));
  const select = binding.select === null ? 'nil' : inspectPretty(binding.select);
  const { event, schema, table } = binding;
  return `event: ${event}, schema: ${schema}, table: ${table}, filters: ${inspectPretty(filters)}, select: ${select}`;
}

const UNABLE = 'Unable to subscribe to changes with given parameters.';

/** No publication table matched (not retried). */
export function notEnabledMessage(binding: Binding): string {
  return `${UNABLE} Please check Realtime is enabled for the given connect parameters: [${bindingParamsForLog(binding)}]`;
}

/** The subscription was rejected by the database (or our equivalent check); `exception` as postgresErrorText. */
export function subscriptionExceptionMessage(binding: Binding, exception: string): string {
  const params = bindingParamsForLog(binding);
  return `${UNABLE} An exception happened so please check your connect parameters: [${params}]. Exception: ${exception}`;
}
