/**
 * LIKE/ILIKE patterns and POSIX regular expressions (`~`, `~*`) as JS RegExps.
 *
 * LIKE is exact: `%` any run, `_` one character, `\` escapes the next character, a trailing `\` is an error.
 * ILIKE lower-cases with JS's Unicode case mapping (Postgres uses the database collation's; they agree outside
 * a few locale-specific letters).
 *
 * Regexes are Postgres' ARE flavour translated to JS. Whether a match exists does not depend on POSIX's
 * leftmost-longest rule, so only syntax needs translating: `.` and `[^...]` match newlines (ARE default), `\m \M \y
 * \Y \A \Z` and `[[:<:]] [[:>:]]` become JS assertions, `[[:class:]]` becomes Unicode property classes, `\B` is a
 * backslash, `\x{hex}`-style escapes and `\U` are mapped, embedded options `(?i)`, `(?n)`, `(?x)`, `(?q)` and the
 * `***=` / `***:` prefixes are honoured. Differences that remain: `\w`/`\d` classes follow JS-with-Unicode rules
 * rather than the database locale, back-references to groups inside lookarounds and a few error cases behave as
 * in JS, and error texts are JS's.
 */

export class PatternError extends Error {
  override readonly name = 'PatternError';
}

// Characters to escape to be literal outside a class, and inside one (u-mode rejects other identity escapes).
const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/;
const CLASS_SPECIAL = /[\\\]\[^-]/;
const literalChar = (ch: string, inClass: boolean): string =>
  (inClass ? CLASS_SPECIAL : REGEX_SPECIAL).test(ch) ? `\\${ch}` : ch;

/** @throws PatternError for a pattern ending in the escape character. */
export function likeToRegExp(pattern: string, caseInsensitive: boolean): RegExp {
  let src = '^';
  for (let i = 0; i < pattern.length; i++) {
    const cp = pattern.codePointAt(i)!;
    let ch = String.fromCodePoint(cp);
    if (cp > 0xffff) i++;
    if (ch === '\\') {
      if (i + 1 >= pattern.length) throw new PatternError('LIKE pattern must not end with escape character');
      const next = pattern.codePointAt(i + 1)!;
      ch = String.fromCodePoint(next);
      i += next > 0xffff ? 2 : 1;
      src += literalChar(ch, false);
    } else if (ch === '%') src += '[\\s\\S]*';
    else if (ch === '_') src += '[\\s\\S]';
    else src += literalChar(ch, false);
  }
  return new RegExp(`${src}$`, caseInsensitive ? 'iu' : 'u');
}

const CLASSES: Record<string, string> = {
  alpha: '\\p{L}',
  upper: '\\p{Lu}',
  lower: '\\p{Ll}',
  digit: '0-9',
  alnum: '\\p{L}\\p{Nd}',
  xdigit: '0-9A-Fa-f',
  space: '\\s',
  blank: ' \\t',
  punct: '\\p{P}\\p{S}',
  cntrl: '\\p{Cc}',
  print: '\\P{C}',
  graph: '\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}',
  word: '\\p{L}\\p{Nd}_',
};

const SIMPLE_ESCAPES: Record<string, string> = {
  d: '[0-9]',
  D: '[^0-9]',
  s: '\\s',
  S: '\\S',
  w: '[\\p{L}\\p{Nd}_]',
  W: '[^\\p{L}\\p{Nd}_]',
  m: '\\b(?=[\\p{L}\\p{Nd}_])',
  M: '\\b(?<=[\\p{L}\\p{Nd}_])',
  y: '\\b',
  Y: '\\B',
  A: '(?<![\\s\\S])',
  Z: '(?![\\s\\S])',
  B: '\\\\',
  a: '\\x07',
  b: '\\x08',
  e: '\\x1b',
  f: '\\f',
  n: '\\n',
  r: '\\r',
  t: '\\t',
  v: '\\v',
};
const CLASS_ESCAPES: Record<string, string> = { d: '0-9', s: '\\s', w: '\\p{L}\\p{Nd}_', B: '\\\\' };

/** @throws PatternError when the pattern is not a valid regex (or uses syntax we do not translate). */
export function posixToRegExp(pattern: string, caseInsensitive: boolean): RegExp {
  let src = pattern;
  let literal = false;
  let newlineSensitive = false;
  let expanded = false;
  let icase = caseInsensitive;
  if (src.startsWith('***=')) {
    literal = true;
    src = src.slice(4);
  } else if (src.startsWith('***:')) src = src.slice(4);
  const opts = literal ? null : /^\(\?([bceimnpqstwx]+)\)/.exec(src);
  if (opts) {
    src = src.slice(opts[0].length);
    for (const o of opts[1]!) {
      if (o === 'i') icase = true;
      else if (o === 'c') icase = false;
      else if (o === 'n' || o === 'm' || o === 'p' || o === 'w') newlineSensitive = true;
      else if (o === 's') newlineSensitive = false;
      else if (o === 'q') literal = true;
      else if (o === 'x') expanded = true;
      else if (o === 'b' || o === 'e') throw new PatternError(`unsupported regex option (?${o})`);
    }
  }
  const flags = `${icase ? 'i' : ''}${newlineSensitive ? 'm' : 's'}u`;
  const body = literal ? escapeAll(src) : translate(src, newlineSensitive, expanded);
  try {
    return new RegExp(body, flags);
  } catch (err) {
    throw new PatternError(err instanceof Error ? err.message : String(err));
  }
}

