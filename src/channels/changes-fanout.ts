import type { TemplatedApp } from 'uWebSockets.js';
import type { ChangesEnvelope } from '../shared/messages.js';
import type { Vsn } from '../shared/serializer.js';
import { serializerTopic, writeChanges, type BatchSocket } from './fanout-socket.js';
import { ChangeFrames } from './frames.js';

/**
 * uWS's cork buffer (LoopData::CORK_BUFFER_SIZE): a subscriber drained by uWS pub/sub is written to in one cork, and
 * a cork that outgrows the buffer moves into the socket's own buffer (grown zero-filled, then copied) and writes
 * twice.
 */
const CORK_BUFFER_BYTES = 16 * 1024;

/**
 * Frames published for one group per loop turn. uWS queues at most 32 published messages per subscriber and drains it
 * early (one write, most often with a spill) when a 33rd comes; a margin leaves room for what else a member gets.
 */
export const TURN_MAX_FRAMES = 30;

/**
 * Frames waiting on this node past which a changes engine waits before handing out its next batch (see room()): a few
 * dozen loop turns of work, so the backlog stays in the replication connection rather than in memory.
 */
export const PACE_ROOM_FRAMES = 1024;

/**
 * Frames waiting for one group past which the rest is published at once: the bound for what no engine here can hold
 * back (events relayed from the owner in a cluster).
 */
export const PACE_BACKLOG_FRAMES = 8192;

/** The size of a server-to-client WebSocket frame (unmasked header) around a payload of `length` bytes. */
export function framedSize(length: number): number {
  return length + (length < 126 ? 2 : length < 65_536 ? 4 : 10);
}

/** What waits for a later loop turn in a group, in order: the rest of a batch, or a member coming or going. */
type Pending = { readonly kind: 'frames'; readonly frames: readonly Uint8Array[]; next: number } | { readonly kind: 'join' | 'leave'; readonly socket: BatchSocket };

/** The members of one Postgres Changes group on this node that share a serializer, and what is queued for them. */
interface ChangesMembers {
  readonly key: string;
  readonly vsn: Vsn;
  readonly uwsTopic: string;
  readonly sockets: Set<BatchSocket>;
  /** Made on the first delivery, which names the channel topic and form (the same for the whole group). */
  frames: ChangeFrames | null;
  readonly pending: Pending[];
  /** Frames ever queued, and ever published from the queue (their difference is what waits; drained() compares them). */
  queuedTotal: number;
  sentTotal: number;
  /** Published in the current loop turn: what uWS will drain for each member at the end of it. */
  turnFrames: number;
  turnBytes: number;
  /** The first pace turn that may count the turn's frames as drained by uWS (set by publishRun). */
  drainedFrom: number;
}

/**
 * Postgres Changes groups on this node and delivery to them through uWS native pub/sub, paced so that uWS writes each
 * member once per loop turn: a group's frames are published up to what fits uWS's cork buffer (and its per-subscriber
 * queue) per turn, the rest of a batch in the next turns, in order. One uWS publish per frame and serializer, no call
 * per socket, and each member's write is one full cork, where publishing a whole batch would make uWS drain every
 * member each 32 frames with a spilled cork, and writing each member in its own cork costs a call per frame and
 * socket (bench/RESULTS.md, "Target 3"). Members joining or leaving while frames wait are queued with them, so a member
 * gets exactly the batches delivered while it was one. A position is confirmed only once the frames before it left the
 * queue (drained()), and the engine holds its next batch while the queue is over its bound (room()).
 */
export class ChangesFanout {
  private readonly groups = new Map<string, Record<Vsn, ChangesMembers | null>>();
  /** Groups with something waiting; each pace turn takes them up. */
  private readonly active = new Set<ChangesMembers>();
  /**
   * Groups that published since their count was last reset. Counts are reset by pace turns only, so a group whose
   * pace turns stopped keeps its count: past a turn's worth it queues, and the pace turn that takes that up resets it.
   */
  private readonly published = new Set<ChangesMembers>();
  /** The number of the next pace turn, counted when it is scheduled; 0 until the first. */
  private paceTurn = 0;
  private paceScheduled = false;
  /** Frames waiting, over all groups. */
  private waiting = 0;
  private roomWaiters: (() => void)[] = [];
  /** drained() callers, each with the queued totals of the groups that held frames when it asked. */
  private drainWaiters: { marks: [ChangesMembers, number][]; done: () => void }[] = [];
  /** True until the callback that scheduled the pace turn returns. */
  private freshPace = false;

