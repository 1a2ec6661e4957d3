/**
 * A small parser-combinator engine with Parsec's semantics (consumed/empty × ok/error replies, error merging by
 * position, `try`, labels), so that our grammar reports a bad query string exactly as PostgREST does:
 * `"failed to parse filter (x)" (line 1, column 3)` + `unexpected "y" expecting ...`. Written from the documented
 * behaviour of Haskell's parsec 3 (Text.Parsec.Prim / Error), not from its code.
 *
 * Linear time: no combinator backtracks unboundedly; `many`/`sepBy` are loops (no recursion per item), and the
 * grammars only wrap bounded prefixes in `attempt`. Input is an array of code points (Parsec works on Chars); a
 * state is an index into it, turned into Parsec's line and column only for the final error.
 */

import {
  describeError,
  EXPECT,
  lineColumn,
  mergeError,
  type Msg,
  type ParseError,
  type ParseFailure,
  setExpect,
  showString,
  SYS_UNEXPECT,
  UNEXPECT,
} from './parse-errors.js';

export { describeError, EXPECT, MESSAGE, mergeError, type Msg, type ParseError, type ParseFailure, showChar, showString, SYS_UNEXPECT, UNEXPECT } from './parse-errors.js';

/** Where a parser stands: the index of the next code point in the input being parsed. */
export type State = number;

/** One reply shape for every outcome (monomorphic for the JIT): failures have value undefined and pos -1. */
export class Reply<T> {
  constructor(
    readonly ok: boolean,
    readonly consumed: boolean,
    readonly value: T,
    readonly pos: number,
    readonly err: ParseError,
  ) {}
}

export type Parser<T> = (st: State) => Reply<T>;

/** The input of the parse under way (parsing is synchronous and never nested). */
let SRC: readonly string[] = [];
/** The parse under way, so memo tables from an earlier parse are never read. */
let RUN = 0;

const unknownError = (pos: number): ParseError => ({ pos, msgs: null });
const END_OF_INPUT: Msg = { kind: SYS_UNEXPECT, text: '' };
const endOfInput = (pos: number): ParseError => ({ pos, msgs: END_OF_INPUT });
const unexpectedToken = (pos: number, kind: number, char: string, asChar: boolean): ParseError => ({
  pos,
  msgs: { kind, text: '', token: { char, asChar } },
});
const isUnknown = (e: ParseError): boolean => e.msgs === null;

const okReply = <T>(consumed: boolean, value: T, pos: number, err: ParseError) => new Reply<T>(true, consumed, value, pos, err);
const errReply = <T>(consumed: boolean, err: ParseError) => new Reply<T>(false, consumed, undefined as T, -1, err);

export const pure =
  <T>(value: T): Parser<T> =>
  (st) => okReply(false, value, st, unknownError(st));

/**
 * Remembers p's reply per position for the parse under way. Replies are immutable and depend only on the position,
 * so this changes nothing but the work: the grammar tries the same field name at one position several times.
 */
export function memo<T>(p: Parser<T>): Parser<T> {
  let run = -1;
  let table = new Map<number, Reply<T>>();
  return (st) => {
    if (run !== RUN) {
      run = RUN;
      table = new Map();
    }
    let r = table.get(st);
    if (r === undefined) {
      r = p(st);
      table.set(st, r);
    }
    return r;
  };
}

/** mzero / guard False: fails without a message. */
export const zero: Parser<never> = (st) => errReply(false, unknownError(st));

/** Parsec's bind, applied to m's (ok) reply and the reply of what follows it. */
function joinReplies<T>(m: Reply<unknown>, k: Reply<T>): Reply<T> {
  if (k.consumed) return k;
  const err = isUnknown(m.err) ? k.err : mergeError(m.err, k.err);
  return new Reply(k.ok, m.consumed, k.value, k.pos, err);
}

export function bind<A, B>(p: Parser<A>, f: (a: A) => Parser<B>): Parser<B> {
  return (st) => {
    const r = p(st);
    if (!r.ok) return r as unknown as Reply<B>;
    return joinReplies(r, f(r.value)(r.pos));
  };
}

type Values<T extends readonly Parser<unknown>[]> = { [K in keyof T]: T[K] extends Parser<infer V> ? V : never };

