import type { WebSocket } from 'uWebSockets.js';
import type { PubSubMessage } from '../shared/messages.js';

export type LocalDelivery = (msg: PubSubMessage, exclude: WebSocket<unknown> | null) => void;

/**
 * How a message reaches the nodes that have subscribers. Channel code only ever calls `publish`; the Redis
 * implementation (cluster issue) forwards to other nodes and delivers locally through the same callback.
 */
export interface PubSub {
  publish(msg: PubSubMessage, exclude: WebSocket<unknown> | null): void;
  close(): Promise<void>;
}

/** Single-node pub/sub: delivery is a direct call. */
export class LocalPubSub implements PubSub {
  constructor(private readonly deliverLocal: LocalDelivery) {}

  publish(msg: PubSubMessage, exclude: WebSocket<unknown> | null): void {
    this.deliverLocal(msg, exclude);
  }

  async close(): Promise<void> {}
}
