/**
 * One tenant's presence on this node: its CRDT replica, and the way from CRDT changes to presence_diff frames.
 *
 * - Local operations (a channel's track/untrack/close) change the replica and their diff goes out at once.
 * - The same operations accumulate in the replica's delta. The cluster layer ships it to the other nodes
 *   (`takeDelta`, every broadcast period) and feeds theirs in (`mergeRemote`), whose resulting diffs are fanned out
 *   to this node's members. Nothing here knows about Redis.
 * - Diffs always fan out to node-local members only (presence topic keys, see presenceTopicKey): each node derives
 *   its own diffs from its own replica, so a diff never travels between nodes.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { presenceTopicKey } from '../shared/topic-keys.js';
import type { LocalPublisher } from '../shared/messages.js';
import {
  PresenceChanges,
  PresenceReplica,
  type PresenceEntry,
  type PresenceMeta,
  type PresenceState,
  type TrackResult,
} from './crdt.js';

/**
 * A replica id unique to this process and this tenant start: a restarted tenant or node must never reuse the dots
 * of an earlier incarnation (see the PresenceReplica header). It starts with the node's name and a `/` (node names
 * cannot contain one), so every node can tell which replicas die with a node (replicaNode).
 */
export function newReplicaId(node = `${hostname()}-${process.pid}`): string {
  return `${node}/${randomBytes(6).toString('hex')}`;
}

/** The node a replica id names (see newReplicaId); null for ids made otherwise. */
export function replicaNode(replicaId: string): string | null {
  const slash = replicaId.lastIndexOf('/');
  return slash > 0 ? replicaId.slice(0, slash) : null;
}

/** The CRDT topic of a channel: private and public channels of the same name are different rooms. */
export function presenceTopic(isPrivate: boolean, subTopic: string): string {
  return `${isPrivate ? 'private' : 'public'}|${subTopic}`;
}

function splitTopic(topic: string): { isPrivate: boolean; subTopic: string } | null {
  const bar = topic.indexOf('|');
  const ns = topic.slice(0, bar);
  if (bar === -1 || (ns !== 'private' && ns !== 'public')) return null;
  return { isPrivate: ns === 'private', subTopic: topic.slice(bar + 1) };
}

export class TenantPresence {
  readonly replica: PresenceReplica;

  constructor(
    readonly tenantId: string,
    replicaId: string = newReplicaId(),
  ) {
    this.replica = new PresenceReplica(replicaId);
  }

  // ---- local operations (channel glue) ----------------------------------------------------------------------------

  track(topic: string, pid: string, key: string, meta: PresenceMeta): TrackResult {
    return this.replica.track(topic, pid, key, meta);
  }

  untrack(topic: string, pid: string, key: string): PresenceEntry | null {
    return this.replica.untrack(topic, pid, key);
  }

  /** Removes every entry of a closed channel. */
  untrackAll(pid: string): PresenceEntry[] {
    return this.replica.untrackAll(pid);
  }

  /** The presence_state payload of a topic, as JSON text. */
  stateJson(topic: string): string {
    return JSON.stringify(this.replica.list(topic));
  }

  /** Number of tracked entries on this node, all replicas. */
  get size(): number {
    return this.replica.size;
  }

  /**
   * Fans the diffs of `changes` out to the presence members of each changed topic on this node: one presence_diff
   * per topic, encoded once per serializer by the fan-out. Returns the number of diffs published.
   */
  publish(pubsub: LocalPublisher, changes: PresenceChanges): number {
    let published = 0;
    for (const topic of changes.topics()) {
      const diff = changes.diff(topic);
      const where = splitTopic(topic);
      if (diff === null || where === null) continue;
      pubsub.publishLocal(
        {
          tenantId: this.tenantId,
          key: presenceTopicKey(this.tenantId, where.subTopic, where.isPrivate),
          subTopic: where.subTopic,
          env: { type: 'json', event: 'presence_diff', payloadJson: JSON.stringify(diff) },
        },
        null,
      );
      published++;
    }
    return published;
  }

  // ---- replication (cluster layer) --------------------------------------------------------------------------------

  /** This node's presence operations since the last call, for the other nodes (null when there were none). */
  takeDelta(): PresenceState | null {
    return this.replica.takeDelta();
  }

  /** The full state, for a node that joins or has a gap (PresenceReplica.gaps). */
  snapshot(): PresenceState {
    return this.replica.snapshot();
  }

  /**
   * Merges another node's delta or snapshot (already checked with parsePresenceState) and sends the resulting diffs
   * to this node's members.
   */
  mergeRemote(state: PresenceState, pubsub: LocalPublisher): PresenceChanges {
    const changes = this.replica.merge(state);
    this.publish(pubsub, changes);
    return changes;
  }

  /** A node is gone: its entries leave (diffs sent to this node's members) and its late messages are ignored. */
  removeReplica(replicaId: string, pubsub: LocalPublisher): PresenceChanges {
    const changes = this.replica.removeReplica(replicaId);
    this.publish(pubsub, changes);
    return changes;
  }
}
