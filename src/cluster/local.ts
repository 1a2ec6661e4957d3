import type { ConnectionId, PubSubMessage } from '../shared/messages.js';
import type { PubSub, PubSubHandler } from './pubsub.js';

/** Single-node pub/sub: every subscriber is on this node, so publishing is a direct call of the handler. */
export class LocalPubSub implements PubSub {
  private closed = false;

  constructor(private readonly handler: PubSubHandler) {}

  publish(msg: PubSubMessage, exclude: ConnectionId | null): void {
    if (!this.closed) this.handler.deliver(msg, exclude);
  }

  publishLocal(msg: PubSubMessage, exclude: ConnectionId | null): void {
    if (!this.closed) this.handler.deliver(msg, exclude);
  }

  changesRoom(): Promise<void> | null {
    return this.handler.changesRoom?.() ?? null;
  }

  changesDrained(): Promise<void> | null {
    return this.handler.changesDrained?.() ?? null;
  }

  // No other node to tell: local subscribers are found by the dispatcher whatever the interest.
  subscribe(): void {}

  unsubscribe(): void {}

  interestReady(): null {
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
