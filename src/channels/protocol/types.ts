/**
 * Phoenix Channel messages as Performer sees them, independent of the wire version.
 * `payload` is the decoded JSON for text frames; binary user broadcasts keep their raw bytes.
 */
export interface PhoenixMessage {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
}

/** A broadcast whose payload travels as raw bytes: kind 3 in, kind 4 out (vsn 2.0.0). */
export interface UserBroadcast {
  kind: 'user_broadcast';
  joinRef: string | null;
  ref: string | null;
  topic: string;
  userEvent: string;
  /** 0 = binary payload, 1 = UTF-8 JSON text. */
  encoding: 0 | 1;
  /** Client metadata JSON text (possibly empty). Never forwarded to subscribers. */
  metadata: Uint8Array;
  payload: Uint8Array;
}

/** A binary kind-0 push from the client: event with raw bytes as payload. */
export interface BinaryPush {
  kind: 'binary_push';
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Uint8Array;
}

export type Inbound =
  | ({ kind: 'message' } & PhoenixMessage)
  | UserBroadcast
  | BinaryPush;

export class FrameDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameDecodeError';
  }
}

/**
 * A well-formed text frame whose payload nests deeper than MAX_PAYLOAD_DEPTH. Unlike other malformed frames it is
 * answered: the header is known, so the client hears why its push was refused.
 */
export class PayloadTooDeep extends FrameDecodeError {
  constructor(readonly header: Omit<PhoenixMessage, 'payload'>) {
    super('payload nested too deeply');
    this.name = 'PayloadTooDeep';
  }
}

export const BINARY_KIND = {
  push: 0,
  reply: 1,
  broadcast: 2,
  userBroadcastPush: 3,
  userBroadcast: 4,
} as const;
