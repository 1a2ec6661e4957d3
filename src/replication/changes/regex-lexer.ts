/**
 * The lexer half of regex.ts: Postgres' ARE syntax read into tokens that carry their RE2 spelling. It follows
 * Postgres' own lexer (src/backend/regex/regc_lex.c) for what is valid and which error a bad pattern gets, and
 * refuses the constructs RE2 has no linear-time equivalent for (back references, lookahead constraints) rather than
 * evaluate them differently.
 *
 * Character classes follow a UTF-8 database locale: `[[:alpha:]]` is Unicode letters, `\w` letters, decimal digits
 * and `_` (also the word characters of `\m`, `\M`, `\y`, `\Y`), `\s` Unicode white space, `\d` ASCII digits.
 */
import { PatternError } from './pattern.js';

/** Postgres' regerror() texts (`invalid regular expression: <text>`). */
export const PG = {
  EPAREN: 'parentheses () not balanced',
  EBRACK: 'brackets [] not balanced',
  EBRACE: 'braces {} not balanced',
  BADBR: 'invalid repetition count(s)',
  BADRPT: 'quantifier operand invalid',
  EESCAPE: 'invalid escape \\ sequence',
  ECTYPE: 'invalid character class',
  ERANGE: 'invalid character range',
  ESUBREG: 'invalid backreference number',
  ECOLLATE: 'invalid collating element',
  BADOPT: 'invalid embedded option',
  ETOOBIG: 'regular expression is too complex',
} as const;

export type WordConstraint = 'm' | 'M' | 'y' | 'Y';

export type Token =
  /** One literal character (a code point; above U+10FFFF it can never match). */
  | { kind: 'char'; cp: number }
  /** Anything else that consumes exactly one character, in RE2 syntax. */
  | { kind: 'atom'; re2: string }
  /** `^`, `$`, `\A`, `\Z`; `beforeEnd`: it holds only where the next character is a newline or the end. */
  | { kind: 'anchor'; re2: string; beforeEnd: boolean }
  | { kind: 'word'; which: WordConstraint }
  | { kind: 'open'; group: 'capture' | 'plain' | 'behind' | 'notBehind' }
  | { kind: 'close'; constraint: boolean }
  | { kind: 'alt' }
  /** A repetition of the token before it: `*` is min 0, max null. */
  | { kind: 'quant'; min: number; max: number | null; lazy: boolean };

const WORD = '\\p{L}\\p{Nd}_';
// Unicode's White_Space property (what Postgres' builtin and ICU locales call space; glibc's differs slightly).
const SPACE = '\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}';
export const WORD_CLASS = WORD;

/** `[[:name:]]` as the inside of an RE2 class. */
const NAMED_CLASSES: Record<string, string> = {
  alpha: '\\p{L}',
  upper: '\\p{Lu}',
  lower: '\\p{Ll}',
  digit: '0-9',
  alnum: '\\p{L}\\p{Nd}',
  xdigit: '0-9A-Fa-f',
  space: SPACE,
  blank: ' \\t',
  punct: '\\p{P}\\p{S}',
  cntrl: '\\p{Cc}',
  print: '\\P{C}',
  graph: '\\p{L}\\p{M}\\p{N}\\p{P}\\p{S}',
  word: WORD,
};
/** `\d`, `\s`, `\w` as the inside of an RE2 class; the capitals are their complements. */
const SHORTHANDS: Record<string, string> = { d: '0-9', s: SPACE, w: WORD };

const CHAR_ESCAPES: Record<string, number> = { a: 7, b: 8, B: 0x5c, e: 0x1b, f: 0xc, n: 0xa, r: 0xd, t: 9, v: 0xb };
/** Postgres accepts character values up to this; those above U+10FFFF are valid but match nothing. */
const CHR_MAX = 0x7ffffffe;
const DUPMAX = 255;

/** A repetition in RE2 syntax. */
export function re2Quantifier(min: number, max: number | null, lazy: boolean): string {
  const q = max === null ? (min === 0 ? '*' : min === 1 ? '+' : `{${min},}`) : min === 0 && max === 1 ? '?' : min === max ? `{${min}}` : `{${min},${max}}`;
  return q + (lazy ? '?' : '');
}

