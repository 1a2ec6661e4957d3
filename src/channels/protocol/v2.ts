import { normalizeRef } from './v1.js';
import { MAX_PAYLOAD_DEPTH, jsonTextDeeperThan } from './nesting.js';
import { BINARY_KIND, FrameDecodeError, PayloadTooDeep, type Inbound, type PhoenixMessage } from './types.js';

/**
 * vsn 2.0.0: text frames are JSON arrays `[join_ref, ref, topic, event, payload]`;
 * binary frames start with a kind byte (0 push and 3 user broadcast push in, 4 user broadcast out).
 */
export function decodeV2Text(text: string): Inbound {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FrameDecodeError('invalid JSON');
  }
  if (!Array.isArray(parsed) || parsed.length < 5) throw new FrameDecodeError('expected an array of 5 elements');
  const [joinRef, ref, topic, event, payload] = parsed;
  if (typeof topic !== 'string' || typeof event !== 'string') throw new FrameDecodeError('topic and event must be strings');
  if (!isRefLike(joinRef) || !isRefLike(ref)) throw new FrameDecodeError('refs must be strings or null');
  const header = { joinRef: normalizeRef(joinRef), ref: normalizeRef(ref), topic, event };
  // The frame array is one level above the payload.
  if (jsonTextDeeperThan(text, MAX_PAYLOAD_DEPTH + 1)) throw new PayloadTooDeep(header);
  return { kind: 'message', ...header, payload };
}

function isRefLike(v: unknown): boolean {
  return v === null || typeof v === 'string' || typeof v === 'number';
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

export function decodeV2Binary(bytes: Uint8Array): Inbound {
  if (bytes.length < 1) throw new FrameDecodeError('empty binary frame');
  const kind = bytes[0];
  if (kind === BINARY_KIND.push) {
    const header = 5;
    if (bytes.length < header) throw new FrameDecodeError('truncated push header');
    const [joinRef, ref, topic, event, rest] = readFields(bytes, 1, 4, header);
    return { kind: 'binary_push', joinRef: emptyToNull(joinRef), ref: emptyToNull(ref), topic, event, payload: bytes.subarray(rest) };
  }
  if (kind === BINARY_KIND.userBroadcastPush) {
    const header = 7;
    if (bytes.length < header) throw new FrameDecodeError('truncated user broadcast header');
    const encoding = bytes[6];
    if (encoding !== 0 && encoding !== 1) throw new FrameDecodeError(`unknown payload encoding ${encoding}`);
    const joinRefLen = bytes[1], refLen = bytes[2], topicLen = bytes[3], eventLen = bytes[4], metaLen = bytes[5];
    let off = header;
    const end = off + joinRefLen + refLen + topicLen + eventLen + metaLen;
    if (end > bytes.length) throw new FrameDecodeError('user broadcast fields run past the frame');
    const joinRef = utf8.decode(bytes.subarray(off, (off += joinRefLen)));
    const ref = utf8.decode(bytes.subarray(off, (off += refLen)));
    const topic = utf8.decode(bytes.subarray(off, (off += topicLen)));
    const userEvent = utf8.decode(bytes.subarray(off, (off += eventLen)));
    const metadata = bytes.subarray(off, (off += metaLen));
    return {
      kind: 'user_broadcast',
      joinRef: emptyToNull(joinRef),
      ref: emptyToNull(ref),
      topic,
      userEvent,
      encoding,
      metadata,
      payload: bytes.subarray(off),
    };
  }
  throw new FrameDecodeError(`unsupported binary kind ${kind}`);
}

function readFields(bytes: Uint8Array, lenStart: number, count: number, dataStart: number): [string, string, string, string, number] {
  let off = dataStart;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = bytes[lenStart + i];
    if (off + len > bytes.length) throw new FrameDecodeError('binary fields run past the frame');
    out.push(utf8.decode(bytes.subarray(off, off + len)));
    off += len;
  }
  return [out[0], out[1], out[2], out[3], off];
}

function emptyToNull(s: string): string | null {
  return s.length === 0 ? null : s;
}

/** Encodes a text frame with an already-serialized JSON payload. */
export function encodeV2Raw(joinRef: string | null, ref: string | null, topic: string, event: string, payloadJson: string): string {
  return `[${joinRef === null ? 'null' : JSON.stringify(joinRef)},${ref === null ? 'null' : JSON.stringify(ref)},${JSON.stringify(topic)},${JSON.stringify(event)},${payloadJson}]`;
}

export function encodeV2(msg: PhoenixMessage): string {
  return encodeV2Raw(msg.joinRef, msg.ref, msg.topic, msg.event, JSON.stringify(msg.payload ?? null));
}

/**
 * Kind 4 (server -> client user broadcast). Field lengths are single bytes, so topic, event and metadata are capped
 * at 255 UTF-8 bytes each: the caller validates the topic and event at join/send time.
 */
export function encodeUserBroadcast(topic: string, userEvent: string, encoding: 0 | 1, payload: Uint8Array, metadataJson: string | null): Uint8Array {
  // Lengths first, then the strings written straight into the frame: no intermediate arrays per message.
  const topicLength = Buffer.byteLength(topic);
  const eventLength = Buffer.byteLength(userEvent);
  const metaLength = metadataJson ? Buffer.byteLength(metadataJson) : 0;
  if (topicLength > 255 || eventLength > 255 || metaLength > 255) {
    throw new RangeError('user broadcast topic, event and metadata must each fit in 255 bytes');
  }
  // Every byte is written below, so the frame need not be zero-filled first.
  const out = Buffer.allocUnsafe(5 + topicLength + eventLength + metaLength + payload.length);
  out[0] = BINARY_KIND.userBroadcast;
  out[1] = topicLength;
  out[2] = eventLength;
  out[3] = metaLength;
  out[4] = encoding;
  let off = 5;
  off += out.write(topic, off, 'utf8');
  off += out.write(userEvent, off, 'utf8');
  if (metadataJson) off += out.write(metadataJson, off, 'utf8');
  out.set(payload, off);
  return out;
}

