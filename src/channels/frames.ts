import { changePayloadParts } from '../replication/changes/index.js';
import type { BroadcastEnvelope, OutgoingChange } from '../shared/messages.js';
import type { Vsn } from '../shared/serializer.js';
import { encodeUserBroadcast, encodeV1Raw, encodeV2Raw } from './protocol/index.js';

const utf8 = new TextDecoder();

/** Encodes a fan-out message for one serializer; null when that serializer cannot carry it (binary to V1). */
export function encodeFor(vsn: Vsn, channelTopic: string, env: BroadcastEnvelope): string | Uint8Array | null {
  if (env.type === 'json') {
    return vsn === '2.0.0'
      ? encodeV2Raw(null, null, channelTopic, env.event, env.payloadJson)
      : encodeV1Raw(channelTopic, env.event, env.payloadJson, null);
  }
  if (vsn === '2.0.0') return encodeUserBroadcast(channelTopic, env.userEvent, env.encoding, env.payload, env.metaJson);
  if (env.encoding === 0) return null;
  const text = utf8.decode(env.payload);
  // Embedded verbatim into a V1 frame, so it must be valid JSON; checked once per message, only for V1 receivers.
  if (!isJson(text)) return null;
  return encodeV1Raw(channelTopic, 'broadcast', userBroadcastJson(env.userEvent, text, env.metaJson), null);
}

/** The JSON form of a user broadcast for V1 sockets; the payload text is embedded as it came. */
export function userBroadcastJson(userEvent: string, payloadJsonText: string, metaJson: string | null): string {
  const meta = metaJson ? `,"meta":${metaJson}` : '';
  return `{"event":${JSON.stringify(userEvent)},"payload":${payloadJsonText},"type":"broadcast"${meta}}`;
}

/** The `id` of a broadcast's meta (stored and replayed messages have one), or null. */
export function messageId(metaJson: string): string | null {
  try {
    const id = (JSON.parse(metaJson) as { id?: unknown }).id;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** What one serializer puts around a postgres_changes payload for one channel topic and event name. */
interface ChangeFrameParts {
  /** Names the frame among the ones cached on an event (OutgoingChange.frames). */
  readonly key: string;
  readonly head: string;
  readonly tail: string;
}

/**
 * The frames of Postgres Changes events for one serializer and channel topic. Fan-out frames carry no join_ref; the
 * legacy topic form names the event after the change type. What goes around a payload is worked out once per event
 * name, by encoding a frame around a marker and splitting it there.
 */
export class ChangeFrames {
  private readonly parts = new Map<string, ChangeFrameParts>();

  constructor(
    private readonly vsn: Vsn,
    private readonly channelTopic: string,
    private readonly legacy: boolean,
  ) {}

  /**
   * The item's frame, encoded by the first subscriber that needs it: as text the first time (uWS converts it on
   * send), as UTF-8 bytes once a second one wants it. The frame is joined in one go from the envelope and the
   * event's parts, so it is a flat string, not a rope that every conversion would first have to flatten.
   */
  frame(item: OutgoingChange): string | Uint8Array {
    return this.lookup(item, false);
  }

  /** The item's frame as UTF-8 bytes, for a batch written to many sockets one by one (no conversion per send). */
  bytes(item: OutgoingChange): Uint8Array {
    return this.lookup(item, true) as Uint8Array;
  }

  private lookup(item: OutgoingChange, asBytes: boolean): string | Uint8Array {
    const parts = this.partsFor(this.legacy ? item.type : 'postgres_changes');
    const frames = (item.frames ??= []);
    for (const f of frames) {
      if (f.key !== parts.key) continue;
      if (typeof f.frame === 'string') f.frame = Buffer.from(f.frame);
      return f.frame;
    }
    const text =
      item.idsJson === null
        ? parts.head + item.data + parts.tail
        : [parts.head, ...changePayloadParts(item.idsJson, item.data), parts.tail].join('');
    const frame = asBytes ? Buffer.from(text) : text;
    frames.push({ key: parts.key, frame });
    return frame;
  }

  private partsFor(event: string): ChangeFrameParts {
    let parts = this.parts.get(event);
    if (!parts) {
      const { vsn, channelTopic } = this;
      // JSON.stringify escapes U+0000 in the topic and event, so the marker only occurs where the payload goes.
      const framed = vsn === '2.0.0' ? encodeV2Raw(null, null, channelTopic, event, '\u0000') : encodeV1Raw(channelTopic, event, '\u0000', null);
      const [head, tail] = framed.split('\u0000') as [string, string];
      parts = { key: `${vsn}|${event}|${channelTopic}`, head, tail };
      this.parts.set(event, parts);
    }
    return parts;
  }
}
