import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { BroadcastEnvelope, ChangesEnvelope, ConnectionId, OutgoingChange } from '../shared/messages.js';
import type { Vsn } from '../shared/serializer.js';
import { ChangeFrames, encodeFor, messageId } from './frames.js';

/** The uWS pub/sub topic of one serializer's subscribers of a topic key. */
export function serializerTopic(vsn: Vsn, key: string): string {
  return vsn === '2.0.0' ? `2|${key}` : `1|${key}`;
}

export interface DeliveryStats {
  deliveries: number;
  bytes: number;
}

/** What the fan-out needs of a socket: its serializer, its uWS socket, and a way to write to it directly. */
export interface FanoutSocket {
  readonly id: ConnectionId;
  readonly vsn: Vsn;
  /** Null until the socket is open. */
  readonly ws: WebSocket<unknown> | null;
  /** Once closed, uWS has dropped the socket's subscriptions itself and the socket may no longer be touched. */
  readonly closed: boolean;
  send(frame: string | Uint8Array): void;
}

/** A socket written to in batches (Postgres Changes): uncounted sends inside one cork, counted once. */
export interface BatchSocket extends FanoutSocket {
  /** Writes a text frame (as text, or as UTF-8 bytes); returns its size, 0 when the socket is gone. */
  sendUncounted(frame: string | Uint8Array): number;
  cork(fn: () => void): void;
  /**
   * False when the socket has fallen too far behind: it has then been told, and its channels are leaving, so it gets
   * nothing more instead of a silent subset (uWS's own publish skips such a socket without a word).
   */
  keepsUp(): boolean;
}

/** The members of one Postgres Changes group on this node that share a serializer, and their frames. */
interface ChangesMembers {
  readonly vsn: Vsn;
  readonly uwsTopic: string;
  readonly sockets: Set<BatchSocket>;
  /** Made on the first delivery, which names the channel topic and form (the same for the whole group). */
  frames: ChangeFrames | null;
}

/**
 * Events of one batch past which a group's members are written to one by one rather than through uWS publish: uWS
 * drains a subscriber every 32 published messages (TopicTree), each drain one corked write that a frame of more
 * than 512 B makes two (a 16 KiB write and a small one), while a socket written to in one cork gets full 16 KiB
 * writes. Below it, one publish per event costs less (no call per socket and event from JavaScript). Measured in
 * bench/RESULTS.md ("Fan-out of a batch").
 */
export const PUBLISH_MAX_EVENTS = 32;

/** Writes Postgres Changes events to one socket in one corked write; returns the bytes written. */
export function writeChanges(socket: BatchSocket, frames: ChangeFrames, items: readonly OutgoingChange[]): number {
  let bytes = 0;
  socket.cork(() => {
    for (const item of items) bytes += socket.sendUncounted(frames.frame(item));
  });
  return bytes;
}

/** Writes frames already encoded to one socket in one corked write; returns the bytes written. */
function writeFrames(socket: BatchSocket, frames: readonly Uint8Array[]): number {
  let bytes = 0;
  socket.cork(() => {
    for (const frame of frames) bytes += socket.sendUncounted(frame);
  });
  return bytes;
}

/**
 * A subscriber served one by one instead of through uWS pub/sub: a channel that must skip messages it already
 * has (replayed on join), which native pub/sub cannot filter per socket. Rare, so the cost stays off the hot path.
 */
interface DirectSubscriber {
  readonly socket: FanoutSocket;
  readonly seenIds: ReadonlySet<string>;
}

/**
 * This node's subscribers by topic key, and delivery to them through uWS native pub/sub: the frame is encoded once
 * per serializer that has subscribers, and uWS skips sockets over their backpressure limit instead of stalling
 * others. The one place that subscribes sockets to uWS topics or publishes to them.
 */
