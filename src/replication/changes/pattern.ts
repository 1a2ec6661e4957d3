/**
 * What LIKE patterns (like.ts) and POSIX regular expressions (regex.ts) share: their error type and the bounds
 * that keep a filter cheap to evaluate. Both matchers take time linear in the subject; the bounds cap the factor.
 */

export class PatternError extends Error {
  override readonly name = 'PatternError';
}

/** like/ilike/match/imatch patterns longer than this many characters are refused at subscription. */
export const MAX_PATTERN_LENGTH = 1000;

/**
 * A regex whose RE2 program has more instructions is refused ("regular expression is too complex"): the matcher's
 * work per subject character is bounded by the program size (`x{255}` alone is 255 instructions).
 */
export const MAX_REGEX_PROGRAM_SIZE = 500;

/** Memory one regex's lazy DFA may hold; past it RE2 drops its cache or falls back to its NFA, still linear. */
export const REGEX_DFA_MEMORY_BYTES = 256 * 1024;

/** Length in characters (code points), as Postgres counts a text's length. */
export function characterLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}
