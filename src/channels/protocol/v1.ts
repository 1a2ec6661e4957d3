import { MAX_PAYLOAD_DEPTH, jsonTextDeeperThan } from './nesting.js';
import { FrameDecodeError, PayloadTooDeep, type Inbound, type PhoenixMessage } from './types.js';

/**
 * vsn 1.0.0: JSON objects. Input carries topic/event/payload/ref and an optional join_ref;
 * output carries exactly topic/event/payload/ref (no join_ref), as the upstream serializer does.
 */
export function decodeV1(text: string): Inbound {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FrameDecodeError('invalid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FrameDecodeError('expected a JSON object');
  }
  const o = parsed as Record<string, unknown>;
  const { topic, event, ref } = o;
  const joinRef = o.join_ref;
  if (typeof topic !== 'string' || typeof event !== 'string' || !('payload' in o)) {
    throw new FrameDecodeError('missing topic, event or payload');
  }
  if (!isRef(ref) || !isRef(joinRef ?? null)) throw new FrameDecodeError('ref must be a string or null');
  const header = { joinRef: normalizeRef(joinRef), ref: normalizeRef(ref), topic, event };
  // The frame object is one level above the payload.
  if (jsonTextDeeperThan(text, MAX_PAYLOAD_DEPTH + 1)) throw new PayloadTooDeep(header);
  return { kind: 'message', ...header, payload: o.payload };
}

function isRef(v: unknown): boolean {
  return v === null || v === undefined || typeof v === 'string' || typeof v === 'number';
}

export function normalizeRef(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return null;
}

/** Encodes a message with an already-serialized JSON payload (so fan-out serializes the payload once). */
export function encodeV1Raw(topic: string, event: string, payloadJson: string, ref: string | null): string {
  return `{"topic":${JSON.stringify(topic)},"event":${JSON.stringify(event)},"payload":${payloadJson},"ref":${ref === null ? 'null' : JSON.stringify(ref)}}`;
}

export function encodeV1(msg: PhoenixMessage): string {
  return encodeV1Raw(msg.topic, msg.event, JSON.stringify(msg.payload ?? null), msg.ref);
}
