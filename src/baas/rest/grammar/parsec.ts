/**
 * A small parser-combinator engine with Parsec's semantics (consumed/empty × ok/error replies, error merging by
 * position, `try`, labels), so that our grammar reports a bad query string exactly as PostgREST does:
 * `"failed to parse filter (x)" (line 1, column 3)` + `unexpected "y" expecting ...`. Written from the documented
 * behaviour of Haskell's parsec 3 (Text.Parsec.Prim / Error), not from its code.
 *
 * Linear time: no combinator backtracks unboundedly; `many`/`sepBy` are loops (no recursion per item), and the
 * grammars only wrap bounded prefixes in `attempt`. Input is an array of code points (Parsec works on Chars).
 */

export const SYS_UNEXPECT = 0;
export const UNEXPECT = 1;
export const EXPECT = 2;
export const MESSAGE = 3;

export interface Msg {
  kind: number;
  text: string;
}

export interface ParseError {
  line: number;
  col: number;
  msgs: Msg[];
}

export interface State {
  src: readonly string[];
  i: number;
  line: number;
  col: number;
}

export type Reply<T> =
  | { ok: true; consumed: boolean; value: T; st: State; err: ParseError }
  | { ok: false; consumed: boolean; err: ParseError };

export type Parser<T> = (st: State) => Reply<T>;

/** Thrown by a grammar to stop at once (e.g. nesting over a bound); not a Parsec error. */
export class ParseAbort extends Error {}

const unknownError = (st: { line: number; col: number }): ParseError => ({ line: st.line, col: st.col, msgs: [] });
const newError = (st: { line: number; col: number }, kind: number, text: string): ParseError => ({
  line: st.line,
  col: st.col,
  msgs: [{ kind, text }],
});
const isUnknown = (e: ParseError): boolean => e.msgs.length === 0;

function comparePos(a: ParseError, b: ParseError): number {
  return a.line !== b.line ? a.line - b.line : a.col - b.col;
}

export function mergeError(e1: ParseError, e2: ParseError): ParseError {
  if (e2.msgs.length === 0 && e1.msgs.length > 0) return e1;
  if (e1.msgs.length === 0 && e2.msgs.length > 0) return e2;
  const c = comparePos(e1, e2);
  if (c === 0) return { line: e1.line, col: e1.col, msgs: [...e1.msgs, ...e2.msgs] };
  return c > 0 ? e1 : e2;
}

/** Parsec's setErrorMessage for Expect: drop every Expect message, put the given ones first. */
function setExpect(e: ParseError, labels: readonly string[]): ParseError {
  const rest = e.msgs.filter((m) => m.kind !== EXPECT);
  const first: Msg[] = labels.length === 0 ? [{ kind: EXPECT, text: '' }] : [{ kind: EXPECT, text: labels[0] }];
  let msgs = [...first, ...rest];
  for (let k = labels.length - 1; k >= 1; k--) msgs = [...msgs, { kind: EXPECT, text: labels[k] }];
  return { line: e.line, col: e.col, msgs };
}

function advance(st: State, c: string): State {
  if (c === '\n') return { src: st.src, i: st.i + 1, line: st.line + 1, col: 1 };
  if (c === '\t') return { src: st.src, i: st.i + 1, line: st.line, col: st.col + 8 - ((st.col - 1) % 8) };
  return { src: st.src, i: st.i + 1, line: st.line, col: st.col + 1 };
}

export const pure =
  <T>(value: T): Parser<T> =>
  (st) => ({ ok: true, consumed: false, value, st, err: unknownError(st) });

/** mzero / guard False: fails without a message. */
export const zero: Parser<never> = (st) => ({ ok: false, consumed: false, err: unknownError(st) });

/** Parsec's bind, applied to m's reply and the reply of what follows it. */
function joinReplies<T>(m: Reply<unknown> & { ok: true }, k: Reply<T>): Reply<T> {
  if (k.consumed) return k;
  const err = isUnknown(m.err) ? k.err : mergeError(m.err, k.err);
  return { ...k, consumed: m.consumed, err };
}

