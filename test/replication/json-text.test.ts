import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quoteJson } from '../../src/replication/changes/json-text.js';

/** Postgres' escape_json, written out from its rules: named escapes, \u00xx for other controls, nothing else. */
function postgresEscape(value: string): string {
  const named: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  let out = '"';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    out += named[ch] ?? (c < 0x20 ? `\\u${c.toString(16).padStart(4, '0')}` : ch);
  }
  return `${out}"`;
}

describe('quoteJson', () => {
  it('escapes like Postgres for any well-formed text', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (s) => {
      expect(quoteJson(s)).toBe(postgresEscape(s));
    }));
    fc.assert(fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)) }), (s) => {
      expect(quoteJson(s)).toBe(postgresEscape(s));
    }));
  });

  it('golden: controls, quotes, backslashes and non-ASCII', () => {
    expect(quoteJson('a"b\\c\n\t\u0001\u001f\u007f é 😀')).toBe('"a\\"b\\\\c\\n\\t\\u0001\\u001f\u007f é 😀"');
  });
});
