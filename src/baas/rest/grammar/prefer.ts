/**
 * `Prefer` header (RFC 7240) as PostgREST reads it: comma-separated over all Prefer headers, trimmed, the first
 * value of each kind wins, unknown values are kept for `handling=strict` (PGRST122).
 */
import { RestError } from '../errors.js';
import { MAX_PREFERENCES } from '../limits.js';
import { readInteger } from './range.js';

export interface Preferences {
  resolution?: 'merge-duplicates' | 'ignore-duplicates';
  representation?: 'full' | 'none' | 'headers-only';
  count?: 'exact' | 'planned' | 'estimated';
  transaction?: 'commit' | 'rollback';
  missing?: 'default' | 'null';
  handling?: 'strict' | 'lenient';
  timezone?: string;
  maxAffected?: bigint;
  /** Values that are none of the above, in order. */
  invalid: string[];
}

const KINDS = {
  resolution: { 'resolution=merge-duplicates': 'merge-duplicates', 'resolution=ignore-duplicates': 'ignore-duplicates' },
  representation: { 'return=representation': 'full', 'return=minimal': 'none', 'return=headers-only': 'headers-only' },
  count: { 'count=exact': 'exact', 'count=planned': 'planned', 'count=estimated': 'estimated' },
  transaction: { 'tx=commit': 'commit', 'tx=rollback': 'rollback' },
  missing: { 'missing=default': 'default', 'missing=null': 'null' },
  handling: { 'handling=strict': 'strict', 'handling=lenient': 'lenient' },
} as const;

const ACCEPTED = new Set<string>(Object.values(KINDS).flatMap((k) => Object.keys(k)));

/** Haskell BS.strip (Char8 isSpace): ASCII white space and U+00A0 bytes never appear decoded here. */
const stripAscii = (s: string): string => s.replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, '');

export interface PreferOptions {
  /** `tx=` is honoured only when the server allows it (PostgREST's db-tx-end = *-allow-override). */
  allowTransactionOverride: boolean;
}

/** Parses every `Prefer` header value of a request. Throws PGRST100 over MAX_PREFERENCES values. */
export function parsePreferences(headers: readonly string[], options: PreferOptions): Preferences {
  const values = headers.flatMap((h) => h.split(',')).map(stripAscii);
  if (values.length > MAX_PREFERENCES) {
    throw RestError.queryParam('Too many preferences', `The Prefer header has ${values.length} values; the limit is ${MAX_PREFERENCES}.`);
  }
  const prefs: Preferences = { invalid: [] };
  const record = prefs as unknown as Record<string, unknown>;
  for (const value of values) {
    for (const [kind, table] of Object.entries(KINDS)) {
      const mapped = (table as Record<string, string>)[value];
      if (mapped !== undefined && record[kind] === undefined) {
        if (kind !== 'transaction' || options.allowTransactionOverride) record[kind] = mapped;
      }
    }
    if (value.startsWith('timezone=') && prefs.timezone === undefined) prefs.timezone = value.slice('timezone='.length);
    if (value.startsWith('max-affected=') && prefs.maxAffected === undefined) {
      const n = readInteger(value.slice('max-affected='.length));
      if (n !== null) prefs.maxAffected = n;
    }
    if (!ACCEPTED.has(value) && !value.startsWith('timezone=') && !value.startsWith('max-affected=')) prefs.invalid.push(value);
  }
  return prefs;
}

/** PGRST122 when `handling=strict` meets a preference we do not know. */
export function checkStrictPreferences(prefs: Preferences): void {
  if (prefs.handling === 'strict' && prefs.invalid.length > 0) throw RestError.invalidPreferences(prefs.invalid);
}

/** The `Preference-Applied` header value, or null when nothing applies. */
export function preferenceApplied(prefs: Preferences): string | null {
  const out: string[] = [];
  if (prefs.resolution) out.push(`resolution=${prefs.resolution}`);
  if (prefs.missing) out.push(`missing=${prefs.missing}`);
  if (prefs.representation) {
    out.push(prefs.representation === 'full' ? 'return=representation' : prefs.representation === 'none' ? 'return=minimal' : 'return=headers-only');
  }
  if (prefs.count) out.push(`count=${prefs.count}`);
  if (prefs.transaction) out.push(`tx=${prefs.transaction}`);
  if (prefs.handling) out.push(`handling=${prefs.handling}`);
  if (prefs.timezone !== undefined) out.push(`timezone=${prefs.timezone}`);
  if (prefs.handling === 'strict' && prefs.maxAffected !== undefined) out.push(`max-affected=${prefs.maxAffected}`);
  return out.length === 0 ? null : out.join(', ');
}
