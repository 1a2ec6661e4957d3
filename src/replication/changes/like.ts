/**
 * LIKE and ILIKE as Postgres evaluates them, in time linear in the subject whatever the pattern.
 *
 * A pattern is a row of tokens (a literal character, or `_` for any one character) with `%` runs between them. It
 * is simulated as an automaton whose state i means "the first i tokens matched"; a `%` before token i+1 lets state
 * i stay on any character. All states advance together, one character at a time, as bits of a bitset (shift-and):
 * per character the work is one mask lookup and a few word operations per 32 tokens, with no backtracking.
 *
 * `\` escapes the next character; a pattern ending in `\` is an error (as in Postgres). `_` is one character (one
 * code point; one byte for bytea, whose values arrive here as latin1 strings). ILIKE is Postgres' `lower(subject)
 * LIKE lower(pattern)`, with lower() mapping each character on its own as a UTF-8 database does.
 */
import { PatternError } from './pattern.js';

export interface LikeMatcher {
  test(subject: string): boolean;
}

const BACKSLASH = 0x5c;
const PERCENT = 0x25;
const UNDERSCORE = 0x5f;
const ANY = -1;

/** The lowercase of one character as Postgres' lower() gives it: the first code point of its lowercase mapping. */
export function lowerCodePoint(cp: number): number {
  if (cp < 0x80) return cp >= 0x41 && cp <= 0x5a ? cp + 0x20 : cp;
  // Only U+0130 lowercases to two code points ("i" + combining dot); its simple mapping is the first one.
  return String.fromCodePoint(cp).toLowerCase().codePointAt(0)!;
}

/** @throws PatternError for a pattern ending in the escape character. */
export function compileLike(pattern: string, caseInsensitive: boolean): LikeMatcher {
  const tokens: number[] = [];
  // loops[i]: a `%` stands between token i and token i+1, so state i absorbs any character.
  const loops: boolean[] = [false];
  const lower = caseInsensitive ? lowerCodePoint : (cp: number) => cp;
  for (let i = 0; i < pattern.length; ) {
    let cp = pattern.codePointAt(i)!;
    i += cp > 0xffff ? 2 : 1;
    if (cp === BACKSLASH) {
      if (i >= pattern.length) throw new PatternError('LIKE pattern must not end with escape character');
      cp = pattern.codePointAt(i)!;
      i += cp > 0xffff ? 2 : 1;
      tokens.push(lower(cp));
      loops.push(false);
    } else if (cp === PERCENT) {
      loops[tokens.length] = true;
    } else {
      tokens.push(cp === UNDERSCORE ? ANY : lower(cp));
      loops.push(false);
    }
  }
  return new LikeAutomaton(tokens, loops, caseInsensitive ? lowerCodePoint : null);
}

class LikeAutomaton implements LikeMatcher {
  /** 32-bit words per state set: states 0..tokens.length. */
  private readonly words: number;
  private readonly loopMask: Int32Array;
  /** States whose next token is `_`: the mask of a character no literal token names. */
  private readonly anyMask: Int32Array;
  private readonly asciiMasks: Int32Array;
  private readonly otherMasks = new Map<number, Int32Array>();
  private readonly acceptWord: number;
  private readonly acceptBit: number;
  private readonly endsWithPercent: boolean;
  private current: Int32Array;
  private next: Int32Array;

  constructor(
    tokens: readonly number[],
    loops: readonly boolean[],
    private readonly lower: ((cp: number) => number) | null,
  ) {
    const states = tokens.length + 1;
    this.words = Math.ceil(states / 32);
    this.loopMask = new Int32Array(this.words);
    this.anyMask = new Int32Array(this.words);
    loops.forEach((loop, state) => {
      if (loop) this.loopMask[state >> 5] |= 1 << (state & 31);
    });
    tokens.forEach((token, state) => {
      if (token === ANY) this.anyMask[state >> 5] |= 1 << (state & 31);
    });
    this.asciiMasks = new Int32Array(128 * this.words);
    for (let cp = 0; cp < 128; cp++) this.asciiMasks.set(this.anyMask, cp * this.words);
    tokens.forEach((token, state) => {
      if (token === ANY) return;
      if (token < 128) {
        this.asciiMasks[token * this.words + (state >> 5)] |= 1 << (state & 31);
        return;
      }
      let mask = this.otherMasks.get(token);
      if (!mask) this.otherMasks.set(token, (mask = Int32Array.from(this.anyMask)));
      mask[state >> 5] |= 1 << (state & 31);
    });
    this.acceptWord = tokens.length >> 5;
    this.acceptBit = 1 << (tokens.length & 31);
    this.endsWithPercent = loops[tokens.length] === true;
    this.current = new Int32Array(this.words);
    this.next = new Int32Array(this.words);
  }

  test(subject: string): boolean {
    const { words, loopMask, asciiMasks, lower } = this;
    let cur = this.current;
    let nxt = this.next;
    cur.fill(0);
    cur[0] = 1;
    for (let i = 0; i < subject.length; i++) {
      if (this.endsWithPercent && (cur[this.acceptWord]! & this.acceptBit) !== 0) return true;
      let cp = subject.charCodeAt(i);
      if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < subject.length) {
        const low = subject.charCodeAt(i + 1);
        if (low >= 0xdc00 && low <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          i++;
        }
      }
      if (lower) cp = lower(cp);
      let masks: Int32Array;
      let offset = 0;
      if (cp < 128) {
        masks = asciiMasks;
        offset = cp * words;
      } else masks = this.otherMasks.get(cp) ?? this.anyMask;
      // next = (cur & loops) | ((cur & mask) << 1), the shift carrying bit 31 into the next word.
      let carry = 0;
      let alive = 0;
      for (let w = 0; w < words; w++) {
        const c = cur[w]!;
        const moved = c & masks[offset + w]!;
        const n = (c & loopMask[w]!) | (moved << 1) | carry;
        carry = moved >>> 31;
        nxt[w] = n;
        alive |= n;
      }
      if (alive === 0) return false;
      const t = cur;
      cur = nxt;
      nxt = t;
    }
    return (cur[this.acceptWord]! & this.acceptBit) !== 0;
  }
}