/** A literal character in RE2 syntax. */
export function re2Char(cp: number): string {
  if (cp > 0x10ffff) return NEVER;
  return /^[A-Za-z0-9]$/.test(String.fromCodePoint(cp)) ? String.fromCodePoint(cp) : `\\x{${cp.toString(16)}}`;
}
export const NEVER = '[^\\x{0}-\\x{10FFFF}]';
const ANY = '[\\x{0}-\\x{10FFFF}]';

export interface LexOptions {
  expanded: boolean;
  /** `.` and `[^...]` do not match a newline (Postgres' REG_NLSTOP). */
  newlineStop: boolean;
}

type Escape = { kind: 'char'; cp: number } | { kind: 'class'; body: string; negated: boolean } | Token;

/** Reads an ARE (after its `***:` and embedded-options prefix) into tokens. @throws PatternError */
export function lexAre(src: string, opts: LexOptions): Token[] {
  return new AreLexer(src, opts).run();
}

class AreLexer {
  private pos = 0;
  private captures = 0;
  private readonly tokens: Token[] = [];
  /** One entry per open group: whether it is a lookbehind constraint. */
  private readonly open: boolean[] = [];

  constructor(
    private readonly src: string,
    private readonly opts: LexOptions,
  ) {}

  run(): Token[] {
    const { src } = this;
    for (;;) {
      if (this.opts.expanded) this.skipSpace();
      if (this.pos >= src.length) break;
      const c = this.codePoint();
      const ch = String.fromCodePoint(c);
      if (ch === '|') this.tokens.push({ kind: 'alt' });
      else if (ch === '*' || ch === '+' || ch === '?') this.quantifier(ch === '+' ? 1 : 0, ch === '?' ? 1 : null);
      else if (ch === '{' && this.boundFollows()) this.bound();
      else if (ch === '(') this.group();
      else if (ch === ')') {
        if (this.open.length === 0) throw new PatternError(PG.EPAREN);
        this.tokens.push({ kind: 'close', constraint: this.open.pop()! });
      } else if (ch === '[') this.bracketOrWordConstraint();
      else if (ch === '.') this.tokens.push({ kind: 'atom', re2: '.' });
      else if (ch === '^') this.tokens.push({ kind: 'anchor', re2: '^', beforeEnd: false });
      else if (ch === '$') this.tokens.push({ kind: 'anchor', re2: '$', beforeEnd: true });
      else if (ch === '\\') {
        if (this.pos >= src.length) throw new PatternError(PG.EESCAPE);
        const e = this.escape(false);
        if (e.kind === 'class') this.tokens.push({ kind: 'atom', re2: `[${e.negated ? '^' : ''}${e.body}]` });
        else this.tokens.push(e);
      } else this.tokens.push({ kind: 'char', cp: c });
    }
    if (this.open.length > 0) throw new PatternError(PG.EPAREN);
    return this.tokens;
  }

  private codePoint(): number {
    const c = this.src.codePointAt(this.pos)!;
    this.pos += c > 0xffff ? 2 : 1;
    return c;
  }

  private peek(offset = 0): string {
    return this.src[this.pos + offset] ?? '';
  }

  private skipSpace(): void {
    for (;;) {
      while (/\s/.test(this.peek())) this.pos++;
      if (this.peek() !== '#') return;
      while (this.pos < this.src.length && this.peek() !== '\n') this.pos++;
    }
  }

  // A quantifier needs something to repeat: not the start of a branch, another quantifier or a constraint.
  private checkOperand(): void {
    const last = this.tokens[this.tokens.length - 1];
    const bad =
      !last ||
      last.kind === 'open' ||
      last.kind === 'alt' ||
      last.kind === 'quant' ||
      last.kind === 'anchor' ||
      last.kind === 'word' ||
      (last.kind === 'close' && last.constraint);
    if (bad) throw new PatternError(PG.BADRPT);
  }

  private quantifier(min: number, max: number | null): void {
    this.checkOperand();
    const lazy = this.peek() === '?';
    if (lazy) this.pos++;
    this.tokens.push({ kind: 'quant', min, max, lazy });
  }

  // `{` starts a bound only when a digit follows (after white space in expanded syntax); otherwise it is literal.
  private boundFollows(): boolean {
    if (this.opts.expanded) this.skipSpace();
    return /[0-9]/.test(this.peek());
  }

