import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeV1,
  decodeV2Text,
  jsonTextDeeperThan,
  jsonValueDeeperThan,
  MAX_PAYLOAD_DEPTH,
  PayloadTooDeep,
} from '../../src/channels/protocol/index.js';

/** Reference depth, recursive: fine for the small values fast-check makes. */
function depth(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  const children = Array.isArray(value) ? value : Object.values(value as Record<string, unknown>);
  return 1 + Math.max(0, ...children.map(depth));
}

const nestedArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('JSON nesting depth', () => {
  it('agrees with the recursive depth for any JSON value and any bound, from text and from the parsed value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.nat(10), (value, max) => {
        const text = JSON.stringify(value);
        const expected = depth(value) > max;
        // The text check skips texts too short to be that deep; pad with whitespace to exercise the scan itself.
        expect(jsonTextDeeperThan(text.padEnd(2 * (max + 1), ' '), max)).toBe(expected);
        expect(jsonValueDeeperThan(value, max)).toBe(expected);
      }),
    );
  });

  it('ignores brackets, quotes and backslashes inside strings', () => {
    const tricky = JSON.stringify({ s: '[[[{{{"\\"\\\\[[[', t: ['"]]]}}}', '\\'] });
    expect(jsonTextDeeperThan(tricky.padEnd(100, ' '), 2)).toBe(false);
    expect(jsonTextDeeperThan(tricky.padEnd(100, ' '), 1)).toBe(true);
  });

  it('measures 20,000 levels without recursion', () => {
    const text = nestedArrays(20_000);
    expect(jsonTextDeeperThan(text, MAX_PAYLOAD_DEPTH)).toBe(true);
    expect(jsonValueDeeperThan(JSON.parse(text), MAX_PAYLOAD_DEPTH)).toBe(true);
    expect(jsonValueDeeperThan(JSON.parse(text), 20_000)).toBe(false);
  });
});

describe('decoding a frame nested too deeply', () => {
  const refused = (decode: () => unknown) => {
    try {
      decode();
    } catch (err) {
      if (err instanceof PayloadTooDeep) return err.header;
      throw err;
    }
    throw new Error('decoded');
  };

  it('takes a payload MAX_PAYLOAD_DEPTH deep and refuses one level more, keeping the header for the reply', () => {
    const frame = (n: number) => `["1","2","realtime:x","broadcast",${nestedArrays(n)}]`;
    expect(decodeV2Text(frame(MAX_PAYLOAD_DEPTH))).toMatchObject({ kind: 'message', ref: '2' });
    expect(refused(() => decodeV2Text(frame(MAX_PAYLOAD_DEPTH + 1)))).toEqual({ joinRef: '1', ref: '2', topic: 'realtime:x', event: 'broadcast' });
    const v1 = (n: number) => `{"topic":"phoenix","event":"heartbeat","ref":"3","payload":${nestedArrays(n)}}`;
    expect(decodeV1(v1(MAX_PAYLOAD_DEPTH))).toMatchObject({ kind: 'message', ref: '3' });
    expect(refused(() => decodeV1(v1(MAX_PAYLOAD_DEPTH + 1)))).toEqual({ joinRef: null, ref: '3', topic: 'phoenix', event: 'heartbeat' });
  });
});
