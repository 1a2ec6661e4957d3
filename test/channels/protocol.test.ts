import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeFor, userBroadcastJson } from '../../src/channels/frames.js';
import {
  decodeFrame,
  decodeV1,
  decodeV2Binary,
  decodeV2Text,
  encodeUserBroadcast,
  encodeV1,
  encodeV2,
  FrameDecodeError,
} from '../../src/channels/protocol/index.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/[\s|]/g, ''), 'hex'));
const ascii = (s: string) => Buffer.from(s).toString('hex');
const ab = (b: Uint8Array) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

describe('vsn 1.0.0 (JSON objects)', () => {
  it('decodes a join with and without join_ref', () => {
    expect(decodeV1('{"topic":"realtime:room1","event":"phx_join","payload":{"config":{}},"ref":"1","join_ref":"1"}')).toEqual({
      kind: 'message', joinRef: '1', ref: '1', topic: 'realtime:room1', event: 'phx_join', payload: { config: {} },
    });
    expect(decodeV1('{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}')).toEqual({
      kind: 'message', joinRef: null, ref: '2', topic: 'phoenix', event: 'heartbeat', payload: {},
    });
  });

  it('encodes exactly topic, event, payload, ref (no join_ref)', () => {
    expect(encodeV1({ joinRef: '1', ref: '1', topic: 'realtime:room1', event: 'phx_reply', payload: { status: 'ok', response: { postgres_changes: [] } } })).toBe(
      '{"topic":"realtime:room1","event":"phx_reply","payload":{"status":"ok","response":{"postgres_changes":[]}},"ref":"1"}',
    );
    expect(encodeV1({ joinRef: null, ref: null, topic: 'realtime:room1', event: 'broadcast', payload: { type: 'broadcast', event: 'cursor', payload: { x: 1 } } })).toBe(
      '{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"cursor","payload":{"x":1}},"ref":null}',
    );
  });

  it.each(['', '"just a string"', '[null,"1","t","e",{}]', '{"topic":"t","event":"e"}', '{"topic":1,"event":"e","payload":{},"ref":null}', '{bad json'])(
    'rejects malformed frame %j with FrameDecodeError',
    (text) => {
      expect(() => decodeV1(text)).toThrow(FrameDecodeError);
    },
  );
});

describe('vsn 2.0.0 text (JSON arrays)', () => {
  it('decodes the realtime-js join and heartbeat frames', () => {
    expect(decodeV2Text('["1","1","realtime:room1","phx_join",{"config":{"private":false}}]')).toEqual({
      kind: 'message', joinRef: '1', ref: '1', topic: 'realtime:room1', event: 'phx_join', payload: { config: { private: false } },
    });
    expect(decodeV2Text('[null,"2","phoenix","heartbeat",{}]')).toMatchObject({ joinRef: null, ref: '2', event: 'heartbeat' });
  });

  it('accepts arrays longer than five and ignores the extra items', () => {
    expect(decodeV2Text('[null,"2","phoenix","heartbeat",{},"extra"]')).toMatchObject({ event: 'heartbeat', payload: {} });
  });

  it('encodes replies, channel pushes and fan-out frames', () => {
    expect(encodeV2({ joinRef: '1', ref: '1', topic: 'realtime:room1', event: 'phx_reply', payload: { status: 'ok', response: { postgres_changes: [] } } })).toBe(
      '["1","1","realtime:room1","phx_reply",{"status":"ok","response":{"postgres_changes":[]}}]',
    );
    expect(encodeV2({ joinRef: null, ref: '2', topic: 'phoenix', event: 'phx_reply', payload: { status: 'ok', response: {} } })).toBe(
      '[null,"2","phoenix","phx_reply",{"status":"ok","response":{}}]',
    );
    expect(encodeV2({ joinRef: '4', ref: null, topic: 'realtime:r', event: 'system', payload: {} })).toBe('["4",null,"realtime:r","system",{}]');
  });

  it.each(['', '"str"', '{"topic":"t","event":"e","payload":{},"ref":null}', '[null,"1","t","e"]', '[null,"1",3,"e",{}]', '[{},"1","t","e",{}]', 'nope'])(
    'rejects malformed frame %j',
    (text) => {
      expect(() => decodeV2Text(text)).toThrow(FrameDecodeError);
    },
  );
});

