import type { WebSocket } from 'uWebSockets.js';
import type { ConnectionId, OutgoingChange } from '../shared/messages.js';
import type { Vsn } from '../shared/serializer.js';
import type { ChangeFrames } from './frames.js';

/** The uWS pub/sub topic of one serializer's subscribers of a topic key. */
export function serializerTopic(vsn: Vsn, key: string): string {
  return vsn === '2.0.0' ? `2|${key}` : `1|${key}`;
}

/** What the fan-out needs of a socket: its serializer, its uWS socket, and a way to write to it directly. */
export interface FanoutSocket {
  readonly id: ConnectionId;
  readonly vsn: Vsn;
  /** Null until the socket is open. */
  readonly ws: WebSocket<unknown> | null;
  /** Once closed, uWS has dropped the socket's subscriptions itself and the socket may no longer be touched. */
  readonly closed: boolean;
  send(frame: string | Uint8Array): void;
}

/** A socket written to in batches (Postgres Changes): uncounted sends inside one cork, counted once. */
export interface BatchSocket extends FanoutSocket {
  /** Writes a text frame (as text, or as UTF-8 bytes); returns its size, 0 when the socket is gone. */
  sendUncounted(frame: string | Uint8Array): number;
  cork(fn: () => void): void;
  /**
   * False when the socket has fallen too far behind: it has then been told, and its channels are leaving, so it gets
   * nothing more instead of a silent subset (uWS's own publish skips such a socket without a word).
   */
  keepsUp(): boolean;
}

/** Writes Postgres Changes events to one socket in one corked write; returns the bytes written. */
export function writeChanges(socket: BatchSocket, frames: ChangeFrames, items: readonly OutgoingChange[]): number {
  let bytes = 0;
  socket.cork(() => {
    for (const item of items) bytes += socket.sendUncounted(frames.frame(item));
  });
  return bytes;
}
