/**
 * Presence across nodes: every node's replica of a tenant's presence CRDT converges on the same state.
 *
 * - Deltas: each tick (CLUSTER_PRESENCE_BATCH_MS) every running tenant's local operations since the last tick go
 *   out as one delta, numbered per replica (1, 2, 3...).
 * - Gaps: a receiver that sees a replica's number jump (a lost message), or hears of a replica first in the middle
 *   of its numbers, asks that node for a snapshot; a beacon of each replica's last number every BEACON_MS reveals a
 *   lost last delta of a replica that went quiet.
 * - Catch-up: a tenant that starts on a node asks every node running it for a snapshot. A snapshot goes out in pieces
 *   of bounded size (crdt-chunks.ts), so thousands of presences never make one multi-megabyte message; a receiver
 *   merges each piece as it comes and counts the snapshot's number as merged only once it has every piece.
 * - Death: when membership says a node left, the replicas whose ids name it (newReplicaId) are removed here, so
 *   their entries leave as presence_diff on this node. A removed replica heard from again while its node is live
 *   is accepted again and asked for a snapshot.
 *
 * Merging is the CRDT's lattice join, so duplicated, reordered and late messages cannot make replicas disagree;
 * numbering only decides when to ask for a snapshot. Messages are JSON; a malformed one is dropped whole.
 */
import type { ClusterBus, ClusterMembers } from '../cluster/bus.js';
import type { Logger } from '../observability/logger.js';
import type { LocalPublisher } from '../shared/messages.js';
import { parsePresenceState, type PresenceState } from './crdt.js';
import { splitState } from './crdt-chunks.js';
import { replicaNode, type TenantPresence } from './tenant-presence.js';

/** How often each replica's last delta number is announced, so a lost last delta is noticed. */
const BEACON_MS = 2000;
/** A snapshot asked of a node for a tenant is not asked again sooner than this. */
const WANT_AGAIN_MS = 1000;
/** Bytes of presence state (JSON) per snapshot message, about. */
const SNAPSHOT_PIECE_BYTES = 64 * 1024;
/** Most pieces a snapshot is accepted in (a bound on what a receiver keeps track of). */
const MAX_PIECES = 100_000;

export interface PresenceSyncOptions {
  bus: ClusterBus;
  members: ClusterMembers;
  /** A tenant's Redis channel (with the cluster's key prefix), listened to while the tenant runs here. */
  channel: (tenant: string) => string;
  /** The presence replicas of the tenants running on this node. */
  running: () => Iterable<TenantPresence>;
  /** Where the diffs of merged changes go (this node's members). */
  publisher: LocalPublisher;
  /** Milliseconds between batches of deltas. */
  batchMs: number;
  log: Logger;
  /** Counts messages sent and received (metrics). */
  onMessage?: (direction: 'out' | 'in') => void;
  /** Bytes of state per snapshot message, about (default 64 KiB; tests use less). */
  snapshotPieceBytes?: number;
}

type Message =
  | { t: 'delta'; n: string; tenant: string; r: string; seq: number; s: PresenceState }
  /** Piece `part` (from 0) of `parts` of the snapshot `id` of replica `r`. */
  | { t: 'snap'; n: string; tenant: string; r: string; seq: number; s: PresenceState; id: string; part: number; parts: number }
  | { t: 'want'; n: string; tenant: string; to: string | null }
  | { t: 'beacon'; n: string; tenant: string; r: string; seq: number };

/** What this node knows of one tenant's replication. */
class TenantSync {
  /** Deltas this replica sent so far. */
  seq = 0;
  /** Other replicas: the highest delta number merged. */
  readonly peers = new Map<string, number>();
  /** node -> when a snapshot was last asked of it (`*` = of every node). */
  readonly asked = new Map<string, number>();
  /** Snapshots of other replicas being received in pieces: which pieces were merged. */
  readonly pieces = new Map<string, { id: string; got: Set<number> }>();

  constructor(readonly presence: TenantPresence) {}
}

export class PresenceSync {
  private readonly tenants = new Map<string, TenantSync>();
  private timer: NodeJS.Timeout | null = null;
  private lastBeacon = 0;
  private stopMembers: (() => void) | null = null;
  /** Snapshots sent by this node: makes each one's id unique. */
  private snapshots = 0;

