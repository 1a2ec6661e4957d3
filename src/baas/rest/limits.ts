/**
 * Performer's bounds on a REST request's query (PostgREST has none; these keep parsing and planning cheap and the
 * parser's recursion shallow). Going over any of them is a 400 PGRST100 that names the bound.
 */

/** Bytes of the raw query string (after `?`). */
export const MAX_QUERY_BYTES = 16 * 1024;
/** Key/value pairs in the query string. */
export const MAX_QUERY_PARAMS = 256;
/** Nesting of `or(...)` / `and(...)` inside one logic parameter. */
export const MAX_LOGIC_DEPTH = 16;
/** Nesting of embedded resources in `select`. */
export const MAX_EMBED_DEPTH = 8;
/** Filter conditions in the whole request, those inside `or`/`and` included. */
export const MAX_FILTERS = 256;
/** Items of `select` over all levels (after expanding nothing: as written). */
export const MAX_SELECT_ITEMS = 512;
/** Values of one `Prefer` header list (all Prefer headers together). */
export const MAX_PREFERENCES = 32;
