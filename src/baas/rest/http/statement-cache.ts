/**
 * The prepared request and built statement of recent request shapes, per schema cache: an app sends the same few
 * request shapes again and again, and parsing the query plus building the statement was a third of the API's own
 * CPU on a select by primary key, and more on an insert. Both are pure functions of what the key holds and of the
 * schema cache (the maps hang off it, so a schema reload drops them).
 *
 * Body-less requests (GET, HEAD, DELETE) are keyed by method, path, query string and the only headers
 * prepareRequest reads without a body: the profile header, Range, Prefer, Accept.
 *
 * Requests with a body (POST, PATCH) add Content-Type to that key, and the statement depends on the body's SHAPE
 * only: whether it is an array, and its keys (the columns written, the arguments passed). Its values are ONE
 * parameter, the JSON text as received, which Postgres parses (json_populate_record[set], json_to_record). So the
 * body is still parsed per request (it must be valid JSON, its keys name the shape), but the query, the
 * preferences and the statement are not. What the cache keeps never holds a body: the entry's body parameters are
 * null and its prepared request has no payload; each hit gets a fresh copy of the values with its own body.
 * Entries are shared: nothing downstream mutates them.
 */
import { parsePayload, type PayloadOptions } from '../grammar/payload.js';
import type { Payload } from '../grammar/ast.js';
import type { SchemaCache } from '../schema/types.js';
import type { PreparedRequest } from '../request.js';
import type { BuiltStatement } from '../sql/statement.js';

export interface CachedStatement {
  prepared: PreparedRequest;
  built: BuiltStatement;
}

/** Entries per schema cache (statements, and the body options of write keys); the oldest goes first past it. */
const MAX_ENTRIES = 512;
/** Longer keys (huge query strings or headers) are not cached, so the cache's memory stays bounded. */
const MAX_KEY_LENGTH = 4096;
/** Longer body shapes (a body of very many keys) are not cached either. */
const MAX_SHAPE_LENGTH = 4096;

interface Entries {
  statements: Map<string, CachedStatement>;
  /** Per key of a request with a body: how its body is read (the `columns` parameter, rpc or not). */
  bodies: Map<string, PayloadOptions>;
}

const bySchema = new WeakMap<SchemaCache, Entries>();

/**
 * The key of a request's every input to prepareRequest but its body, or null when it is not cached (a method the
 * API refuses, or too long a key).
 */
export function statementKey(method: string, path: string, query: string, headers: Record<string, string>): string | null {
  let key: string;
  // \n cannot occur in a header value or a request line, so the parts cannot run into each other.
  if (method === 'GET' || method === 'HEAD') {
    key = `${method}\n${path}\n${query}\n${headers['accept-profile'] ?? '\r'}\n${headers.range ?? '\r'}\n${headers.prefer ?? '\r'}\n${headers.accept ?? '\r'}`;
  } else if (method === 'DELETE' || method === 'POST' || method === 'PATCH') {
    const withBody = method === 'DELETE' ? '' : `\n${headers['content-type'] ?? '\r'}`;
    key = `${method}\n${path}\n${query}\n${headers['content-profile'] ?? '\r'}\n${headers.range ?? '\r'}\n${headers.prefer ?? '\r'}\n${headers.accept ?? '\r'}${withBody}`;
  } else {
    return null;
  }
  return key.length > MAX_KEY_LENGTH ? null : key;
}

/** The key of one body shape under a request's key; null when too long to cache. */
function shapeKey(key: string, payload: Payload): string | null {
  const keys = JSON.stringify(payload.keys);
  return keys.length > MAX_SHAPE_LENGTH ? null : `${key}\n${payload.isArray ? '[' : '{'}${keys}`;
}

/**
 * The cached statement of a request: for a body-less one by its key; for one with a body (`body` given) by its
 * key and its body's shape, with this body as the statement's body parameters. Undefined when not cached, and
 * when the body does not parse (prepareRequest then answers the error, in PostgREST's order of checks).
 */
export function cachedStatement(cache: SchemaCache, key: string, body?: string): CachedStatement | undefined {
  const entries = bySchema.get(cache);
  if (!entries) return undefined;
  if (body === undefined) return entries.statements.get(key);
  const options = entries.bodies.get(key);
  if (!options) return undefined;
  let payload: Payload;
  try {
    payload = parsePayload(body, options);
  } catch {
    return undefined;
  }
  const shape = shapeKey(key, payload);
  const stored = shape === null ? undefined : entries.statements.get(shape);
  if (!stored) return undefined;
  const values = stored.built.values.slice();
  for (const i of stored.built.bodyParams) values[i] = payload.json;
  return { prepared: stored.prepared, built: { ...stored.built, values } };
}

/** Remembers a request's statement under its key (and its body's shape, for a request with a body). */
export function rememberStatement(cache: SchemaCache, key: string, entry: CachedStatement): void {
  let entries = bySchema.get(cache);
  if (!entries) bySchema.set(cache, (entries = { statements: new Map(), bodies: new Map() }));
  const { payload, ...prepared } = entry.prepared;
  if (!payload) return remember(entries.statements, key, entry);
  const shape = shapeKey(key, payload);
  if (shape === null) return;
  const bodyParams = new Set(entry.built.bodyParams);
  const values = entry.built.values.map((v, i) => (bodyParams.has(i) ? null : v));
  remember(entries.bodies, key, { ...(prepared.query.columns ? { columns: prepared.query.columns } : {}), rpc: prepared.target.kind === 'function' });
  remember(entries.statements, shape, { prepared, built: { ...entry.built, values } });
}

function remember<T>(map: Map<string, T>, key: string, value: T): void {
  if (map.size >= MAX_ENTRIES && !map.has(key)) map.delete(map.keys().next().value as string);
  map.set(key, value);
}
