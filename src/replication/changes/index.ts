/**
 * Pure building blocks of Postgres Changes: binding parsing (subscription), filter grammar and evaluation, row
 * rendering to upstream's JSON values, and the event payload. Nothing here performs I/O.
 */
export * from './subscription.js';
export * from './filter.js';
export * from './filter-eval.js';
export * from './render.js';
export * from './payload.js';
export * from './types.js';
export { quoteJson, jsonbTextLength, utf8Length } from './json-text.js';
export { parseArrayLiteral, flattenArray, ArrayLiteralError, type PgArray } from './pg-array.js';
export { PatternError } from './pattern.js';
export { inspect, inspectList, inspectPretty, Tuple, type InspectTerm } from './elixir-inspect.js';
export type { CastError } from './scalars.js';
