/**
 * From a raw REST request (method, path under /rest/v1, query string, headers, body) to what the SQL builder takes,
 * in PostgREST's order of checks (userApiRequest): resource, schema, action, query parameters, ranges, body; then
 * content negotiation and strict preferences. Pure: the HTTP module passes the request in and runs the statement.
 */
import type { Payload, QueryParams, RowRange } from './grammar/ast.js';
import { decodeMediaType, mimeOf, negotiate, parseAccept, type Negotiated } from './grammar/media-type.js';
import { parsePayload } from './grammar/payload.js';
import { checkStrictPreferences, parsePreferences, type Preferences } from './grammar/prefer.js';
import { parseQueryParams, parseQueryString } from './grammar/query-params.js';
import { topLevelRange } from './grammar/range.js';
import { RestError } from './errors.js';

export interface RawRestRequest {
  method: string;
  /** The path under /rest/v1, e.g. `/todos` or `/rpc/add` (still percent-encoded). */
  path: string;
  /** The raw query string, with or without `?`. */
  query: string;
  /** All values of a header (lower-case name), in order; [] when absent. */
  header: (name: string) => string[];
  /** The body as text (POST/PATCH). */
  body?: string;
}

export interface RestConfig {
  /** REST_SCHEMAS: exposed schemas, the first is the default. */
  schemas: readonly string[];
  /** REST_MAX_ROWS; null = no cap. */
  maxRows: bigint | null;
  /** Whether `Prefer: tx=rollback` is honoured. */
  allowTransactionOverride: boolean;
}

export interface PreparedRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PATCH' | 'DELETE';
  schema: string;
  /** Answer with `Content-Profile: <schema>` (the schema was chosen by a profile header or among several). */
  profileHeader: boolean;
  target: { kind: 'relation'; name: string } | { kind: 'function'; name: string };
  query: QueryParams;
  preferences: Preferences;
  output: Negotiated;
  topRange: RowRange;
  payload?: Payload;
  maxRows: bigint | null;
}

const JSON_BODY_TYPES = new Set(['json']);

function decodeSegment(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function resource(path: string): PreparedRequest['target'] {
  const segments = path.split('/').filter((s) => s !== '').map(decodeSegment);
  if (segments.length === 0) throw new RestError(404, 'PGRST126', 'Root endpoint metadata is disabled');
  if (segments.length === 1) return { kind: 'relation', name: segments[0] };
  if (segments.length === 2 && segments[0] === 'rpc') return { kind: 'function', name: segments[1] };
  throw new RestError(404, 'PGRST125', 'Invalid path specified in request URL');
}

function action(target: PreparedRequest['target'], method: string): PreparedRequest['method'] {
  if (target.kind === 'function') {
    if (method === 'GET' || method === 'HEAD' || method === 'POST') return method;
    throw RestError.invalidRpcMethod(method);
  }
  if (method === 'GET' || method === 'HEAD' || method === 'POST' || method === 'PATCH' || method === 'DELETE') return method;
  if (method === 'PUT') throw RestError.notImplemented('PUT (a single-row upsert by primary key) is not implemented');
  throw RestError.unsupportedMethod(method);
}

export function prepareRequest(raw: RawRestRequest, config: RestConfig): PreparedRequest {
  const target = resource(raw.path);
  const writesWithContent = ['POST', 'PATCH', 'PUT', 'DELETE'].includes(raw.method);
  const profile = raw.header(writesWithContent ? 'content-profile' : 'accept-profile')[0];
  if (profile !== undefined && !config.schemas.includes(profile)) throw RestError.unacceptableSchema(profile, config.schemas);
  const schema = profile ?? config.schemas[0];
  const method = action(target, raw.method);
  const rpcRead = target.kind === 'function' && (method === 'GET' || method === 'HEAD');
  const query = parseQueryParams(parseQueryString(raw.query), { rpcRead });
  const topRange = topLevelRange(method, query.ranges.get('')?.range, raw.header('range')[0]);
  let payload: Payload | undefined;
  const hasBody = method === 'PATCH' || (method === 'POST' && target.kind === 'relation') || (method === 'POST' && target.kind === 'function');
  if (hasBody) {
    const contentType = raw.header('content-type')[0];
    const media = contentType === undefined ? { kind: 'json' as const } : decodeMediaType(contentType);
    if (!JSON_BODY_TYPES.has(media.kind)) throw RestError.invalidBody(`Content-Type not acceptable: ${mimeOf(media)}`);
    payload = parsePayload(raw.body ?? '', { ...(query.columns ? { columns: query.columns } : {}), rpc: target.kind === 'function' });
  }
  const preferences = parsePreferences(raw.header('prefer'), { allowTransactionOverride: config.allowTransactionOverride });
  const output = negotiate(parseAccept(raw.header('accept')[0]));
  checkStrictPreferences(preferences);
  return {
    method,
    schema,
    profileHeader: profile !== undefined || config.schemas.length !== 1,
    target,
    query,
    preferences,
    output,
    topRange,
    ...(payload ? { payload } : {}),
    maxRows: config.maxRows,
  };
}
