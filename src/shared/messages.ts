/**
 * What travels from a publisher to the subscribers of a topic key, on this node or (with a cluster driver) on others.
 * The bottom floor: these types import nothing, so every room can name them without importing upward.
 */

/**
 * A broadcast for the subscribers of a topic (client, REST, database, replayed) or a presence diff. Payloads stay
 * serialized: a JSON message carries its payload as JSON text, a user broadcast its raw bytes, so a fan-out never
 * parses and re-serializes.
 */
export type BroadcastEnvelope =
  | { type: 'json'; event: string; payloadJson: string }
  | { type: 'user'; userEvent: string; encoding: 0 | 1; payload: Uint8Array; metaJson: string | null };

/**
 * One postgres_changes event as handed to subscribers. Every subscriber that gets the same payload gets the same
 * object, so a frame is encoded once per (serializer, topic, event) however many sockets it goes to: `frames`
 * caches them for the duration of the delivery.
 */
export interface OutgoingChange {
  /** INSERT, UPDATE or DELETE: the event name of the legacy topic form. */
  readonly type: string;
  /** The `data` object as JSON text. */
  readonly data: string;
  /** The `ids` array as JSON text; null for the legacy topic form, whose payload is the bare data object. */
  readonly idsJson: string | null;
  /** The commit record's WAL position of the event's transaction, when known (what a subscriber got so far). */
  readonly commitLsn?: bigint;
  frames?: { key: string; frame: string | Uint8Array }[];
}

/**
 * Postgres Changes events of one transaction batch for one group of identical subscribers, in commit order: each
 * carries its rendered payload and the ids of the subscriptions it matched. `legacy`: the topic form whose event is
 * the change type and whose payload is the bare data.
 */
export interface ChangesEnvelope {
  type: 'changes';
  legacy: boolean;
  items: readonly OutgoingChange[];
}

/** Whatever reaches subscribers through pub/sub. */
export type Envelope = BroadcastEnvelope | ChangesEnvelope;

/** One message for the subscribers of a topic key. */
export interface PubSubMessage {
  tenantId: string;
  key: string;
  subTopic: string;
  env: Envelope;
}

/**
 * A connection (Connection.id), unique in the cluster (shared/connection-ids.ts): a message from another node
 * carries its sender's id, which matches no connection here.
 */
export type ConnectionId = number;

/**
 * Where node-local messages go: presence diffs, which every node derives from its own presence replica, so they
 * never travel between nodes. Every pub/sub driver is one (PubSub.publishLocal).
 */
export interface LocalPublisher {
  publishLocal(msg: PubSubMessage, exclude: ConnectionId | null): void;
  /**
   * Null when this node's fan-out takes Postgres Changes as they come; else settles once the frames it paces over
   * loop turns are back under their bound (a changes engine waits for it before handing out its next batch).
   */
  changesRoom?(): Promise<void> | null;
  /**
   * Null when this node's fan-out holds no Postgres Changes frames for later loop turns; else settles once the ones it
   * holds now are published (a position is confirmed to Postgres only after its frames left, see ClusterAck).
   */
  changesDrained?(): Promise<void> | null;
}

/** Where messages are published: to every node with subscribers, or to this node only. Every pub/sub driver is one. */
export interface Publisher extends LocalPublisher {
  publish(msg: PubSubMessage, exclude: ConnectionId | null): void;
}
