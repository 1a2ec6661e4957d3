/**
 * A direct scanner for the `select` strings clients send most (`id,title,alias:rel!hint(name,other(*))`): plain
 * ASCII names, aliases, simple casts, embeds with hints. It returns exactly what the Parsec grammar (./select.ts)
 * returns for those, or null for anything else (spaces, quotes, JSON paths, spreads, aggregates, odd hints, errors),
 * which the grammar then parses with PostgREST's error texts. A differential property test holds the two equal.
 */
import type { JoinType, SelectItem } from './ast.js';
import { MAX_EMBED_DEPTH } from '../limits.js';

const isWordChar = (code: number): boolean =>
  (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || (code >= 48 && code <= 57) || code === 95;

/** Returns the items, or null to let the full grammar decide. Linear: one pass, no backtracking. */
export function fastSelect(input: string): SelectItem[] | null {
  let i = 0;
  const n = input.length;

  const word = (): string | null => {
    const start = i;
    while (i < n && isWordChar(input.charCodeAt(i))) i++;
    return i > start ? input.slice(start, i) : null;
  };

  const items = (depth: number): SelectItem[] | null => {
    const out: SelectItem[] = [];
    // An empty list (`rel()` or the whole string empty) is what sepBy gives for no items.
    if (i >= n || input[i] === ')') return out;
    for (;;) {
      const item = parseItem(depth);
      if (item === null) return null;
      out.push(item);
      if (i < n && input[i] === ',') {
        i++;
        continue;
      }
      return out;
    }
  };

  const parseItem = (depth: number): SelectItem | null => {
    if (input[i] === '*') {
      i++;
      return i >= n || input[i] === ',' || input[i] === ')' ? { type: 'field', field: { name: '*', jsonPath: [] } } : null;
    }
    let name = word();
    if (name === null) return null;
    let alias: string | undefined;
    if (input[i] === ':' && input[i + 1] !== ':') {
      i++;
      alias = name;
      name = word();
      if (name === null) return null;
    }
    if (input[i] === '!' || input[i] === '(') {
      if (name === 'count') return null;
      let hint: string | undefined;
      let joinType: JoinType | undefined;
      for (let k = 0; k < 2 && input[i] === '!'; k++) {
        i++;
        const param = word();
        if (param === null) return null;
        if (param === 'inner' || param === 'left') joinType ??= param;
        else if (param.startsWith('inner') || param.startsWith('left')) return null;
        else hint ??= param;
      }
      if (input[i] !== '(' || depth + 1 > MAX_EMBED_DEPTH) return null;
      i++;
      const children = items(depth + 1);
      if (children === null || input[i] !== ')') return null;
      i++;
      if (i < n && input[i] !== ',' && input[i] !== ')') return null;
      return {
        type: 'relation',
        relation: name,
        ...(alias !== undefined ? { alias } : {}),
        ...(hint !== undefined ? { hint } : {}),
        ...(joinType !== undefined ? { joinType } : {}),
        children,
      };
    }
    let cast: string | undefined;
    if (input[i] === ':' && input[i + 1] === ':') {
      i += 2;
      const c = word();
      if (c === null) return null;
      cast = c;
    }
    if (i < n && input[i] !== ',' && input[i] !== ')') return null;
    return {
      type: 'field',
      field: { name, jsonPath: [] },
      ...(alias !== undefined ? { alias } : {}),
      ...(cast !== undefined ? { cast } : {}),
    };
  };

  const result = items(0);
  // A `)` left at the top level is something only the grammar may judge.
  return result !== null && i === n ? result : null;
}
