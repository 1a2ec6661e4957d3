/**
 * Scalar value semantics for filters: how a literal is cast to the column's type (`'<value>'::type`, with
 * Postgres' input rules and error texts) and how two values of that type compare (Postgres' btree order).
 *
 * - integers (int2/int4/int8/oid) and numeric compare exactly (bigint / scaled bigint); numeric NaN equals NaN and
 *   sorts above everything, as Postgres does; float4/float8 likewise treat NaN as equal to itself and largest.
 * - text, varchar, name, "char" compare by code point, i.e. the C collation (this is what a database created with
 *   `--locale=C` does; with a linguistic collation upstream's `<`/`>` on text would follow that collation instead).
 *   Equality is exact either way. bpchar ignores trailing spaces; citext compares lower-cased.
 * - uuid compares its 16 bytes (case and hyphenation of the input do not matter).
 */

export interface CastError {
  sqlstate: string;
  condition: string;
  message: string;
}

export const invalidSyntax = (typeLabel: string, text: string): CastError => ({
  sqlstate: '22P02',
  condition: 'invalid_text_representation',
  message: `invalid input syntax for type ${typeLabel}: "${text}"`,
});

const outOfRange = (message: string): CastError => ({
  sqlstate: '22003',
  condition: 'numeric_value_out_of_range',
  message,
});

export const isCastError = (v: unknown): v is CastError =>
  typeof v === 'object' && v !== null && 'sqlstate' in v && 'message' in v;

// ---------------------------------------------------------------------------------------------------- integers

const INT_RANGES: Record<string, [bigint, bigint, string]> = {
  int2: [-32768n, 32767n, 'smallint'],
  int4: [-2147483648n, 2147483647n, 'integer'],
  int8: [-(2n ** 63n), 2n ** 63n - 1n, 'bigint'],
  oid: [-2147483648n, 4294967295n, 'oid'],
};

const DIGITS = String.raw`0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*|0[oO][0-7]+(?:_[0-7]+)*|0[bB][01]+(?:_[01]+)*|\d+(?:_\d+)*`;
const INTEGER = new RegExp(String.raw`^\s*([+-]?)(${DIGITS})\s*$`);

/** pg_strtoint rules (Postgres 16+): surrounding spaces, sign, decimal/0x/0o/0b digits with `_` separators. */
export function parseInteger(text: string, kind: 'int2' | 'int4' | 'int8' | 'oid'): bigint | CastError {
  const [min, max, label] = INT_RANGES[kind]!;
  const m = INTEGER.exec(text);
  if (!m) return invalidSyntax(label, text);
  const digits = m[2]!.replace(/_/g, '');
  let v = BigInt(digits);
  if (m[1] === '-') v = -v;
  if (v < min || v > max) return outOfRange(`value "${text}" is out of range for type ${label}`);
  if (kind === 'oid' && v < 0n) v += 4294967296n;
  return v;
}

export const compareBigint = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

// ----------------------------------------------------------------------------------------------------- numeric

/** A numeric: special values or coefficient * 10^-scale. */
export type Numeric = { special: 'nan' | 'inf' | '-inf' } | { special: null; coef: bigint; scale: number };

export function parseNumeric(text: string): Numeric | CastError {
  const t = text.trim();
  const lower = t.toLowerCase();
  if (lower === 'nan') return { special: 'nan' };
  if (lower === 'infinity' || lower === '+infinity' || lower === 'inf' || lower === '+inf') return { special: 'inf' };
  if (lower === '-infinity' || lower === '-inf') return { special: '-inf' };
  const m = /^([+-]?)(\d+(?:_\d+)*)?(?:\.(\d+(?:_\d+)*)?)?(?:[eE]([+-]?\d+))?$/.exec(t);
  if (!m || (m[2] === undefined && m[3] === undefined)) return invalidSyntax('numeric', text);
  const whole = (m[2] ?? '').replace(/_/g, '');
  const frac = (m[3] ?? '').replace(/_/g, '');
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  // numeric_in's own limit; also keeps the bigint scaling in compareNumeric cheap.
  if (Math.abs(exp) > 1000) return outOfRange('value overflows numeric format');
  let coef = BigInt(`${whole}${frac}` || '0');
  if (m[1] === '-') coef = -coef;
  return { special: null, coef, scale: frac.length - exp };
}

const NUMERIC_RANK = { '-inf': 0, inf: 2, nan: 3 } as const;