export class Fanout {
  private readonly direct = new Map<string, Set<DirectSubscriber>>();
  /** Sockets that published with `self: false`, by id: pub/sub names the sender to exclude by its id. */
  private readonly senders = new Map<ConnectionId, WebSocket<unknown>>();
  /** Postgres Changes groups with members on this node: by group key, then by serializer. */
  private readonly changes = new Map<string, Record<Vsn, ChangesMembers | null>>();

  constructor(private readonly app: TemplatedApp) {}

  /**
   * A channel starts receiving the messages of its topic key; `seenIds` (replayed on join) makes it a direct
   * subscriber that skips live copies of those.
   */
  join(socket: FanoutSocket, key: string, seenIds: ReadonlySet<string> | null): void {
    if (seenIds !== null) {
      let set = this.direct.get(key);
      if (!set) this.direct.set(key, (set = new Set()));
      set.add({ socket, seenIds });
    } else {
      socket.ws?.subscribe(serializerTopic(socket.vsn, key));
    }
  }

  /** A channel stops receiving its topic key. */
  leave(socket: FanoutSocket, key: string): void {
    const set = this.direct.get(key);
    if (set) {
      for (const sub of set) {
        if (sub.socket === socket) set.delete(sub);
      }
      if (set.size === 0) this.direct.delete(key);
    }
    if (!socket.closed) socket.ws?.unsubscribe(serializerTopic(socket.vsn, key));
  }

  /** A socket starts (stops) receiving a node-local key: the presence receivers of a channel. */
  subscribe(socket: FanoutSocket, key: string): void {
    socket.ws?.subscribe(serializerTopic(socket.vsn, key));
  }

  unsubscribe(socket: FanoutSocket, key: string): void {
    if (!socket.closed) socket.ws?.unsubscribe(serializerTopic(socket.vsn, key));
  }

  /** Takes the socket out of every uWS topic it is in, whatever put it there (a socket cut off as too slow). */
  unsubscribeAll(socket: FanoutSocket): void {
    const ws = socket.ws;
    if (ws === null || socket.closed) return;
    for (const topic of ws.getTopics()) ws.unsubscribe(topic);
  }

  /** The id to exclude a socket's own message by; the socket is remembered until forgetSender. */
  sender(socket: FanoutSocket): ConnectionId {
    if (socket.ws !== null) this.senders.set(socket.id, socket.ws);
    return socket.id;
  }

  forgetSender(id: ConnectionId): void {
    this.senders.delete(id);
  }

  /** A channel's socket starts receiving the events of a Postgres Changes group (a node-local key). */
  joinChanges(socket: BatchSocket, key: string): void {
    let group = this.changes.get(key);
    if (!group) this.changes.set(key, (group = { '1.0.0': null, '2.0.0': null }));
    const members = (group[socket.vsn] ??= { vsn: socket.vsn, uwsTopic: serializerTopic(socket.vsn, key), sockets: new Set(), frames: null });
    members.sockets.add(socket);
    if (!socket.closed) socket.ws?.subscribe(members.uwsTopic);
  }

  leaveChanges(socket: BatchSocket, key: string): void {
    const group = this.changes.get(key);
    const members = group?.[socket.vsn];
    if (!group || !members?.sockets.delete(socket)) return;
    // A closed socket has left its topics already (and may no longer be touched).
    if (!socket.closed) socket.ws?.unsubscribe(members.uwsTopic);
    if (members.sockets.size > 0) return;
    group[socket.vsn] = null;
    if (group['1.0.0'] === null && group['2.0.0'] === null) this.changes.delete(key);
  }

  /**
   * The events of one batch for a group, each frame encoded once per serializer: one uWS publish per event, or past
   * PUBLISH_MAX_EVENTS events each member written to in one corked write; a member alone with its serializer is
   * written to directly. Returns the bytes sent.
   */
  deliverChanges(key: string, subTopic: string, env: ChangesEnvelope): number {
    const group = this.changes.get(key);
    if (!group) return 0;
    // Read again after the first serializer: a socket found too slow there leaves, which may empty the group.
    return this.deliverChangesTo(group['2.0.0'], subTopic, env) + this.deliverChangesTo(group['1.0.0'], subTopic, env);
  }