export function bind<A, B>(p: Parser<A>, f: (a: A) => Parser<B>): Parser<B> {
  return (st) => {
    const r = p(st);
    if (!r.ok) return r;
    return joinReplies(r, f(r.value)(r.st));
  };
}

type Values<T extends readonly Parser<unknown>[]> = { [K in keyof T]: T[K] extends Parser<infer V> ? V : never };

/** `do { a <- p1; b <- p2; ... }` returning every value. */
export function seq<T extends readonly Parser<unknown>[]>(...ps: T): Parser<Values<T>> {
  return (st) => {
    const replies: Array<Reply<unknown>> = [];
    let cur = st;
    for (const p of ps) {
      const r = p(cur);
      replies.push(r);
      if (!r.ok) break;
      cur = r.st;
    }
    let acc = replies[replies.length - 1];
    if (acc.ok) acc = { ...acc, value: replies.map((r) => (r as { value: unknown }).value) };
    for (let j = replies.length - 2; j >= 0; j--) acc = joinReplies(replies[j] as Reply<unknown> & { ok: true }, acc);
    return acc as Reply<Values<T>>;
  };
}

export function map<A, B>(p: Parser<A>, f: (a: A) => B): Parser<B> {
  return (st) => {
    const r = p(st);
    return r.ok ? { ...r, value: f(r.value) } : r;
  };
}

/** `p <* q` */
export const left = <A>(p: Parser<A>, q: Parser<unknown>): Parser<A> => map(seq(p, q), (v) => v[0] as A);
/** `p *> q` */
export const right = <B>(p: Parser<unknown>, q: Parser<B>): Parser<B> => map(seq(p, q), (v) => v[1] as B);
/** `p $> v` */
export const as = <B>(p: Parser<unknown>, value: B): Parser<B> => map(p, () => value);

/** `p1 <|> p2 <|> ...` (left-associated, as Haskell's infixl). */
export function alt<T>(...ps: Array<Parser<T>>): Parser<T> {
  return (st) => {
    let err: ParseError | null = null;
    let last: Reply<T> | null = null;
    for (const p of ps) {
      const r = p(st);
      if (r.consumed) return r;
      if (r.ok) return err ? { ...r, err: mergeError(err, r.err) } : r;
      err = err ? mergeError(err, r.err) : r.err;
      last = { ...r, err };
    }
    return last ?? zero(st);
  };
}

/** `try p`: a consumed error becomes an empty one. */
export function attempt<T>(p: Parser<T>): Parser<T> {
  return (st) => {
    const r = p(st);
    return !r.ok && r.consumed ? { ok: false, consumed: false, err: r.err } : r;
  };
}

export function lookAhead<T>(p: Parser<T>): Parser<T> {
  return (st) => {
    const r = p(st);
    return r.ok ? { ok: true, consumed: false, value: r.value, st, err: unknownError(st) } : r;
  };
}

/** `p <?> "a"` / `labels p [...]` */
export function label<T>(p: Parser<T>, ...labels: string[]): Parser<T> {
  return (st) => {
    const r = p(st);
    if (r.consumed) return r;
    if (r.ok) return isUnknown(r.err) ? r : { ...r, err: setExpect(r.err, labels) };
    return { ok: false, consumed: false, err: setExpect(r.err, labels) };
  };
}

export function many<T>(p: Parser<T>): Parser<T[]> {
  return (st) => {
    const values: T[] = [];
    let cur = st;
    let consumed = false;
    for (;;) {
      const r = p(cur);
      if (r.ok && r.consumed) {
        values.push(r.value);
        cur = r.st;
        consumed = true;
        continue;
      }
      if (!r.ok && r.consumed) return r;
      if (r.ok) throw new Error('many: the parser accepts an empty string');
      return { ok: true, consumed, value: values, st: cur, err: r.err };
    }
  };
}

export const many1 = <T>(p: Parser<T>): Parser<T[]> => map(seq(p, many(p)), ([x, xs]) => [x as T, ...(xs as T[])]);