  constructor(private readonly app: TemplatedApp) {}

  /** A channel's socket starts receiving the events of a group (a node-local key). */
  join(socket: BatchSocket, key: string): void {
    let group = this.groups.get(key);
    if (!group) this.groups.set(key, (group = { '1.0.0': null, '2.0.0': null }));
    const members = (group[socket.vsn] ??= newMembers(key, socket.vsn));
    members.sockets.add(socket);
    if (members.pending.length > 0) members.pending.push({ kind: 'join', socket });
    else if (!socket.closed) socket.ws?.subscribe(members.uwsTopic);
  }

  leave(socket: BatchSocket, key: string): void {
    const members = this.groups.get(key)?.[socket.vsn];
    if (!members?.sockets.delete(socket)) return;
    // A closed socket has left its topics already (and may no longer be touched). uWS forgets what it has not yet
    // drained for a socket that leaves its last topic, so one leaves only once this turn's frames are written.
    if (!socket.closed) {
      if (members.pending.length > 0 || members.turnFrames > 0) {
        members.pending.push({ kind: 'leave', socket });
        this.markActive(members);
      } else {
        socket.ws?.unsubscribe(members.uwsTopic);
      }
    }
    this.dropIfIdle(members);
  }

  /** Groups (by key) with members or queued frames on this node. */
  get groupCount(): number {
    return this.groups.size;
  }

  /** Frames waiting for later loop turns, over all groups. */
  get waitingFrames(): number {
    return this.waiting;
  }