  constructor(private readonly opts: PresenceSyncOptions) {}

  async start(): Promise<void> {
    this.stopMembers = this.opts.members.onChange(({ left }) => {
      for (const node of left) this.nodeLeft(node);
    });
    this.timer = setInterval(() => this.tick(), this.opts.batchMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopMembers?.();
    // Last operations go out, so other nodes do not wait for this node's death to see them.
    this.tick();
    await Promise.all([...this.tenants.keys()].map((tenant) => this.opts.bus.unlisten(this.opts.channel(tenant)).catch(() => undefined)));
  }

  /** Ships every running tenant's delta; asks for catch-up for tenants new here; beacons now and then. */
  tick(now = Date.now()): void {
    const seen = new Set<string>();
    const beacon = now - this.lastBeacon >= BEACON_MS;
    if (beacon) this.lastBeacon = now;
    for (const presence of this.opts.running()) {
      seen.add(presence.tenantId);
      let sync = this.tenants.get(presence.tenantId);
      if (sync?.presence !== presence) {
        // A tenant (re)started here: a new replica, which learns the others' state from their snapshots. Its channel's
        // SUBSCRIBE is written before the request (answers come a round trip later; one missed is asked for again
        // when a beacon shows it).
        if (!this.tenants.has(presence.tenantId)) {
          this.opts.bus.listen(this.opts.channel(presence.tenantId), (payload) => this.receive(payload)).catch((err: unknown) =>
            this.opts.log.debug({ err }, 'presence channel not listened to yet (Redis away): on reconnect'),
          );
        }
        this.tenants.set(presence.tenantId, (sync = new TenantSync(presence)));
        this.want(sync, null, now);
      }
      const delta = presence.takeDelta();
      if (delta !== null) {
        sync.seq++;
        this.send({ t: 'delta', n: this.self, tenant: presence.tenantId, r: presence.replica.replicaId, seq: sync.seq, s: delta });
      } else if (beacon && sync.seq > 0) {
        this.send({ t: 'beacon', n: this.self, tenant: presence.tenantId, r: presence.replica.replicaId, seq: sync.seq });
      }
    }
    for (const tenant of [...this.tenants.keys()]) {
      if (seen.has(tenant)) continue;
      this.tenants.delete(tenant);
      void this.opts.bus.unlisten(this.opts.channel(tenant)).catch(() => undefined);
    }
  }

  /** Handles one message from the bus (public for tests that carry messages themselves). */
  receive(payload: string, now = Date.now()): void {
    let msg: Message;
    try {
      msg = parseMessage(payload);
    } catch (err) {
      this.opts.log.warn({ err, error_code: 'PresenceSyncMalformed' }, 'dropped a malformed presence message from another node');
      return;
    }
    if (msg.n === this.self) return;
    this.opts.onMessage?.('in');
    const sync = this.tenants.get(msg.tenant);
    // Tenants not running here have no replica to keep: they catch up when they start.
    if (!sync) return;
    const { presence } = sync;
    if (msg.t === 'want') {
      if (msg.to !== null && msg.to !== this.self) return;
      this.sendSnapshot(sync);
      return;
    }
    if (msg.r === presence.replica.replicaId) return;
    // A node that left (or is not known to have joined yet) is not listened to: what it sent late would bring back
    // entries this node already dropped. Once it is a member, its next beacon leads to a snapshot.
    if (!this.opts.members.isLive(msg.n)) return;
    if (presence.replica.isRemoved(msg.r)) {
      // Heard from a replica given up for dead while its node is a member again: accepted anew, from a snapshot.
      presence.replica.reviveReplica(msg.r);
      sync.peers.delete(msg.r);
    }
    const known = sync.peers.get(msg.r);
    if (msg.t === 'beacon') {
      if (known === undefined || known < msg.seq) this.want(sync, msg.n, now);
      return;
    }
    if (msg.t === 'delta') {
      if (known !== undefined && msg.seq <= known) return;
      // Heard first mid-stream, or a number skipped: merge what came and ask for the whole.
      if ((known ?? 0) + 1 !== msg.seq) this.want(sync, msg.n, now);
    }
    presence.mergeRemote(msg.s, this.opts.publisher);
    if (msg.t === 'snap' && !this.wholeSnapshot(sync, msg)) return;
    // A snapshot covers every delta its replica had sent when it was taken.
    sync.peers.set(msg.r, Math.max(known ?? 0, msg.seq));
  }

  /** Whether a snapshot piece completes its snapshot (every piece of it merged here). */
  private wholeSnapshot(sync: TenantSync, msg: Extract<Message, { t: 'snap' }>): boolean {
    if (msg.parts === 1) return true;
    let pending = sync.pieces.get(msg.r);
    // A newer snapshot of the replica replaces one still missing pieces (lost: a later beacon asks again).
    if (pending?.id !== msg.id) sync.pieces.set(msg.r, (pending = { id: msg.id, got: new Set() }));
    pending.got.add(msg.part);
    if (pending.got.size < msg.parts) return false;
    sync.pieces.delete(msg.r);
    return true;
  }

  private sendSnapshot(sync: TenantSync): void {
    const { presence } = sync;
    const pieces = splitState(presence.snapshot(), this.opts.snapshotPieceBytes ?? SNAPSHOT_PIECE_BYTES);
    const id = `${this.self}:${++this.snapshots}`;
    pieces.forEach((s, part) =>
      this.send({ t: 'snap', n: this.self, tenant: presence.tenantId, r: presence.replica.replicaId, seq: sync.seq, s, id, part, parts: pieces.length }),
    );
  }

  /** A node left the cluster: the entries of its replicas leave every tenant here. */
  nodeLeft(node: string): void {
    if (node === this.self) return;
    for (const sync of this.tenants.values()) {
      for (const replica of Object.keys(sync.presence.replica.versionVector())) {
        if (replicaNode(replica) !== node) continue;
        sync.presence.removeReplica(replica, this.opts.publisher);
        sync.peers.delete(replica);
      }
      for (const replica of [...sync.peers.keys()]) if (replicaNode(replica) === node) sync.peers.delete(replica);
    }
  }

  private get self(): string {
    return this.opts.members.self;
  }

  private want(sync: TenantSync, node: string | null, now: number): void {
    const key = node ?? '*';
    if (now - (sync.asked.get(key) ?? -Infinity) < WANT_AGAIN_MS) return;
    sync.asked.set(key, now);
    this.send({ t: 'want', n: this.self, tenant: sync.presence.tenantId, to: node });
  }

  private send(msg: Message): void {
    this.opts.onMessage?.('out');
    this.opts.bus.publish(this.opts.channel(msg.tenant), JSON.stringify(msg));
  }
}

const isName = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= 300;
const isSeq = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Checks a message from another node; throws a TypeError on anything malformed. */
export function parseMessage(payload: string): Message {
  const m = JSON.parse(payload) as Record<string, unknown>;
  if (typeof m !== 'object' || m === null || !isName(m.n) || !isName(m.tenant)) throw new TypeError('presence message without node or tenant');
  switch (m.t) {
    case 'want':
      if (m.to !== null && !isName(m.to)) throw new TypeError('presence want with a bad target');
      return { t: 'want', n: m.n, tenant: m.tenant, to: m.to };
    case 'beacon':
      if (!isName(m.r) || !isSeq(m.seq)) throw new TypeError('presence beacon without replica or number');
      return { t: 'beacon', n: m.n, tenant: m.tenant, r: m.r, seq: m.seq };
    case 'delta':
      if (!isName(m.r) || !isSeq(m.seq)) throw new TypeError('presence state without replica or number');
      return { t: m.t, n: m.n, tenant: m.tenant, r: m.r, seq: m.seq, s: parsePresenceState(m.s) };
    case 'snap': {
      if (!isName(m.r) || !isSeq(m.seq)) throw new TypeError('presence state without replica or number');
      const parts = m.parts;
      if (!isName(m.id) || !isSeq(m.part) || !isSeq(parts) || parts < 1 || parts > MAX_PIECES || m.part >= parts) throw new TypeError('presence snapshot piece without id or position');
      return { t: 'snap', n: m.n, tenant: m.tenant, r: m.r, seq: m.seq, s: parsePresenceState(m.s), id: m.id, part: m.part, parts };
    }
    default:
      throw new TypeError('unknown presence message');
  }
}
