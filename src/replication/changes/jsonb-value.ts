/**
 * jsonb values for filters: parsed from JSON text with numbers kept exact, compared like Postgres' jsonb btree
 * order: Object > Array > Boolean > Number > String > Null; containers first by size (pairs/elements), then
 * element by element (object pairs in storage order: shorter keys first, then bytewise); a top-level scalar is a
 * one-element "raw scalar" array that sorts before a real array of the same size. Strings compare by code point
 * (C collation, see scalars.ts).
 */
import { compareBigint, compareCodePoints, compareNumeric, parseNumeric, type Numeric } from './scalars.js';

export type Jsonb =
  | { t: 0 }
  | { t: 1; s: string }
  | { t: 2; n: Numeric }
  | { t: 3; b: boolean }
  | { t: 4; items: Jsonb[]; raw: boolean }
  | { t: 5; keys: string[]; values: Jsonb[] };

export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
}

/** @throws JsonSyntaxError */
export function parseJsonb(text: string): Jsonb {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const fail = (): never => {
    throw new JsonSyntaxError('invalid input syntax for type json');
  };
  const str = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail();
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail();
    }
  };
  const value = (): Jsonb => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const pairs = new Map<string, Jsonb>();
      ws();
      if (text[i] === '}') {
        i++;
        return object(pairs);
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        const k = str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        // Duplicate keys: jsonb keeps the last value.
        pairs.delete(k);
        pairs.set(k, value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return object(pairs);
        } else fail();
      }
    }
    if (c === '[') {
      i++;
      const items: Jsonb[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { t: 4, items, raw: false };
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return { t: 4, items, raw: false };
        } else fail();
      }
    }
    if (c === '"') return { t: 1, s: str() };
    for (const [word, v] of WORDS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    const num = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!num) return fail();
    i += num[0].length;
    const n = parseNumeric(num[0]);
    if ('sqlstate' in n) return fail();
    return { t: 2, n };
  };
  const v = value();
  ws();
  if (i !== text.length) fail();
  return v.t === 4 || v.t === 5 ? v : { t: 4, items: [v], raw: true };
}

const WORDS: ReadonlyArray<[string, Jsonb]> = [
  ['null', { t: 0 }],
  ['true', { t: 3, b: true }],
  ['false', { t: 3, b: false }],
];

// jsonb storage order of keys: shorter first, then bytewise.
function object(pairs: Map<string, Jsonb>): Jsonb {
  const keys = [...pairs.keys()].sort(
    (a, b) => Buffer.byteLength(a) - Buffer.byteLength(b) || Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  return { t: 5, keys, values: keys.map((k) => pairs.get(k)!) };
}

export function compareJsonb(a: Jsonb, b: Jsonb): number {
  if (a.t !== b.t) return a.t - b.t;
  switch (a.t) {
    case 0:
      return 0;
    case 1:
      return compareCodePoints(a.s, (b as { s: string }).s);
    case 2:
      return compareNumeric(a.n, (b as { n: Numeric }).n);
    case 3:
      return Number(a.b) - Number((b as { b: boolean }).b);
    case 4: {
      const y = b as { items: Jsonb[]; raw: boolean };
      if (a.items.length !== y.items.length) return compareBigint(BigInt(a.items.length), BigInt(y.items.length));
      if (a.raw !== y.raw) return a.raw ? -1 : 1;
      for (let k = 0; k < a.items.length; k++) {
        const r = compareJsonb(a.items[k]!, y.items[k]!);
        if (r !== 0) return r;
      }
      return 0;
    }
    case 5: {
      const y = b as { keys: string[]; values: Jsonb[] };
      if (a.keys.length !== y.keys.length) return a.keys.length - y.keys.length;
      for (let k = 0; k < a.keys.length; k++) {
        const r = compareCodePoints(a.keys[k]!, y.keys[k]!) || compareJsonb(a.values[k]!, y.values[k]!);
        if (r !== 0) return r;
      }
      return 0;
    }
  }
}
