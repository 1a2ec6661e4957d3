/**
 * The prepared request and built statement of recent body-less requests (GET, HEAD, DELETE), per schema cache: an
 * app sends the same few request shapes again and again, and parsing the query plus building the statement was a
 * third of the API's own CPU on a select by primary key. Both are pure functions of what the key holds (method,
 * path, query string, and the only headers prepareRequest reads without a body: the profile header, Range, Prefer,
 * Accept) and of the schema cache (the map hangs off it, so a schema reload drops it). Requests with a body are not
 * cached: the payload is part of the statement's inputs. Entries are shared: nothing downstream mutates them.
 */
import type { SchemaCache } from '../schema/types.js';
import type { PreparedRequest } from '../request.js';
import type { BuiltStatement } from '../sql/statement.js';

export interface CachedStatement {
  prepared: PreparedRequest;
  built: BuiltStatement;
}

/** Entries per schema cache; the oldest goes first past it. */
const MAX_ENTRIES = 512;
/** Longer keys (huge query strings or headers) are not cached, so the cache's memory stays bounded. */
const MAX_KEY_LENGTH = 4096;

const bySchema = new WeakMap<SchemaCache, Map<string, CachedStatement>>();

/** The key of a body-less request, or null when it is not cached (a method with a body, or too long a key). */
export function statementKey(method: string, path: string, query: string, headers: Record<string, string>): string | null {
  if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') return null;
  const profile = method === 'DELETE' ? headers['content-profile'] : headers['accept-profile'];
  // \n cannot occur in a header value or a request line, so the parts cannot run into each other.
  const key = `${method}\n${path}\n${query}\n${profile ?? '\r'}\n${headers.range ?? '\r'}\n${headers.prefer ?? '\r'}\n${headers.accept ?? '\r'}`;
  return key.length > MAX_KEY_LENGTH ? null : key;
}

export function cachedStatement(cache: SchemaCache, key: string): CachedStatement | undefined {
  return bySchema.get(cache)?.get(key);
}

export function rememberStatement(cache: SchemaCache, key: string, entry: CachedStatement): void {
  let entries = bySchema.get(cache);
  if (!entries) bySchema.set(cache, (entries = new Map()));
  if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
  entries.set(key, entry);
}
