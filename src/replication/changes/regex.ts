/**
 * POSIX regular expressions (`~`, `~*`: Postgres' ARE flavour) translated to RE2 syntax and run by re2js, whose
 * automata take time linear in the subject whatever the pattern: no pattern can stall the event loop the way a
 * backtracking RegExp can (`(a+)+$`).
 *
 * Whether a match exists does not depend on POSIX's leftmost-longest rule, so only syntax is translated (see
 * regex-lexer.ts). The prefixes `***=` and `***:` and the leading embedded options `(?bceimnpqstwx)` are honoured,
 * except `b` and `e` (BRE/ERE flavours), which are refused. RE2 cannot express back references and lookahead
 * constraints; patterns with them are refused at subscription instead of being evaluated some other way.
 *
 * Word constraints (`\m`, `\M`, `\y`, `\Y`, `[[:<:]]`, `[[:>:]]`) depend on the characters on both sides. The side
 * before is a lookbehind (re2js evaluates lookbehinds in linear time); RE2 has no lookahead for the side after, so
 * that side must be settled by what follows the constraint in the pattern: a literal character; a bracket
 * expression, `.` or class escape (checked by a lookbehind once consumed); `$` or `\Z`; or the end of the pattern
 * (where consuming one more character cannot change whether a match exists). Before anything else (a group, say)
 * the pattern is refused. Case-insensitive matching uses Unicode simple case folding, which also equates a few
 * letters Postgres' towlower/towupper keep apart (`ſ` and `s`, `ς` and `σ`).
 *
 * Bounds: the RE2 program may have MAX_REGEX_PROGRAM_SIZE instructions (the work per subject character grows with
 * it), and the lazy DFA REGEX_DFA_MEMORY_BYTES of memory.
 */
import { RE2JS, RE2JSException, RE2Set } from 're2js';
import { lexAre, NEVER, PG, re2Char, re2Quantifier, WORD_CLASS, type Token, type WordConstraint } from './regex-lexer.js';
import { MAX_REGEX_PROGRAM_SIZE, PatternError, REGEX_DFA_MEMORY_BYTES } from './pattern.js';

export interface RegexMatcher {
  test(subject: string): boolean;
}

/** @throws PatternError when Postgres would reject the pattern, or when it uses what we cannot run in linear time. */
export function compileRegex(pattern: string, caseInsensitive: boolean): RegexMatcher {
  const { re2, flags } = translateRegex(pattern, caseInsensitive);
  let size: number;
  try {
    size = RE2JS.compile(re2, flags).programSize();
  } catch (err) {
    throw re2Error(err);
  }
  if (size > MAX_REGEX_PROGRAM_SIZE) throw new PatternError(PG.ETOOBIG);
  // A set of one pattern: unlike RE2JS.compile, RE2Set takes a bound on the memory of its lazy DFA.
  const set = new RE2Set(RE2Set.UNANCHORED, flags, REGEX_DFA_MEMORY_BYTES);
  try {
    set.add(re2);
    set.compile();
  } catch (err) {
    throw re2Error(err);
  }
  return { test: (subject) => set.match(subject).length > 0 };
}

