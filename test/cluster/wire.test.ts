import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeWire, encodeWire, isFromOrigin, WireDecodeError } from '../../src/cluster/wire.js';
import type { Envelope, PubSubMessage } from '../../src/shared/messages.js';

const origin = Buffer.from('0123456789abcdef', 'hex');

const envelope: fc.Arbitrary<Envelope> = fc.oneof(
  fc.record({ type: fc.constant('json' as const), event: fc.string({ unit: 'grapheme' }), payloadJson: fc.json() }),
  fc.record({
    type: fc.constant('user' as const),
    userEvent: fc.string({ unit: 'grapheme' }),
    encoding: fc.constantFrom(0 as const, 1 as const),
    payload: fc.uint8Array({ maxLength: 300 }),
    metaJson: fc.option(fc.json(), { nil: null }),
  }),
  fc.record({
    type: fc.constant('changes' as const),
    legacy: fc.boolean(),
    items: fc.array(fc.record({ type: fc.constantFrom('INSERT', 'UPDATE', 'DELETE'), data: fc.json(), idsJson: fc.option(fc.json(), { nil: null }) }), { maxLength: 5 }),
  }),
);

const message: fc.Arbitrary<PubSubMessage> = fc.record({
  tenantId: fc.stringMatching(/^[a-z0-9_-]{1,40}$/),
  key: fc.string({ unit: 'grapheme', maxLength: 300 }),
  subTopic: fc.string({ unit: 'grapheme', maxLength: 250 }),
  env: envelope,
});

const plain = (m: PubSubMessage) => (m.env.type === 'user' ? { ...m, env: { ...m.env, payload: [...m.env.payload] } } : m);

describe('cluster wire format', () => {
  it('decodes what it encoded, the sender and origin included', () => {
    fc.assert(
      fc.property(message, fc.option(fc.integer({ min: 1, max: 2 ** 52 }), { nil: null }), (msg, exclude) => {
        const bytes = encodeWire(origin, msg, exclude);
        const back = decodeWire(bytes);
        expect(plain(back.msg)).toEqual(plain(msg));
        expect(back.exclude).toBe(exclude);
        expect(back.origin.equals(origin)).toBe(true);
        expect(isFromOrigin(bytes, origin)).toBe(true);
        expect(isFromOrigin(bytes, Buffer.alloc(8))).toBe(false);
      }),
    );
  });

  it('carries a binary payload as its own bytes (no base64)', () => {
    const payload = new Uint8Array(1000).fill(0xab);
    const bytes = encodeWire(origin, { tenantId: 't', key: 't|public|r', subTopic: 'r', env: { type: 'user', userEvent: 'b', encoding: 0, payload, metaJson: null } }, null);
    expect(bytes.length).toBeLessThan(1100);
    expect(bytes.includes(Buffer.from(payload))).toBe(true);
  });

  it('refuses truncated, extended or random bytes with WireDecodeError, never anything else', () => {
    fc.assert(
      fc.property(message, fc.nat(), (msg, cut) => {
        const bytes = encodeWire(origin, msg, null);
        const at = cut % bytes.length;
        expect(() => decodeWire(bytes.subarray(0, at))).toThrow(WireDecodeError);
        expect(() => decodeWire(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(WireDecodeError);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        try {
          decodeWire(Buffer.from(junk));
        } catch (err) {
          expect(err).toBeInstanceOf(WireDecodeError);
        }
      }),
    );
  });
});
