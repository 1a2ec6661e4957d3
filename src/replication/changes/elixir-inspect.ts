/**
 * Elixir's `inspect/1` rendering of decoded JSON values, because upstream puts inspected terms into client-visible
 * messages: `Error parsing \`filter\` params: ["foo", "hey"]`, the params map in `No subscription params
 * provided...: %{"event" => "*"}` and the `filters: [{"id", "eq", "1", false}]` part of subscription errors.
 *
 * Approximations: maps are printed with keys in binary order (true for Elixir maps of up to 32 keys); a float that
 * is integral in JS (`1.0` in the JSON) prints as an integer because JSON.parse cannot tell them apart (integers
 * beyond 2^53 print as floats); strings over
 * inspect's 4096-byte printable limit are not truncated.
 */

export type InspectTerm =
  | string
  | number
  | boolean
  | null
  | undefined
  | readonly InspectTerm[]
  | { readonly [key: string]: InspectTerm }
  | Tuple;

/** An Elixir tuple (JSON has none; upstream's filter tuples are printed as `{...}`). */
export class Tuple {
  constructor(readonly items: readonly InspectTerm[]) {}
}

const ESCAPES: Record<number, string> = {
  0x07: '\\a',
  0x08: '\\b',
  0x09: '\\t',
  0x0a: '\\n',
  0x0b: '\\v',
  0x0c: '\\f',
  0x0d: '\\r',
  0x1b: '\\e',
  0x7f: '\\d',
  0x22: '\\"',
  0x5c: '\\\\',
};

// String.printable?/1: printable code points plus the escapable controls above.
function printable(cp: number): boolean {
  if (ESCAPES[cp] !== undefined) return true;
  return (
    (cp >= 0x20 && cp <= 0x7e) ||
    (cp >= 0xa0 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

export function inspectString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    if (!printable(cp)) return inspectBinary(s);
    const esc = ESCAPES[cp];
    if (esc !== undefined) out += esc;
    else if (cp === 0x23 && s[i + 1] === '{') out += '\\#';
    else out += String.fromCodePoint(cp);
  }
  return `${out}"`;
}

// Non-printable binaries print as their bytes.
function inspectBinary(s: string): string {
  return `<<${Array.from(Buffer.from(s, 'utf8')).join(', ')}>>`;
}

/** Erlang's shortest float text (`io_lib_format:fwrite_g`): the shorter of plain and scientific, plain on ties. */
export function inspectFloat(x: number): string {
  const plain = plainFloat(x);
  const sci = scientific(x);
  return sci.length < plain.length ? sci : plain;
}

function scientific(x: number): string {
  const [mant, exp] = x.toExponential().split('e') as [string, string];
  const m = mant.includes('.') ? mant : `${mant}.0`;
  return `${m}e${exp.startsWith('+') ? exp.slice(1) : exp}`;
}

function plainFloat(x: number): string {
  const [mant, expText] = x.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  const point = exp + 1;
  let body: string;
  if (point <= 0) body = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) body = `${digits}${'0'.repeat(point - digits.length)}.0`;
  else body = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return neg ? `-${body}` : body;
}

export function inspect(term: InspectTerm): string {
  if (term === null || term === undefined) return 'nil';
  if (typeof term === 'string') return inspectString(term);
  if (typeof term === 'boolean') return term ? 'true' : 'false';
  if (typeof term === 'number') return Number.isSafeInteger(term) ? String(term) : inspectFloat(term);
  if (term instanceof Tuple) return `{${term.items.map(inspect).join(', ')}}`;
  if (Array.isArray(term)) return inspectList(term);
  const obj = term as { readonly [key: string]: InspectTerm };
  const keys = Object.keys(obj).sort(compareBinary);
  if (keys.length === 0) return '%{}';
  return `%{${keys.map((k) => `${inspectString(k)} => ${inspect(obj[k])}`).join(', ')}}`;
}

export function inspectList(items: readonly InspectTerm[]): string {
  return `[${items.map(inspect).join(', ')}]`;
}

/**
 * `inspect(term, pretty: true)` as upstream's log helper uses it: one line when it fits in 80 columns, otherwise
 * (for lists) one element per line indented by two spaces.
 */
export function inspectPretty(term: InspectTerm): string {
  const flat = inspect(term);
  if (flat.length <= 80 || !Array.isArray(term) || term.length === 0) return flat;
  return `[\n${(term as readonly InspectTerm[]).map((t) => `  ${inspect(t)}`).join(',\n')}\n]`;
}

/** Binary (UTF-8 byte) order, which for well-formed strings is code point order. */
export function compareBinary(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}
