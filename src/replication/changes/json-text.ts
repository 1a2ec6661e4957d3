/**
 * JSON text helpers for the payload builder, which writes JSON directly instead of stringifying objects.
 */

// Characters Postgres' escape_json (and JSON.stringify) escape: controls, the quote and the backslash.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /[\u0000-\u001f"\\]/;

/**
 * A JSON string literal, escaped exactly like Postgres' jsonb output (so byte counts agree with it): both escape
 * only the quote, the backslash and controls below 0x20 (\b \f \n \r \t by name, the rest as lower-case \u00xx),
 * as JSON.stringify does for a string; text decoded from UTF-8 has no lone surrogates, where the two would differ.
 * Most values need no escaping, and a regex test plus quotes costs less than JSON.stringify's set-up.
 */
export function quoteJson(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/** UTF-8 byte length of a JS string without allocating a Buffer. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/**
 * Byte length of a JSON value as Postgres prints it from jsonb (`octet_length(v::text)`): insignificant whitespace
 * dropped, then one space after every `,` and `:` between tokens. Used only for the 413 fallback, which keeps fields
 * whose jsonb text is at most 64 bytes. Approximation: numbers are counted as written (jsonb would normalise
 * `1e2` to `100`) and duplicate object keys are not removed.
 */
export function jsonbTextLength(json: string): number {
  let n = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        n += 2;
        i++;
        continue;
      }
      if (c === 0x22) inString = false;
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdbff ? (i++, 4) : 3;
      continue;
    }
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (c === 0x22) inString = true;
    n += c === 0x2c || c === 0x3a ? 2 : 1;
  }
  return n;
}
