import type { ConnectionId, Envelope, OutgoingChange, PubSubMessage } from '../shared/messages.js';

/**
 * The bytes of a PubSubMessage between nodes. Binary, not JSON: a user payload crosses as its own bytes (no base64),
 * and JSON payload text is copied, never parsed. Layout (integers big-endian):
 *
 *   u8 version (1) | 8 bytes origin node instance | f64 exclude (-1: none) | str16 tenant | str32 key | str32 subTopic
 *   | u8 kind, then per kind:
 *     0 json:    str32 event | str32 payloadJson
 *     1 user:    str32 userEvent | u8 encoding | nstr32 metaJson | bytes32 payload
 *     2 changes: u8 legacy | u32 count | count × (str32 type | str32 data | nstr32 idsJson)
 *
 * str16/str32: UTF-8 length then bytes; nstr32: as str32 with length 0xFFFFFFFF for null.
 */
const VERSION = 1;
const NULL_LENGTH = 0xffffffff;
export const ORIGIN_BYTES = 8;

export interface WireMessage {
  /** The node instance that published it (its own messages come back to it when it subscribes the same channel). */
  origin: Buffer;
  msg: PubSubMessage;
  exclude: ConnectionId | null;
}

export class WireDecodeError extends Error {}

const strLen = (s: string) => Buffer.byteLength(s);

function envelopeSize(env: Envelope): number {
  switch (env.type) {
    case 'json':
      return 1 + 4 + strLen(env.event) + 4 + strLen(env.payloadJson);
    case 'user':
      return 1 + 4 + strLen(env.userEvent) + 1 + 4 + (env.metaJson === null ? 0 : strLen(env.metaJson)) + 4 + env.payload.length;
    case 'changes': {
      let n = 1 + 1 + 4;
      for (const item of env.items) n += 4 + strLen(item.type) + 4 + strLen(item.data) + 4 + (item.idsJson === null ? 0 : strLen(item.idsJson));
      return n;
    }
  }
}

class Writer {
  offset = 0;
  constructor(readonly buf: Buffer) {}
  u8(v: number): void {
    this.offset = this.buf.writeUInt8(v, this.offset);
  }
  u32(v: number): void {
    this.offset = this.buf.writeUInt32BE(v, this.offset);
  }
  str16(s: string): void {
    const n = this.buf.write(s, this.offset + 2);
    this.buf.writeUInt16BE(n, this.offset);
    this.offset += 2 + n;
  }
  str32(s: string): void {
    const n = this.buf.write(s, this.offset + 4);
    this.buf.writeUInt32BE(n, this.offset);
    this.offset += 4 + n;
  }
  nstr32(s: string | null): void {
    if (s === null) this.u32(NULL_LENGTH);
    else this.str32(s);
  }
  bytes32(b: Uint8Array): void {
    this.u32(b.length);
    this.buf.set(b, this.offset);
    this.offset += b.length;
  }
}

export function encodeWire(origin: Buffer, msg: PubSubMessage, exclude: ConnectionId | null): Buffer {
  if (Buffer.byteLength(msg.tenantId) > 0xffff) throw new RangeError('tenant id too long');
  const size = 1 + ORIGIN_BYTES + 8 + 2 + strLen(msg.tenantId) + 4 + strLen(msg.key) + 4 + strLen(msg.subTopic) + envelopeSize(msg.env);
  const w = new Writer(Buffer.allocUnsafe(size));
  w.u8(VERSION);
  origin.copy(w.buf, w.offset, 0, ORIGIN_BYTES);
  w.offset += ORIGIN_BYTES;
  w.offset = w.buf.writeDoubleBE(exclude ?? -1, w.offset);
  w.str16(msg.tenantId);
  w.str32(msg.key);
  w.str32(msg.subTopic);
  const env = msg.env;
  if (env.type === 'json') {
    w.u8(0);
    w.str32(env.event);
    w.str32(env.payloadJson);
  } else if (env.type === 'user') {
    w.u8(1);
    w.str32(env.userEvent);
    w.u8(env.encoding);
    w.nstr32(env.metaJson);
    w.bytes32(env.payload);
  } else {
    w.u8(2);
    w.u8(env.legacy ? 1 : 0);
    w.u32(env.items.length);
    for (const item of env.items) {
      w.str32(item.type);
      w.str32(item.data);
      w.nstr32(item.idsJson);
    }
  }
  return w.buf;
}

class Reader {
  offset = 0;
  constructor(readonly buf: Buffer) {}
  need(n: number): void {
    if (this.offset + n > this.buf.length) throw new WireDecodeError('truncated cluster message');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.offset++] as number;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  str16(): string {
    this.need(2);
    const n = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return this.bytes(n).toString();
  }
  str32(): string {
    return this.bytes(this.u32()).toString();
  }
  nstr32(): string | null {
    const n = this.u32();
    return n === NULL_LENGTH ? null : this.bytes(n).toString();
  }
}

/** True when the message was published by `origin` (checked before decoding the rest). */
export function isFromOrigin(buf: Buffer, origin: Buffer): boolean {
  return buf.length > ORIGIN_BYTES && buf.compare(origin, 0, ORIGIN_BYTES, 1, 1 + ORIGIN_BYTES) === 0;
}

/** The message in `buf`; a user payload is a view of `buf`, not a copy. Throws WireDecodeError on bad bytes. */
export function decodeWire(buf: Buffer): WireMessage {
  const r = new Reader(buf);
  if (r.u8() !== VERSION) throw new WireDecodeError('unknown cluster message version');
  const origin = r.bytes(ORIGIN_BYTES);
  const excludeRaw = r.f64();
  const tenantId = r.str16();
  const key = r.str32();
  const subTopic = r.str32();
  const kind = r.u8();
  let env: Envelope;
  if (kind === 0) {
    env = { type: 'json', event: r.str32(), payloadJson: r.str32() };
  } else if (kind === 1) {
    const userEvent = r.str32();
    const encoding = r.u8();
    if (encoding !== 0 && encoding !== 1) throw new WireDecodeError('bad payload encoding');
    const metaJson = r.nstr32();
    const payload = r.bytes(r.u32());
    env = { type: 'user', userEvent, encoding, payload, metaJson };
  } else if (kind === 2) {
    const legacy = r.u8() === 1;
    const count = r.u32();
    // Each item takes at least 12 bytes: a count past what is left is a lie, refused before allocating.
    if (count * 12 > buf.length - r.offset) throw new WireDecodeError('truncated cluster message');
    const items: OutgoingChange[] = [];
    for (let i = 0; i < count; i++) items.push({ type: r.str32(), data: r.str32(), idsJson: r.nstr32() });
    env = { type: 'changes', legacy, items };
  } else {
    throw new WireDecodeError('unknown envelope kind');
  }
  if (r.offset !== buf.length) throw new WireDecodeError('trailing bytes in cluster message');
  return { origin, msg: { tenantId, key, subTopic, env }, exclude: excludeRaw < 0 ? null : excludeRaw };
}