  private deliverChangesTo(members: ChangesMembers | null, subTopic: string, env: ChangesEnvelope): number {
    if (members === null) return 0;
    // A socket that fell behind is told and leaves (its channel unsubscribes) while it is asked here.
    const keepingUp: BatchSocket[] = [];
    for (const socket of members.sockets) if (socket.keepsUp()) keepingUp.push(socket);
    if (keepingUp.length === 0) return 0;
    const frames = (members.frames ??= new ChangeFrames(members.vsn, `realtime:${subTopic}`, env.legacy));
    if (keepingUp.length === 1) return writeChanges(keepingUp[0]!, frames, env.items);
    let bytes = 0;
    if (env.items.length > PUBLISH_MAX_EVENTS) {
      const encoded = env.items.map((item) => frames.bytes(item));
      // One found too slow while written to gets nothing more (sendUncounted): what it got is a gap-free prefix.
      for (const socket of keepingUp) bytes += writeFrames(socket, encoded);
      return bytes;
    }
    for (const item of env.items) bytes += this.publishText(members.uwsTopic, frames.frame(item));
    return bytes;
  }

  /** Publishes a text frame to a uWS topic; returns the bytes sent (the frame times its subscribers). */
  private publishText(topic: string, frame: string | Uint8Array): number {
    const receivers = this.app.numSubscribers(topic);
    if (receivers === 0) return 0;
    this.app.publish(topic, frame, false);
    return receivers * (typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length);
  }

  /**
   * @param exclude the sending connection when it must not receive its own message (broadcast `self: false`).
   */
  deliver(key: string, channelTopic: string, env: BroadcastEnvelope, exclude: ConnectionId | null): DeliveryStats {
    const stats: DeliveryStats = { deliveries: 0, bytes: 0 };
    const sender = exclude === null ? null : (this.senders.get(exclude) ?? null);
    this.deliverTo('2.0.0', key, channelTopic, env, sender, stats);
    this.deliverTo('1.0.0', key, channelTopic, env, sender, stats);
    const direct = this.direct.get(key);
    if (direct) this.deliverDirect(direct, channelTopic, env, exclude, stats);
    return stats;
  }

  private deliverDirect(subs: Set<DirectSubscriber>, channelTopic: string, env: BroadcastEnvelope, exclude: ConnectionId | null, stats: DeliveryStats): void {
    const id = env.type === 'user' && env.metaJson ? messageId(env.metaJson) : null;
    let v1: string | Uint8Array | null | undefined;
    let v2: string | Uint8Array | null | undefined;
    for (const { socket, seenIds } of subs) {
      if (socket.id === exclude) continue;
      if (id !== null && seenIds.has(id)) continue;
      const frame = socket.vsn === '2.0.0' ? (v2 ??= encodeFor('2.0.0', channelTopic, env)) : (v1 ??= encodeFor('1.0.0', channelTopic, env));
      if (frame === null) continue;
      socket.send(frame);
      stats.deliveries += 1;
      stats.bytes += typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
    }
  }

  private deliverTo(vsn: Vsn, key: string, channelTopic: string, env: BroadcastEnvelope, exclude: WebSocket<unknown> | null, stats: DeliveryStats): void {
    const topic = serializerTopic(vsn, key);
    let receivers = this.app.numSubscribers(topic);
    if (receivers === 0) return;
    const sender = exclude !== null && exclude.isSubscribed(topic) ? exclude : null;
    if (sender) receivers -= 1;
    if (receivers === 0) return;
    const frame = encodeFor(vsn, channelTopic, env);
    if (frame === null) return;
    const isBinary = typeof frame !== 'string';
    if (sender) sender.publish(topic, frame, isBinary);
    else this.app.publish(topic, frame, isBinary);
    stats.deliveries += receivers;
    stats.bytes += receivers * (isBinary ? frame.length : Buffer.byteLength(frame));
  }
}