export function compareNumeric(a: Numeric, b: Numeric): number {
  const ra = a.special === null ? 1 : NUMERIC_RANK[a.special];
  const rb = b.special === null ? 1 : NUMERIC_RANK[b.special];
  if (ra !== rb || a.special !== null || b.special !== null) return ra - rb;
  // Bring both to the larger scale; exact whatever the magnitudes.
  let x = a.coef;
  let y = b.coef;
  if (a.scale < b.scale) x *= 10n ** BigInt(b.scale - a.scale);
  else if (b.scale < a.scale) y *= 10n ** BigInt(a.scale - b.scale);
  return compareBigint(x, y);
}

// ------------------------------------------------------------------------------------------------------ floats

/** float4in/float8in: strtod syntax plus the infinity/NaN words; overflow and underflow are errors. */
export function parseFloat8(text: string, kind: 'float4' | 'float8'): number | CastError {
  const label = kind === 'float4' ? 'real' : 'double precision';
  const t = text.trim().toLowerCase();
  if (t === 'nan') return NaN;
  if (t === 'infinity' || t === '+infinity' || t === 'inf' || t === '+inf') return Infinity;
  if (t === '-infinity' || t === '-inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) return invalidSyntax(label, text);
  let v = Number(t);
  if (kind === 'float4') v = Math.fround(v);
  const nonZero = /[1-9]/.test(t.replace(/e.*$/, ''));
  if (!Number.isFinite(v) || (v === 0 && nonZero)) return outOfRange(`"${text}" is out of range for type ${label}`);
  return v;
}

/** Postgres float order: NaN equals NaN and sorts above every other value; -0 equals 0. */
export function compareFloat(a: number, b: number): number {
  const an = Number.isNaN(a);
  const bn = Number.isNaN(b);
  if (an || bn) return an === bn ? 0 : an ? 1 : -1;
  return a < b ? -1 : a > b ? 1 : 0;
}

// ----------------------------------------------------------------------------------------------------- boolean

/** boolin: trimmed, case-insensitive prefixes of true/false/yes/no, on/off (two letters at least), 1/0. */
export function parseBool(text: string): boolean | CastError {
  const t = text.trim().toLowerCase();
  if (t === '') return invalidSyntax('boolean', text);
  if ('true'.startsWith(t) || 'yes'.startsWith(t) || t === '1') return true;
  if ('false'.startsWith(t) || 'no'.startsWith(t) || t === '0') return false;
  if (t.length >= 2 && 'on'.startsWith(t)) return true;
  if (t.length >= 2 && 'off'.startsWith(t)) return false;
  return invalidSyntax('boolean', text);
}

// -------------------------------------------------------------------------------------------------------- text

/** Code point order (C collation); JS `<` on strings would compare UTF-16 units instead. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (supplementary planes) must sort above every BMP code point.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

export const stripTrailingSpaces = (s: string): string => s.replace(/ +$/, '');

// -------------------------------------------------------------------------------------------------------- uuid

/** uuid_in: optional braces, hex digits with an optional hyphen after any group of four. */
export function parseUuid(text: string): string | CastError {
  const m = /^\{?((?:[0-9a-fA-F]{4}-?){7}[0-9a-fA-F]{4})\}?$/.exec(text);
  if (!m || (text.startsWith('{') !== text.endsWith('}'))) return invalidSyntax('uuid', text);
  return m[1]!.replace(/-/g, '').toLowerCase();
}

// ------------------------------------------------------------------------------------------------------- bytea

const badHex = (message: string): CastError => ({ sqlstate: '22023', condition: 'invalid_parameter_value', message });

/** byteain: `\x` hex (whitespace between byte pairs allowed) or the escape format. */
export function parseBytea(text: string): Buffer | CastError {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2).replace(/\s+/g, '');
    const bad = /[^0-9a-fA-F]/.exec(hex);
    if (bad) return badHex(`invalid hexadecimal digit: "${bad[0]}"`);
    if (hex.length % 2 !== 0) return badHex('invalid hexadecimal data: odd number of digits');
    return Buffer.from(hex, 'hex');
  }
  const bytes: number[] = [];
  const raw = Buffer.from(text, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b !== 0x5c) {
      bytes.push(b);
      continue;
    }
    if (raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i++;
      continue;
    }
    const oct = raw.subarray(i + 1, i + 4).toString('latin1');
    if (!/^[0-3][0-7]{2}$/.test(oct)) return invalidSyntax('bytea', text);
    bytes.push(parseInt(oct, 8));
    i += 3;
  }
  return Buffer.from(bytes);
}
