/**
 * The JSON body of POST/PATCH and of POST rpc calls, as PostgREST's getPayload reads it: with `columns` the body
 * is passed on unparsed (Postgres parses it); otherwise it is parsed once for its keys, which must be the same in
 * every object of an array. Errors are PGRST102 with upstream's messages.
 */
import type { Payload } from './ast.js';
import { RestError } from '../errors.js';

/** PostgREST tells an object from an array by the first byte after JSON white space. */
function looksLikeArray(body: string): boolean {
  const m = /[^ \t\n\r]/.exec(body);
  return m !== null && m[0] === '[';
}

export interface PayloadOptions {
  /** The parsed `columns` query parameter. */
  columns?: string[];
  /** A POST rpc call: an empty body means no arguments. */
  rpc: boolean;
}

export function parsePayload(body: string, options: PayloadOptions): Payload {
  if (options.columns !== undefined) return { json: body, isArray: looksLikeArray(body), keys: [...new Set(options.columns)] };
  let value: unknown;
  if (body === '' && options.rpc) value = {};
  else {
    try {
      value = JSON.parse(body);
    } catch {
      throw RestError.invalidBody('Empty or invalid json');
    }
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return { json: '[]', isArray: true, keys: [] };
    const first = value[0];
    if (first === null || typeof first !== 'object' || Array.isArray(first)) throw RestError.invalidBody('All object keys must match');
    const keys = Object.keys(first).sort();
    const same = (o: unknown) =>
      o !== null && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length === keys.length && keys.every((k) => Object.hasOwn(o, k));
    if (!value.every(same)) throw RestError.invalidBody('All object keys must match');
    return { json: body, isArray: true, keys };
  }
  if (value !== null && typeof value === 'object') return { json: body === '' ? '{}' : body, isArray: false, keys: Object.keys(value).sort() };
  // Anything else (a number, a string, null) counts as an empty array, as upstream.
  return { json: '[]', isArray: true, keys: [] };
}
