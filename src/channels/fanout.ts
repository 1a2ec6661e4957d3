import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import type { BroadcastEnvelope, ChangesEnvelope, ConnectionId } from '../shared/messages.js';
import type { Vsn } from '../shared/serializer.js';
import { ChangesFanout } from './changes-fanout.js';
import { serializerTopic, type BatchSocket, type FanoutSocket } from './fanout-socket.js';
import { encodeFor, messageId } from './frames.js';

export { serializerTopic, writeChanges, type BatchSocket, type FanoutSocket } from './fanout-socket.js';

export interface DeliveryStats {
  deliveries: number;
  bytes: number;
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
  /** Postgres Changes groups with members on this node. */
  readonly changes: ChangesFanout;

  constructor(private readonly app: TemplatedApp) {
    this.changes = new ChangesFanout(app);
  }

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
    this.changes.join(socket, key);
  }

  leaveChanges(socket: BatchSocket, key: string): void {
    this.changes.leave(socket, key);
  }

  /** The events of one batch for a Postgres Changes group; returns the bytes sent (see ChangesFanout). */
  deliverChanges(key: string, subTopic: string, env: ChangesEnvelope): number {
    return this.changes.deliver(key, subTopic, env);
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