export const sepBy1 = <T>(p: Parser<T>, sep: Parser<unknown>): Parser<T[]> =>
  map(seq(p, many(right(sep, p))), ([x, xs]) => [x as T, ...(xs as T[])]);

export const sepBy = <T>(p: Parser<T>, sep: Parser<unknown>): Parser<T[]> => alt(sepBy1(p, sep), pure<T[]>([]));

export const option = <T>(fallback: T, p: Parser<T>): Parser<T> => alt(p, pure(fallback));

export const optionMaybe = <T>(p: Parser<T>): Parser<T | undefined> => alt<T | undefined>(p, pure(undefined));

export const between = <T>(open: Parser<unknown>, close: Parser<unknown>, p: Parser<T>): Parser<T> =>
  map(seq(open, p, close), (v) => v[1] as T);

/** tokenPrim over one code point; the unexpected token shows as a Haskell String (`"x"`). */
export function satisfy(pred: (c: string) => boolean): Parser<string> {
  return (st) => {
    if (st.i >= st.src.length) return { ok: false, consumed: false, err: newError(st, SYS_UNEXPECT, '') };
    const c = st.src[st.i];
    if (!pred(c)) return { ok: false, consumed: false, err: newError(st, SYS_UNEXPECT, showString(c)) };
    const next = advance(st, c);
    return { ok: true, consumed: true, value: c, st: next, err: unknownError(next) };
  };
}

export const char = (c: string): Parser<string> => label(satisfy((x) => x === c), showString(c));
export const oneOf = (cs: string): Parser<string> => satisfy((x) => cs.includes(x));
export const noneOf = (cs: string): Parser<string> => satisfy((x) => !cs.includes(x));
export const anyChar: Parser<string> = satisfy(() => true);
const isAsciiLetter = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
/** Haskell's isAlpha: any Unicode letter. */
export const isLetter = (c: string): boolean => isAsciiLetter(c) || (c > '\x7f' && /\p{L}/u.test(c));
export const letter: Parser<string> = label(satisfy(isLetter), 'letter');
export const digit: Parser<string> = label(
  satisfy((c) => c >= '0' && c <= '9'),
  'digit',
);

/** Parsec's `string` (tokens): errors sit at the start position, consumed once the first char matched. */
export function string(s: string): Parser<string> {
  const want = Array.from(s);
  const expected = showString(s);
  return (st) => {
    let cur = st;
    for (let k = 0; k < want.length; k++) {
      const consumed = k > 0;
      if (cur.i >= cur.src.length) {
        return { ok: false, consumed, err: { line: st.line, col: st.col, msgs: [{ kind: EXPECT, text: expected }, { kind: SYS_UNEXPECT, text: '' }] } };
      }
      const c = cur.src[cur.i];
      if (c !== want[k]) {
        return { ok: false, consumed, err: { line: st.line, col: st.col, msgs: [{ kind: EXPECT, text: expected }, { kind: SYS_UNEXPECT, text: showString(c) }] } };
      }
      cur = advance(cur, c);
    }
    return { ok: true, consumed: want.length > 0, value: s, st: cur, err: unknownError(cur) };
  };
}

const byKind = (a: Msg, b: Msg): number => a.kind - b.kind;

/** anyToken: consumes one token without moving the position; shows it as a Haskell Char (`'x'`). */
const anyToken: Parser<string> = (st) => {
  if (st.i >= st.src.length) return { ok: false, consumed: false, err: newError(st, SYS_UNEXPECT, '') };
  const next: State = { src: st.src, i: st.i + 1, line: st.line, col: st.col };
  return { ok: true, consumed: true, value: st.src[st.i], st: next, err: unknownError(next) };
};

const unexpected =
  (text: string): Parser<never> =>
  (st) => ({ ok: false, consumed: false, err: newError(st, UNEXPECT, text) });