  /** Null while fewer than PACE_ROOM_FRAMES frames wait; else settles once they are back under it. */
  room(): Promise<void> | null {
    if (this.waiting < PACE_ROOM_FRAMES) return null;
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Null when no frames wait; else settles once every frame waiting now has been published. */
  drained(): Promise<void> | null {
    if (this.waiting === 0) return null;
    const marks: [ChangesMembers, number][] = [];
    for (const members of this.active) if (members.queuedTotal > members.sentTotal) marks.push([members, members.queuedTotal]);
    return new Promise((done) => this.drainWaiters.push({ marks, done }));
  }

  /**
   * The events of one batch for a group, each frame encoded once per serializer; a member alone in keeping up with
   * nothing queued before it is written to directly. Returns the bytes sent or queued for the members.
   */
  deliver(key: string, subTopic: string, env: ChangesEnvelope): number {
    const group = this.groups.get(key);
    if (!group) return 0;
    // Read again after the first serializer: a socket found too slow there leaves, which may empty the group.
    return this.deliverTo(group['2.0.0'], subTopic, env) + this.deliverTo(group['1.0.0'], subTopic, env);
  }

  private deliverTo(members: ChangesMembers | null, subTopic: string, env: ChangesEnvelope): number {
    if (members === null) return 0;
    // A socket that fell behind is told and leaves (its channel unsubscribes) while it is asked here.
    let keepingUp = 0;
    let alone: BatchSocket | null = null;
    for (const socket of [...members.sockets]) {
      if (!socket.keepsUp()) continue;
      keepingUp += 1;
      alone = socket;
    }
    if (keepingUp === 0) return 0;
    const frames = (members.frames ??= new ChangeFrames(members.vsn, `realtime:${subTopic}`, env.legacy));
    // Its send drains what uWS holds of this turn's publishes first, so the order stays.
    if (keepingUp === 1 && members.pending.length === 0) return writeChanges(alone!, frames, env.items);
    const encoded = env.items.map((item) => frames.bytes(item));
    let size = 0;
    for (const frame of encoded) size += frame.length;
    const next = members.pending.length === 0 ? this.publishRun(members, encoded, 0) : 0;
    if (next < encoded.length) {
      const queued = encoded.length - next;
      members.pending.push({ kind: 'frames', frames: encoded, next });
      members.queuedTotal += queued;
      this.waiting += queued;
      this.markActive(members);
      if (members.queuedTotal - members.sentTotal > PACE_BACKLOG_FRAMES) {
        this.publishPending(members, Infinity);
        this.wakeWaiters();
      }
    }
    return size * keepingUp;
  }

  /** Publishes frames from `from` while the group's turn allows (at least one when it published none); returns where it stopped. */
  private publishRun(members: ChangesMembers, frames: readonly Uint8Array[], from: number, limit = TURN_MAX_FRAMES): number {
    let i = from;
    for (; i < frames.length; i++) {
      const framed = framedSize(frames[i]!.length);
      if (limit !== Infinity && members.turnFrames > 0 && (members.turnFrames >= limit || members.turnBytes + framed >= CORK_BUFFER_BYTES)) break;
      this.app.publish(members.uwsTopic, frames[i]!, false);
      members.turnFrames += 1;
      members.turnBytes += framed;
    }
    if (i > from) {
      // A pace turn scheduled in an earlier callback may run among this turn's immediates, before uWS drains what is
      // published now; one scheduled later (or in this callback) runs after that drain (uWS drains before Node's
      // immediates, and an immediate scheduled from an immediate waits for the next turn).
      members.drainedFrom = this.paceScheduled && this.freshPace ? this.paceTurn : this.paceTurn + 1;
      this.published.add(members);
    }
    return i;
  }

  /** Takes up what waits in a group, in order, while the turn allows (`Infinity`: all of it). */
  private publishPending(members: ChangesMembers, limit: number): void {
    const { pending } = members;
    while (pending.length > 0) {
      const head = pending[0]!;
      if (head.kind === 'frames') {
        const next = this.publishRun(members, head.frames, head.next, limit);
        members.sentTotal += next - head.next;
        this.waiting -= next - head.next;
        head.next = next;
        if (next < head.frames.length) return;
      } else if (head.kind === 'join') {
        // A member found too slow meanwhile has been told and gets nothing more.
        if (!head.socket.closed && head.socket.keepsUp()) head.socket.ws?.subscribe(members.uwsTopic);
      } else if (members.turnFrames > 0) {
        return;
      } else if (!head.socket.closed) {
        head.socket.ws?.unsubscribe(members.uwsTopic);
      }
      pending.shift();
    }
  }

  /** Something waits in the group: the next pace turn takes it up. */
  private markActive(members: ChangesMembers): void {
    this.active.add(members);
    this.schedulePace();
  }

  private schedulePace(): void {
    if (this.paceScheduled) return;
    this.paceScheduled = true;
    this.paceTurn += 1;
    const turn = this.paceTurn;
    setImmediate(() => this.pace(turn));
    this.freshPace = true;
    queueMicrotask(() => (this.freshPace = false));
  }

  /**
   * A new loop turn: uWS has drained what was published before this was scheduled (its pub/sub drain runs at the
   * end of each turn, before the immediates scheduled during it), so each active group starts a new run.
   */
  private pace(turn: number): void {
    this.paceScheduled = false;
    for (const members of this.published) {
      if (members.drainedFrom > turn) continue;
      members.turnFrames = 0;
      members.turnBytes = 0;
      this.published.delete(members);
    }
    const groups = [...this.active];
    this.active.clear();
    for (const members of groups) {
      if (members.pending.length === 0) {
        this.dropIfIdle(members);
        continue;
      }
      // Published in this turn already (before uWS drained it): the next pace turn.
      if (members.turnFrames > 0) {
        this.markActive(members);
        continue;
      }
      // Members that fell behind are told and leave before more is queued for them.
      for (const socket of [...members.sockets]) socket.keepsUp();
      this.publishPending(members, TURN_MAX_FRAMES);
      if (members.pending.length > 0) this.markActive(members);
      // Its last members may have left with what waited (their leaving was queued).
      else this.dropIfIdle(members);
    }
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    if (this.waiting < PACE_ROOM_FRAMES && this.roomWaiters.length > 0) for (const wake of this.roomWaiters.splice(0)) wake();
    if (this.drainWaiters.length === 0) return;
    this.drainWaiters = this.drainWaiters.filter((w) => {
      if (w.marks.some(([members, mark]) => members.sentTotal < mark)) return true;
      w.done();
      return false;
    });
  }

  private dropIfIdle(members: ChangesMembers): void {
    if (members.sockets.size > 0 || members.pending.length > 0) return;
    this.published.delete(members);
    const group = this.groups.get(members.key);
    if (!group || group[members.vsn] !== members) return;
    group[members.vsn] = null;
    if (group['1.0.0'] === null && group['2.0.0'] === null) this.groups.delete(members.key);
  }
}

function newMembers(key: string, vsn: Vsn): ChangesMembers {
  return {
    key,
    vsn,
    uwsTopic: serializerTopic(vsn, key),
    sockets: new Set(),
    frames: null,
    pending: [],
    queuedTotal: 0,
    sentTotal: 0,
    turnFrames: 0,
    turnBytes: 0,
    drainedFrom: 0,
  };
}
