/**
 * Parsec's error messages for the combinator engine of parsec.ts: the message kinds, errors merged by position,
 * relabelled by `<?>`, and shown as Text.Parsec.Error does (Haskell's `show` of chars and strings, line and column),
 * with PostgREST's words. Written from the documented behaviour of Haskell's parsec 3, not from its code.
 */

export const SYS_UNEXPECT = 0;
export const UNEXPECT = 1;
export const EXPECT = 2;
export const MESSAGE = 3;

/** A message; `token` (with text '') defers Haskell's show of an unexpected char to when the error is shown. */
export interface Msg {
  kind: number;
  text: string;
  token?: { char: string; asChar: boolean };
}

/**
 * Messages as a tree built in O(1) per merge or label (Parsec merges and relabels errors at every step); flattened
 * into Parsec's message list only when an error is shown.
 */
type MsgTree = Msg | { cat: [MsgTree, MsgTree] } | { labels: readonly string[]; rest: MsgTree };

/** An error at an input index (Parsec's positions grow with the index, so comparing indexes compares positions). */
export interface ParseError {
  pos: number;
  /** null: an unknown error (no message). */
  msgs: MsgTree | null;
}

function flatten(tree: MsgTree): Msg[] {
  if ('kind' in tree) return [tree];
  if ('cat' in tree) {
    // Left-deep chains can be long: walk them with a stack, not recursion.
    const out: Msg[] = [];
    const stack: MsgTree[] = [tree];
    while (stack.length) {
      const t = stack.pop()!;
      if ('cat' in t) stack.push(t.cat[1], t.cat[0]);
      else out.push(...flatten(t));
    }
    return out;
  }
  const msgs: Msg[] = [{ kind: EXPECT, text: tree.labels.length === 0 ? '' : tree.labels[0] }];
  for (const m of flatten(tree.rest)) if (m.kind !== EXPECT) msgs.push(m);
  for (let k = tree.labels.length - 1; k >= 1; k--) msgs.push({ kind: EXPECT, text: tree.labels[k] });
  return msgs;
}

export function mergeError(e1: ParseError, e2: ParseError): ParseError {
  if (e2.msgs === null && e1.msgs !== null) return e1;
  if (e1.msgs === null && e2.msgs !== null) return e2;
  if (e1.pos === e2.pos) return { pos: e1.pos, msgs: e1.msgs === null ? e2.msgs : e2.msgs === null ? e1.msgs : { cat: [e1.msgs, e2.msgs] } };
  return e1.pos > e2.pos ? e1 : e2;
}

const NO_MSG: Msg = { kind: MESSAGE, text: '' };

/** Parsec's setErrorMessage for Expect: drop every Expect message, put the given ones first. */
export function setExpect(e: ParseError, labels: readonly string[]): ParseError {
  return { pos: e.pos, msgs: { labels, rest: e.msgs ?? NO_MSG } };
}

/** A message as shown; tokens in Haskell's show.*/
export const msgText = (m: Msg): string => (m.token ? (m.token.asChar ? showChar(m.token.char) : showString(m.token.char)) : m.text);

const byKind = (a: Msg, b: Msg): number => a.kind - b.kind;

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

/** Parsec's line and column of an input index: a tab moves to the next multiple of 8 (+1), a newline to line+1. */
export function lineColumn(src: readonly string[], pos: number): { line: number; col: number } {
  let line = 1;
  let col = 1;
  for (let k = 0; k < pos && k < src.length; k++) {
    const c = src[k];
    if (c === '\n') {
      line++;
      col = 1;
    } else if (c === '\t') col += 8 - ((col - 1) % 8);
    else col++;
  }
  return { line, col };
}

/** Text.Parsec.Error.showErrorMessages with PostgREST's words, newlines turned into spaces and trimmed. */
export function describeError(e: ParseError): string {
  const msgs = e.msgs === null ? [] : flatten(e.msgs).sort(byKind); // stable: keeps order within a kind
  if (msgs.length === 0) return 'unknown parse error';
  const sysUnExpect = msgs.filter((m) => m.kind === SYS_UNEXPECT);
  const unExpect = msgs.filter((m) => m.kind === UNEXPECT);
  const expect = msgs.filter((m) => m.kind === EXPECT);
  const messages = msgs.filter((m) => m.kind === MESSAGE);
  const clean = (xs: string[]) => [...new Set(xs.filter((x) => x !== ''))];
  const commasOr = (xs: string[]) => (xs.length <= 1 ? (xs[0] ?? '') : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`);
  const showMany = (pre: string, ms: Msg[]) => {
    const shown = clean(ms.map(msgText));
    if (shown.length === 0) return '';
    return pre === '' ? commasOr(shown) : `${pre} ${commasOr(shown)}`;
  };
  let showSys = '';
  if (unExpect.length === 0 && sysUnExpect.length > 0) {
    const first = msgText(sysUnExpect[0]);
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