/** `do { a <- p1; b <- p2; ... }` returning every value. */
export function seq<T extends readonly Parser<unknown>[]>(...ps: T): Parser<Values<T>> {
  const n = ps.length;
  return (st) => {
    const replies = new Array<Reply<unknown>>(n);
    let count = 0;
    let cur = st;
    for (let j = 0; j < n; j++) {
      const r = ps[j](cur);
      replies[count++] = r;
      if (!r.ok) break;
      cur = r.pos;
    }
    let acc = replies[count - 1];
    if (acc.ok) {
      const values = new Array<unknown>(n);
      for (let j = 0; j < n; j++) values[j] = replies[j].value;
      acc = new Reply(true, acc.consumed, values, acc.pos, acc.err);
    }
    for (let j = count - 2; j >= 0; j--) acc = joinReplies(replies[j], acc);
    return acc as Reply<Values<T>>;
  };
}

export function map<A, B>(p: Parser<A>, f: (a: A) => B): Parser<B> {
  return (st) => {
    const r = p(st);
    return r.ok ? new Reply(true, r.consumed, f(r.value), r.pos, r.err) : (r as unknown as Reply<B>);
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
    for (const p of ps) {
      const r = p(st);
      if (r.consumed) return r;
      if (r.ok) return err ? new Reply(true, false, r.value, r.pos, mergeError(err, r.err)) : r;
      err = err ? mergeError(err, r.err) : r.err;
    }
    return errReply(false, err ?? unknownError(st));
  };
}

/** `try p`: a consumed error becomes an empty one. */
export function attempt<T>(p: Parser<T>): Parser<T> {
  return (st) => {
    const r = p(st);
    return !r.ok && r.consumed ? errReply(false, r.err) : r;
  };
}

export function lookAhead<T>(p: Parser<T>): Parser<T> {
  return (st) => {
    const r = p(st);
    return r.ok ? okReply(false, r.value, st, unknownError(st)) : r;
  };
}

/** `p <?> "a"` / `labels p [...]` */
export function label<T>(p: Parser<T>, ...labels: string[]): Parser<T> {
  return (st) => {
    const r = p(st);
    if (r.consumed) return r;
    if (r.ok) return isUnknown(r.err) ? r : new Reply(true, false, r.value, r.pos, setExpect(r.err, labels));
    return errReply(false, setExpect(r.err, labels));
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
        cur = r.pos;
        consumed = true;
        continue;
      }
      if (!r.ok && r.consumed) return r as unknown as Reply<T[]>;
      if (r.ok) throw new Error('many: the parser accepts an empty string');
      return okReply(consumed, values, cur, r.err);
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
    if (st >= SRC.length) return errReply(false, endOfInput(st));
    const c = SRC[st];
    if (!pred(c)) return errReply(false, unexpectedToken(st, SYS_UNEXPECT, c, false));
    return okReply(true, c, st + 1, unknownError(st + 1));
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
      const c = cur < SRC.length ? SRC[cur] : undefined;
      if (c !== want[k]) {
        const unexpected: Msg = c === undefined ? END_OF_INPUT : { kind: SYS_UNEXPECT, text: '', token: { char: c, asChar: false } };
        return errReply(consumed, { pos: st, msgs: { cat: [{ kind: EXPECT, text: expected }, unexpected] } });
      }
      cur++;
    }
    return okReply(want.length > 0, s, cur, unknownError(cur));
  };
}

/**
 * anyToken: consumes one token without moving the position; shows it as a Haskell Char (`'x'`). Its state is only
 * ever read by the failure inside notFollowedBy, so the index stays put too (the error lands where the token is).
 */
const anyToken: Parser<string> = (st) => {
  if (st >= SRC.length) return errReply(false, endOfInput(st));
  return okReply(true, SRC[st], st, unknownError(st));
};

/** `notFollowedBy p` for a p returning one Char: the unexpected token shows as a Haskell Char (`'c'`). */
export function notFollowedBy(p: Parser<string>): Parser<void> {
  const unexpected =
    (c: string): Parser<void> =>
    (st) => errReply(false, unexpectedToken(st, UNEXPECT, c, true));
  return attempt(alt<void>(bind(attempt(p), unexpected), pure(undefined)));
}

export const eof: Parser<void> = label(notFollowedBy(anyToken), 'end of input');

/** Runs p on the whole of `input` (without requiring end of input, as Parsec's `parse`). */
export function runParser<T>(p: Parser<T>, source: string, input: string): { ok: true; value: T } | { ok: false; failure: ParseFailure } {
  const saved = SRC;
  const src = Array.from(input);
  SRC = src;
  RUN++;
  let r: Reply<T>;
  try {
    r = p(0);
  } finally {
    SRC = saved;
  }
  if (r.ok) return { ok: true, value: r.value };
  const { line, col } = lineColumn(src, r.err.pos);
  const where = `(line ${line}, column ${col})`;
  return { ok: false, failure: { message: source === '' ? where : `"${source}" ${where}`, details: describeError(r.err) } };
}
