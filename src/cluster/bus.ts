/**
 * The narrow views of the cluster that the state layers (presence replication, tenant ownership, Postgres Changes
 * across nodes) are written against, so they can be tested with a real Redis and no server around them.
 */

/** Node-to-node messages on named channels (Redis pub/sub underneath). Fire and forget: a message may be lost. */
export interface ClusterBus {
  /** Sends `payload` to every node listening on `channel` (this one included when it listens). */
  publish(channel: string, payload: string): void;
  /** Listens on `channel` from now on; resolves once the subscription is in place. */
  listen(channel: string, handler: (payload: string) => void): Promise<void>;
  /** Stops listening on `channel`. */
  unlisten(channel: string): Promise<void>;
}

/** The live nodes of the cluster as this node sees them (membership heartbeats). */
export interface ClusterMembers {
  /** This node's name (NODE_NAME). */
  readonly self: string;
  /** Names of the live nodes, this one included. */
  live(): readonly string[];
  /** Whether the node of that name is live (cheaper than live() on hot paths). */
  isLive(name: string): boolean;
  /** Called when nodes join or leave the live set; returns a function that stops the calls. */
  onChange(listener: (change: { joined: readonly string[]; left: readonly string[] }) => void): () => void;
}