describe('vsn 2.0.0 binary frames', () => {
  it('decodes the worked kind-3 example of the spec', () => {
    const frame = hex(`03 01 01 0d 03 00 01 ${ascii('1')}${ascii('5')}${ascii('realtime:room')}${ascii('msg')}${ascii('{"a":"b"}')}`);
    const msg = decodeV2Binary(frame);
    expect(msg).toMatchObject({ kind: 'user_broadcast', joinRef: '1', ref: '5', topic: 'realtime:room', userEvent: 'msg', encoding: 1 });
    if (msg.kind !== 'user_broadcast') throw new Error('wrong kind');
    expect(Buffer.from(msg.payload).toString()).toBe('{"a":"b"}');
    expect(msg.metadata.length).toBe(0);
  });

  it('decodes kind 3 with metadata and a binary payload', () => {
    const meta = '{"persist":true}';
    const frame = hex(`03 01 02 01 01 ${meta.length.toString(16).padStart(2, '0')} 00 ${ascii('7')}${ascii('12')}${ascii('t')}${ascii('e')}${ascii(meta)} 00 ff 10`);
    const msg = decodeV2Binary(frame);
    if (msg.kind !== 'user_broadcast') throw new Error('wrong kind');
    expect(msg).toMatchObject({ joinRef: '7', ref: '12', topic: 't', userEvent: 'e', encoding: 0 });
    expect(Buffer.from(msg.metadata).toString()).toBe(meta);
    expect([...msg.payload]).toEqual([0, 0xff, 0x10]);
  });

  it('decodes a kind-0 push', () => {
    const frame = hex(`00 01 01 01 09 ${ascii('1')}${ascii('2')}${ascii('t')}${ascii('broadcast')} 01 02`);
    expect(decodeV2Binary(frame)).toMatchObject({ kind: 'binary_push', joinRef: '1', ref: '2', topic: 't', event: 'broadcast' });
  });

  it('encodes the worked kind-4 example of the spec', () => {
    const out = encodeUserBroadcast('realtime:room', 'msg', 1, Buffer.from('{"a":"b"}'), null);
    expect(Buffer.from(out).toString('hex')).toBe(`040d030001${ascii('realtime:room')}${ascii('msg')}${ascii('{"a":"b"}')}`);
  });

  it('encodes kind 4 with server metadata', () => {
    const out = encodeUserBroadcast('realtime:r', 'e', 0, Uint8Array.of(9), '{"id":"x"}');
    expect(Buffer.from(out).toString('hex')).toBe(`040a010a00${ascii('realtime:r')}${ascii('e')}${ascii('{"id":"x"}')}09`);
  });

  it.each([
    ['empty', ''],
    ['unknown kind', '07 00'],
    ['kind 4 is server-to-client only', '04 00 00 00 01'],
    ['truncated kind-3 header', '03 01 01'],
    ['kind-3 fields past the end', '03 05 05 05 05 05 01 41'],
    ['unknown payload encoding', '03 00 00 00 00 00 02'],
    ['truncated kind-0 fields', '00 09 00 00 00'],
  ])('rejects %s', (_name, bytes) => {
    expect(() => decodeV2Binary(hex(bytes))).toThrow(FrameDecodeError);
  });
});

describe('fan-out encodings of a user broadcast', () => {
  const env = { type: 'user' as const, userEvent: 'msg', encoding: 1 as const, payload: Buffer.from('{"a":"b"}'), metaJson: null };

  it('is a kind-4 frame for V2 and a JSON broadcast for V1', () => {
    expect(Buffer.from(encodeFor('2.0.0', 'realtime:room', env) as Uint8Array).toString('hex')).toBe(
      `040d030001${ascii('realtime:room')}${ascii('msg')}${ascii('{"a":"b"}')}`,
    );
    expect(encodeFor('1.0.0', 'realtime:room', env)).toBe(
      '{"topic":"realtime:room","event":"broadcast","payload":{"event":"msg","payload":{"a":"b"},"type":"broadcast"},"ref":null}',
    );
  });

  it('is never sent to V1 when binary, nor when its JSON text is invalid', () => {
    expect(encodeFor('1.0.0', 'realtime:room', { ...env, encoding: 0 })).toBeNull();
    expect(encodeFor('1.0.0', 'realtime:room', { ...env, payload: Buffer.from('{nope') })).toBeNull();
  });

  it('carries server metadata to V1 as a meta key', () => {
    expect(userBroadcastJson('e', '{}', '{"id":"1"}')).toBe('{"event":"e","payload":{},"type":"broadcast","meta":{"id":"1"}}');
  });
});

describe('properties', () => {
  const ref = fc.option(fc.string({ maxLength: 20 }), { nil: null });
  const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);

  it('V2 text: decode(encode(m)) = m', () => {
    fc.assert(
      fc.property(ref, ref, fc.string(), fc.string(), json, (joinRef, r, topic, event, payload) => {
        const msg = { joinRef, ref: r, topic, event, payload };
        expect(decodeV2Text(encodeV2(msg))).toEqual({ kind: 'message', ...msg });
      }),
    );
  });

  it('V1: decode(encode(m)) = m without join_ref', () => {
    fc.assert(
      fc.property(ref, fc.string(), fc.string(), json, (r, topic, event, payload) => {
        const msg = { joinRef: null, ref: r, topic, event, payload };
        expect(decodeV1(encodeV1(msg))).toEqual({ kind: 'message', ...msg });
      }),
    );
  });

  it('kind 4 carries topic, event and payload bytes intact', () => {
    const short = fc.string({ maxLength: 60 });
    fc.assert(
      fc.property(short, short, fc.uint8Array({ maxLength: 300 }), fc.constantFrom(0 as const, 1 as const), (topic, event, payload, encoding) => {
        const out = encodeUserBroadcast(topic, event, encoding, payload, null);
        const t = Buffer.from(topic), e = Buffer.from(event);
        expect(out[0]).toBe(4);
        expect([out[1], out[2], out[3], out[4]]).toEqual([t.length, e.length, 0, encoding]);
        expect(Buffer.from(out.subarray(5, 5 + t.length)).toString()).toBe(topic);
        expect(Buffer.from(out.subarray(5 + t.length + e.length))).toEqual(Buffer.from(payload));
      }),
    );
  });

  it('random bytes never throw anything but FrameDecodeError, on any serializer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), fc.constantFrom('1.0.0' as const, '2.0.0' as const), (bytes, isBinary, vsn) => {
        try {
          decodeFrame(vsn, ab(bytes), isBinary);
        } catch (err) {
          expect(err).toBeInstanceOf(FrameDecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