  private bound(): void {
    this.checkOperand();
    const number = (): number => {
      if (this.opts.expanded) this.skipSpace();
      const digits = /^[0-9]+/.exec(this.src.slice(this.pos))?.[0] ?? '';
      this.pos += digits.length;
      const n = Number(digits);
      if (n > DUPMAX) throw new PatternError(PG.BADBR);
      return n;
    };
    const min = number();
    let max: number | null = min;
    if (this.opts.expanded) this.skipSpace();
    if (this.peek() === ',') {
      this.pos++;
      if (this.opts.expanded) this.skipSpace();
      max = /[0-9]/.test(this.peek()) ? number() : null;
    }
    if (this.opts.expanded) this.skipSpace();
    if (this.pos >= this.src.length) throw new PatternError(PG.EBRACE);
    if (this.peek() !== '}') throw new PatternError(PG.BADBR);
    this.pos++;
    if (max !== null && min > max) throw new PatternError(PG.BADBR);
    const lazy = this.peek() === '?';
    if (lazy) this.pos++;
    this.tokens.push({ kind: 'quant', min, max, lazy });
  }

  private group(): void {
    if (this.peek() !== '?') {
      this.captures++;
      this.open.push(false);
      this.tokens.push({ kind: 'open', group: 'capture' });
      return;
    }
    const kind = this.src.slice(this.pos + 1, this.pos + 3);
    if (kind.startsWith(':')) {
      this.pos += 2;
      this.open.push(false);
      this.tokens.push({ kind: 'open', group: 'plain' });
    } else if (kind.startsWith('#')) {
      const end = this.src.indexOf(')', this.pos);
      this.pos = end < 0 ? this.src.length : end + 1;
    } else if (kind.startsWith('=') || kind.startsWith('!')) {
      throw new PatternError('lookahead constraints (?= and (?! are not supported');
    } else if (kind === '<=' || kind === '<!') {
      this.pos += 3;
      this.open.push(true);
      this.tokens.push({ kind: 'open', group: kind === '<=' ? 'behind' : 'notBehind' });
    } else throw new PatternError(PG.BADRPT);
  }