/** `notFollowedBy p`, where `show` renders what p returned (Char values show as `'c'`). */
export function notFollowedBy<T>(p: Parser<T>, show: (v: T) => string = (v) => showChar(String(v))): Parser<void> {
  return attempt(alt<void>(bind(attempt(p), (v) => unexpected(show(v))), pure(undefined)));
}

export const eof: Parser<void> = label(notFollowedBy(anyToken), 'end of input');

// ---- Haskell `show` for Char and String (used in Parsec's messages) ----

const ASCII_NAMES = [
  'NUL', 'SOH', 'STX', 'ETX', 'EOT', 'ENQ', 'ACK', 'a', 'b', 't', 'n', 'v', 'f', 'r', 'SO', 'SI',
  'DLE', 'DC1', 'DC2', 'DC3', 'DC4', 'NAK', 'SYN', 'ETB', 'CAN', 'EM', 'SUB', 'ESC', 'FS', 'GS', 'RS', 'US',
];

/** showLitChar; returns the text and whether a following char needs `\&` protection. */
function litChar(c: string, next: string | undefined): string {
  const code = c.codePointAt(0) ?? 0;
  if (code > 127) return `\\${code}${next !== undefined && next >= '0' && next <= '9' ? '\\&' : ''}`;
  if (code === 127) return '\\DEL';
  if (c === '\\') return '\\\\';
  if (code >= 32) return c;
  if (code === 14) return `\\SO${next === 'H' ? '\\&' : ''}`;
  return `\\${ASCII_NAMES[code]}`;
}

export function showString(s: string): string {
  const cps = Array.from(s);
  let out = '"';
  for (let k = 0; k < cps.length; k++) out += cps[k] === '"' ? '\\"' : litChar(cps[k], cps[k + 1]);
  return `${out}"`;
}

export function showChar(c: string): string {
  return c === "'" ? "'\\''" : `'${litChar(c, undefined)}'`;
}

// ---- running and reporting ----

export function initialState(input: string): State {
  return { src: Array.from(input), i: 0, line: 1, col: 1 };
}

/** Text.Parsec.Error.showErrorMessages with PostgREST's words, newlines turned into spaces and trimmed. */
export function describeError(e: ParseError): string {
  const msgs = [...e.msgs].sort(byKind); // stable: keeps order within a kind
  if (msgs.length === 0) return 'unknown parse error';
  const sysUnExpect = msgs.filter((m) => m.kind === SYS_UNEXPECT);
  const unExpect = msgs.filter((m) => m.kind === UNEXPECT);
  const expect = msgs.filter((m) => m.kind === EXPECT);
  const messages = msgs.filter((m) => m.kind === MESSAGE);
  const clean = (xs: string[]) => [...new Set(xs.filter((x) => x !== ''))];
  const commasOr = (xs: string[]) => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`);
  const showMany = (pre: string, ms: Msg[]) => {
    const texts = clean(ms.map((m) => m.text));
    if (texts.length === 0) return '';
    return pre === '' ? commasOr(texts) : `${pre} ${commasOr(texts)}`;
  };
  let showSys = '';
  if (unExpect.length === 0 && sysUnExpect.length > 0) {
    const first = sysUnExpect[0].text;
    showSys = first === '' ? 'unexpected end of input' : `unexpected ${first}`;
  }
  const parts = clean([showSys, showMany('unexpected', unExpect), showMany('expecting', expect), showMany('', messages)]);
  return parts.join(' ').trim();
}

export interface ParseFailure {
  /** `"<source>" (line L, column C)` — PostgREST's message. */
  message: string;
  /** `unexpected ... expecting ...` — PostgREST's details. */
  details: string;
}

/** Runs p on the whole of `input` (without requiring end of input, as Parsec's `parse`). */
export function runParser<T>(p: Parser<T>, source: string, input: string): { ok: true; value: T } | { ok: false; failure: ParseFailure } {
  const r = p(initialState(input));
  if (r.ok) return { ok: true, value: r.value };
  const where = `(line ${r.err.line}, column ${r.err.col})`;
  return { ok: false, failure: { message: source === '' ? where : `"${source}" ${where}`, details: describeError(r.err) } };
}