/** The RE2 pattern and re2js flags equivalent to a Postgres ARE. @throws PatternError */
function translateRegex(pattern: string, caseInsensitive: boolean): { re2: string; flags: number } {
  let src = pattern;
  let icase = caseInsensitive;
  let newlineStop = false;
  let newlineAnchors = false;
  let expanded = false;
  let literal = false;
  if (src.startsWith('***')) {
    const kind = src[3];
    if (kind === '=') literal = true;
    else if (kind !== ':') throw new PatternError(kind === '?' ? 'invalid regexp (reg version 0.8)' : PG.BADRPT);
    src = src.slice(4);
  }
  // Embedded options: `(?` and letters, only at the start of an ARE.
  if (!literal && /^\(\?[A-Za-z]/.test(src)) {
    let i = 2;
    for (; i < src.length && /[A-Za-z]/.test(src[i]!); i++) {
      const o = src[i]!;
      if (o === 'i') icase = true;
      else if (o === 'c') icase = false;
      else if (o === 'n' || o === 'm') newlineStop = newlineAnchors = true;
      else if (o === 'p') [newlineStop, newlineAnchors] = [true, false];
      else if (o === 'w') [newlineStop, newlineAnchors] = [false, true];
      else if (o === 's') newlineStop = newlineAnchors = false;
      else if (o === 'x') expanded = true;
      else if (o === 't') expanded = false;
      else if (o === 'q') literal = true;
      else if (o === 'b' || o === 'e') throw new PatternError(`embedded option ${o} (basic and extended REs) is not supported`);
      else throw new PatternError(PG.BADOPT);
    }
    if (src[i] !== ')') throw new PatternError(PG.BADOPT);
    src = src.slice(i + 1);
    if (literal) newlineStop = newlineAnchors = false;
  }
  const tokens = literal ? Array.from(src, (ch): Token => ({ kind: 'char', cp: ch.codePointAt(0)! })) : lexAre(src, { expanded, newlineStop });
  const re2 = emit(tokens);
  let flags = 0;
  if (icase) flags |= RE2JS.CASE_INSENSITIVE;
  if (!newlineStop) flags |= RE2JS.DOTALL;
  if (newlineAnchors) flags |= RE2JS.MULTILINE;
  if (re2.includes('(?<')) flags |= RE2JS.LOOKBEHINDS;
  return { re2, flags };
}

// The pieces of a word constraint. Word-ness does not depend on case, so these ignore the case flag.
const WORD_CHAR = `(?-i:[${WORD_CLASS}])`;
const NON_WORD_OR_END = `(?:(?-i:[^${WORD_CLASS}])|\\z)`;
const START_OR_NON_WORD = `(?:\\A|(?-i:[^${WORD_CLASS}]))`;
const AFTER_WORD = `(?<=${WORD_CHAR})`;
const NOT_AFTER_WORD = `(?<!${WORD_CHAR})`;

/** Each constraint as the (character before is a word character, character after is one) pairs it accepts. */
const SIDES: Record<WordConstraint, ReadonlyArray<readonly [before: boolean, after: boolean]>> = {
  m: [[false, true]],
  M: [[true, false]],
  y: [
    [false, true],
    [true, false],
  ],
  Y: [
    [true, true],
    [false, false],
  ],
};
const before = (word: boolean): string => (word ? AFTER_WORD : NOT_AFTER_WORD);
const either = (alternatives: string[]): string =>
  alternatives.length === 0 ? NEVER : alternatives.length === 1 ? alternatives[0]! : `(?:${alternatives.join('|')})`;

const isWordCharacter = (cp: number): boolean => cp <= 0x10ffff && /^[\p{L}\p{Nd}_]$/u.test(String.fromCodePoint(cp));

function emit(tokens: readonly Token[]): string {
  let out = '';
  let depth = 0;
  let lookbehinds = 0;
  const groups: boolean[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    switch (t.kind) {
      case 'char':
        out += re2Char(t.cp);
        break;
      case 'atom':
      case 'anchor':
        out += t.re2;
        break;
      case 'quant':
        out += re2Quantifier(t.min, t.max, t.lazy);
        break;
      case 'alt':
        out += '|';
        break;
      case 'open': {
        const behind = t.group === 'behind' || t.group === 'notBehind';
        groups.push(behind);
        depth++;
        if (behind) lookbehinds++;
        // Postgres treats parentheses inside constraints as non-capturing; re2js requires it.
        out += t.group === 'behind' ? '(?<=' : t.group === 'notBehind' ? '(?<!' : t.group === 'capture' && lookbehinds === 0 ? '(' : '(?:';
        break;
      }
      case 'close':
        if (groups.pop()) lookbehinds--;
        depth--;
        out += ')';
        break;
      case 'word': {
        if (lookbehinds > 0) throw new PatternError('word constraints inside lookbehind constraints are not supported');
        const [text, consumed] = wordConstraint(t.which, tokens, i, depth);
        out += text;
        i += consumed;
        break;
      }
    }
  }
  return out;
}

/**
 * A word constraint at tokens[i] in RE2 syntax, and how many of the following tokens that text includes (see the
 * header). Where the pattern settles a side (a literal character, `^`, the start or end of the pattern) no
 * lookbehind is needed, which keeps the pattern on RE2's fast DFA.
 */
function wordConstraint(which: WordConstraint, tokens: readonly Token[], i: number, depth: number): [string, number] {
  const prev = tokens[i - 1];
  const atStart = prev === undefined || (prev.kind === 'alt' && depth === 0);
  // What the character before is, when the pattern says: a literal, or none at all after ^ or \A.
  const known = prev?.kind === 'char' ? isWordCharacter(prev.cp) : prev?.kind === 'anchor' && !prev.beforeEnd ? false : null;
  const sides = SIDES[which].filter(([b]) => known === null || b === known);
  // At the start of the pattern the constraint may consume the character before it: what precedes a match is free.
  const beforeSide = (word: boolean): string => (known !== null ? '' : atStart ? (word ? WORD_CHAR : START_OR_NON_WORD) : before(word));

  const next = tokens[i + 1];
  const after = tokens[i + 2];
  const repeat = after?.kind === 'quant' ? after : null;
  if ((next?.kind === 'char' || next?.kind === 'atom') && !(repeat && repeat.min === 0)) {
    if (next.kind === 'char') {
      const word = isWordCharacter(next.cp);
      return [either(sides.filter(([, a]) => a === word).map(([b]) => beforeSide(b))), 0];
    }
    // One character from a class: check it with a lookbehind once consumed, then repeat the rest.
    const first = either(sides.map(([b, a]) => `${beforeSide(b)}${next.re2}${before(a)}`));
    if (!repeat) return [first, 1];
    const rest = repeat.max === 1 ? '' : re2Quantifier(repeat.min - 1, repeat.max === null ? null : repeat.max - 1, repeat.lazy);
    return [`${first}${rest === '' ? '' : `${next.re2}${rest}`}`, 2];
  }
  if (next?.kind === 'anchor' && next.beforeEnd) return [either(sides.filter(([, a]) => !a).map(([b]) => beforeSide(b))), 0];
  // At the end of the pattern the constraint may consume the character after it: what follows a match is free.
  if (next === undefined || (next.kind === 'alt' && depth === 0)) {
    return [either(sides.map(([b, a]) => `${beforeSide(b)}${a ? WORD_CHAR : NON_WORD_OR_END}`)), 0];
  }
  throw new PatternError(
    '\\m, \\M, \\y, \\Y, [[:<:]] and [[:>:]] are supported only before a literal character, a bracket expression, ., $ or \\Z, or at the end of the pattern',
  );
}

// re2js rejects little the lexer let through: repetitions RE2 finds too large, mostly.
function re2Error(err: unknown): PatternError {
  if (!(err instanceof RE2JSException)) throw err;
  const message = err.message;
  if (/too large|invalid repeat count/.test(message)) return new PatternError(PG.ETOOBIG);
  return new PatternError(message);
}