  private bracketOrWordConstraint(): void {
    const wordEdge = /^\[:([<>]):\]\]/.exec(this.src.slice(this.pos));
    if (wordEdge) {
      this.pos += wordEdge[0].length;
      this.tokens.push({ kind: 'word', which: wordEdge[1] === '<' ? 'm' : 'M' });
      return;
    }
    this.tokens.push({ kind: 'atom', re2: this.bracket() });
  }

  /** A bracket expression after its `[`, as RE2 syntax consuming one character. */
  private bracket(): string {
    const negated = this.peek() === '^';
    if (negated) this.pos++;
    let body = '';
    const complements: string[] = [];
    let first = true;
    for (;;) {
      if (this.pos >= this.src.length) throw new PatternError(PG.EBRACK);
      if (this.peek() === ']' && !first) {
        this.pos++;
        break;
      }
      // A `-` that is neither first nor last, and not between two range ends, is a range with no start.
      if (!first && this.rangeFollows()) throw new PatternError(PG.ERANGE);
      const element = this.bracketElement();
      first = false;
      if (element.kind === 'class') {
        if (element.negated) complements.push(element.body);
        else body += element.body;
        if (this.rangeFollows()) throw new PatternError(PG.ERANGE);
        continue;
      }
      if (!this.rangeFollows()) {
        // A character above U+10FFFF is valid but matches nothing.
        if (element.cp <= 0x10ffff) body += re2Char(element.cp);
        continue;
      }
      this.pos++;
      if (this.pos >= this.src.length) throw new PatternError(PG.EBRACK);
      const end = this.bracketElement();
      if (end.kind !== 'char' || end.cp < element.cp) throw new PatternError(PG.ERANGE);
      if (element.cp <= 0x10ffff) body += `${re2Char(element.cp)}-${re2Char(Math.min(end.cp, 0x10ffff))}`;
    }
    if (complements.length === 0) {
      if (!negated) return body === '' ? NEVER : `[${body}]`;
      if (body === '' && !this.opts.newlineStop) return ANY;
      return `[^${body}${this.opts.newlineStop ? '\\n' : ''}]`;
    }
    // [a\D] is "a or a non-digit"; its negation would need a class intersection, which RE2 does not have.
    if (negated) throw new PatternError('\\D, \\S and \\W are not supported inside a negated bracket expression');
    return `(?:${[...(body === '' ? [] : [`[${body}]`]), ...complements.map((c) => `[^${c}]`)].join('|')})`;
  }

  // Postgres reads `-` as a range operator unless it is first in the brackets or right before the closing `]`.
  private rangeFollows(): boolean {
    return this.peek() === '-' && this.peek(1) !== ']' && this.pos + 1 < this.src.length;
  }

  private bracketElement(): { kind: 'char'; cp: number } | { kind: 'class'; body: string; negated: boolean } {
    const c = this.codePoint();
    if (c === 0x5b && /^[.=:]$/.test(this.peek())) {
      const delimiter = this.peek();
      const close = this.src.indexOf(`${delimiter}]`, this.pos + 1);
      if (close < 0) throw new PatternError(PG.EBRACK);
      const name = this.src.slice(this.pos + 1, close);
      this.pos = close + 2;
      if (delimiter === ':') {
        const body = NAMED_CLASSES[name];
        if (body === undefined) throw new PatternError(PG.ECTYPE);
        return { kind: 'class', body, negated: false };
      }
      const chars = Array.from(name);
      if (chars.length === 0) throw new PatternError(PG.ECOLLATE);
      // Postgres also knows collating-element names ([.space.]); only single characters are read here.
      if (chars.length > 1) throw new PatternError('multi-character collating elements such as [.space.] are not supported');
      return { kind: 'char', cp: chars[0]!.codePointAt(0)! };
    }
    if (c === 0x5c) {
      if (this.pos >= this.src.length) throw new PatternError(PG.EESCAPE);
      const e = this.escape(true);
      if (e.kind === 'char' || e.kind === 'class') return e;
      throw new PatternError(PG.EESCAPE);
    }
    return { kind: 'char', cp: c };
  }

  /** The escape after a backslash (Postgres' lexescape): a character, a class shorthand, or a constraint. */
  private escape(inBracket: boolean): Escape {
    const c = this.codePoint();
    const ch = String.fromCodePoint(c);
    if (!/^[A-Za-z0-9]$/.test(ch)) return { kind: 'char', cp: c };
    if (CHAR_ESCAPES[ch] !== undefined) return { kind: 'char', cp: CHAR_ESCAPES[ch]! };
    const lower = ch.toLowerCase();
    if (SHORTHANDS[lower] !== undefined && 'dswDSW'.includes(ch)) {
      return { kind: 'class', body: SHORTHANDS[lower]!, negated: ch !== lower };
    }
    switch (ch) {
      case 'A':
        return { kind: 'anchor', re2: '\\A', beforeEnd: false };
      case 'Z':
        return { kind: 'anchor', re2: '\\z', beforeEnd: true };
      case 'm':
      case 'M':
      case 'y':
      case 'Y':
        return { kind: 'word', which: ch };
      case 'c':
        if (this.pos >= this.src.length) throw new PatternError(PG.EESCAPE);
        return { kind: 'char', cp: this.codePoint() & 0x1f };
      case 'u':
      case 'U':
      case 'x': {
        const [min, max] = ch === 'u' ? [4, 4] : ch === 'U' ? [8, 8] : [1, 255];
        const digits = /^[0-9A-Fa-f]*/.exec(this.src.slice(this.pos, this.pos + max))![0];
        if (digits.length < min) throw new PatternError(PG.EESCAPE);
        this.pos += digits.length;
        const value = parseInt(digits, 16);
        if (!(value <= CHR_MAX)) throw new PatternError(PG.EESCAPE);
        return { kind: 'char', cp: value };
      }
      default:
        break;
    }
    if (/[1-9]/.test(ch)) {
      // One digit, or a number no larger than the capture groups so far, is a back reference; otherwise octal.
      const digits = ch + (/^[0-9]{0,254}/.exec(this.src.slice(this.pos))![0]);
      const value = Number(digits);
      if (digits.length === 1 || value <= this.captures) {
        if (inBracket) throw new PatternError(PG.EESCAPE);
        if (value > this.captures) throw new PatternError(PG.ESUBREG);
        throw new PatternError('back references are not supported');
      }
      return { kind: 'char', cp: this.octal(ch) };
    }
    if (ch === '0') return { kind: 'char', cp: this.octal(ch) };
    throw new PatternError(PG.EESCAPE);
  }

  // Up to three octal digits starting with `first` (already read); a value above 0xFF gives back the last digit.
  private octal(first: string): number {
    if (!/[0-7]/.test(first)) throw new PatternError(PG.EESCAPE);
    const more = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))![0];
    let digits = first + more;
    if (parseInt(digits, 8) > 0xff) digits = digits.slice(0, -1);
    this.pos += digits.length - 1;
    return parseInt(digits, 8);
  }
}
