import type { ConnectionId, PubSubMessage, Publisher } from '../shared/messages.js';

/** Where a driver hands the messages for this node's subscribers: the channels dispatcher. */
export interface PubSubHandler {
  /**
   * Called synchronously for messages published on this node, in publish order, and later for those of other nodes
   * (in their publish order). `exclude` names the sender by its cluster-unique connection id wherever it arrives.
   */
  deliver(msg: PubSubMessage, exclude: ConnectionId | null): void;
  /** See LocalPublisher.changesRoom and changesDrained. */
  changesRoom?(): Promise<void> | null;
  changesDrained?(): Promise<void> | null;
}

/**
 * How a message reaches the subscribers of its topic key on every node. A driver (this folder: `local.ts`, and the
 * Redis driver of the cluster issue) passes the contract suite in test/cluster/. Channel code publishes and tells it
 * where this node has subscribers; delivery on each node goes through that node's handler.
 */
export interface PubSub extends Publisher {
  /**
   * To the subscribers of `msg.key` on every node with interest in it; this node's handler gets it before the call
   * returns. `exclude`: the sending connection, when it must not receive its own message (broadcast `self: false`).
   */
  publish(msg: PubSubMessage, exclude: ConnectionId | null): void;
  /** To this node's subscribers only (presence diffs), before the call returns. */
  publishLocal(msg: PubSubMessage, exclude: ConnectionId | null): void;
  /** This node has its first subscriber of `key`: messages published for it elsewhere must reach this node now. */
  subscribe(key: string): void;
  /**
   * Resolves once this node's interest in `key` has taken effect cluster-wide (the Redis subscription is confirmed),
   * so a client told it joined misses nothing published elsewhere afterwards; null when there is nothing to wait for
   * (the local driver, or Redis away). Resolves within a bounded time whatever Redis does.
   */
  interestReady(key: string): Promise<void> | null;
  /** This node's last subscriber of `key` is gone. Called once per subscribe. */
  unsubscribe(key: string): void;
  /** Stops: nothing is delivered or sent once it resolves. */
  close(): Promise<void>;
}
