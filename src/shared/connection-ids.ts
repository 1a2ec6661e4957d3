import type { ConnectionId } from './messages.js';

/**
 * Connection ids unique across the nodes of a cluster without asking anyone: a random 20-bit node prefix above a
 * 32-bit per-process counter (52 bits, exact in a double). A broadcast carries its sender's id to every node
 * (`self: false`), and presence names its entries by it, so two nodes must not hand out the same id: with n nodes the
 * chance two prefixes meet is about n²/2²¹ (3 nodes: 4 in a million; 30 nodes: 2 in 10,000 at each start).
 */
export class ConnectionIds {
  private counter = 0;
  private readonly base: number;

  constructor(prefix: number) {
    if (!Number.isInteger(prefix) || prefix < 1 || prefix >= 2 ** 20) throw new RangeError('prefix must be in [1, 2^20)');
    this.base = prefix * 2 ** 32;
  }

  next(): ConnectionId {
    this.counter = (this.counter + 1) % 2 ** 32;
    return this.base + this.counter;
  }
}

/** This process's ids; the prefix is drawn once, at random (Math.random is enough: it is not a secret). */
export const connectionIds = new ConnectionIds(1 + Math.floor(Math.random() * (2 ** 20 - 1)));
