/**
 * What travels from a publisher to the subscribers of a topic key, on this node or (with a cluster driver) on others.
 * The bottom floor: these types import nothing, so every room can name them without importing upward.
 */

/**
 * A message for the subscribers of a topic. Payloads stay serialized: a JSON message carries its payload as JSON
 * text, a user broadcast its raw bytes, so a fan-out never parses and re-serializes.
 */
export type Envelope =
  | { type: 'json'; event: string; payloadJson: string }
  | { type: 'user'; userEvent: string; encoding: 0 | 1; payload: Uint8Array; metaJson: string | null };

/** One message for the subscribers of a topic key. */
export interface PubSubMessage {
  tenantId: string;
  key: string;
  subTopic: string;
  env: Envelope;
}

/**
 * A connection on this node (Connection.id). Ids are per process: a message that came from another node carries no
 * sender to exclude here.
 */
export type ConnectionId = number;

/**
 * Where node-local messages go: presence diffs, which every node derives from its own presence replica, so they
 * never travel between nodes. Every pub/sub driver is one (PubSub.publishLocal).
 */
export interface LocalPublisher {
  publishLocal(msg: PubSubMessage, exclude: ConnectionId | null): void;
}