function escapeAll(s: string, inClass = false): string {
  return Array.from(s, (ch) => literalChar(ch, inClass)).join('');
}

function translate(src: string, newlineSensitive: boolean, expanded: boolean): string {
  let out = '';
  for (let i = 0; i < src.length; i++) {
    const ch = src[i]!;
    if (expanded && /\s/.test(ch)) continue;
    if (expanded && ch === '#') {
      while (i < src.length && src[i] !== '\n') i++;
      continue;
    }
    if (ch === '\\') {
      const [text, used] = escape(src, i + 1, false);
      out += text;
      i += used;
    } else if (ch === '[') {
      const [text, end] = bracket(src, i, newlineSensitive);
      out += text;
      i = end;
    } else if (ch === '{') {
      // A `{` not followed by a digit is an ordinary character in an ARE; otherwise it must be a valid bound.
      if (!/[0-9]/.test(src[i + 1] ?? '')) {
        out += '\\{';
        continue;
      }
      const bound = /^\{\d+(,\d*)?\}/.exec(src.slice(i));
      if (!bound) throw new PatternError('invalid repetition count(s)');
      out += bound[0];
      i += bound[0].length - 1;
    } else if (ch === '}' || ch === ']' || ch === '/') out += `\\${ch}`;
    else out += ch;
  }
  return out;
}

// Translates the escape starting at src[at]; returns the JS text and how many characters it consumed.
function escape(src: string, at: number, inClass: boolean): [string, number] {
  const c = src[at];
  if (c === undefined) throw new PatternError('invalid escape \\ sequence');
  const table = inClass ? CLASS_ESCAPES : SIMPLE_ESCAPES;
  if (table[c] !== undefined) return [table[c]!, 1];
  if (inClass && SIMPLE_ESCAPES[c] !== undefined && /[afnrtve]/.test(c)) return [SIMPLE_ESCAPES[c]!, 1];
  if (c === 'u' || c === 'U' || c === 'x') {
    const max = c === 'u' ? 4 : 8;
    const hex = /^[0-9A-Fa-f]+/.exec(src.slice(at + 1, at + 1 + max))?.[0] ?? '';
    if (hex === '') throw new PatternError('invalid escape \\ sequence');
    return [`\\u{${hex}}`, 1 + hex.length];
  }
  if (c === 'c' && at + 1 < src.length) return [`\\c${src[at + 1]}`, 2];
  if (c === '0') {
    const oct = /^[0-7]{0,2}/.exec(src.slice(at + 1))![0];
    return [`\\u{${parseInt(`0${oct}`, 8).toString(16)}}`, 1 + oct.length];
  }
  if (/[1-9]/.test(c) && !inClass) return [`\\${c}`, 1];
  if (/[A-Za-z0-9]/.test(c)) throw new PatternError(`invalid escape \\${c} sequence`);
  return [literalChar(c, inClass), 1];
}

// A bracket expression from src[start] === '['; returns its JS text and the index of its closing ']'.
function bracket(src: string, start: number, newlineSensitive: boolean): [string, number] {
  let i = start + 1;
  let out = '[';
  if (src[i] === '^') {
    out += '^';
    i++;
  }
  const boundary = /^\[\[:([<>]):\]\]/.exec(src.slice(start));
  if (boundary) return [boundary[1] === '<' ? SIMPLE_ESCAPES.m! : SIMPLE_ESCAPES.M!, start + boundary[0].length - 1];
  let first = true;
  for (; i < src.length; i++) {
    const ch = src[i]!;
    if (ch === ']' && !first) {
      // In newline-sensitive mode a negated class does not match newline, as in Postgres.
      if (out.startsWith('[^') && newlineSensitive) out += '\\n';
      return [`${out}]`, i];
    }
    first = false;
    if (ch === '[' && (src[i + 1] === ':' || src[i + 1] === '.' || src[i + 1] === '=')) {
      const kind = src[i + 1]!;
      const close = src.indexOf(`${kind}]`, i + 2);
      if (close < 0) throw new PatternError('brackets [] not balanced');
      const name = src.slice(i + 2, close);
      if (kind === ':') {
        const cls = CLASSES[name];
        if (cls === undefined) throw new PatternError(`invalid character class ${name}`);
        out += cls;
      } else out += escapeAll(name, true);
      i = close + 1;
    } else if (ch === '\\') {
      const [text, used] = escape(src, i + 1, true);
      out += text;
      i += used;
    } else if ('[]/{}|()'.includes(ch)) {
      out += `\\${ch}`;
    } else out += ch;
  }
  throw new PatternError('brackets [] not balanced');
}
