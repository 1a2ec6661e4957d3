import type { PubSubHandler } from '../cluster/pubsub.js';
import type { Metrics } from '../observability/metrics.js';
import { replayEnvelope, type ReplayedMessage } from '../replication/replay.js';
import type { ConnectionId, OutgoingChange, PubSubMessage } from '../shared/messages.js';
import { isPresenceTopicKey } from '../shared/topic-keys.js';
import { shutdownTopic, trafficLimitHit } from '../tenants/limits.js';
import type { TenantRuntime } from '../tenants/tenant.js';
import { writeChanges, type BatchSocket, type Fanout, type FanoutSocket } from './fanout.js';
import { encodeFor, type ChangeFrames } from './frames.js';
import { StorageEventGate } from './storage-events.js';

/** Where the dispatcher finds the tenants running on this node (the registry); it never starts one. */
export interface RunningTenants {
  peek(tenantId: string): TenantRuntime | null;
}

/**
 * The one way from a published message to this node's sockets, whatever its kind: pub/sub hands every message for
 * local subscribers here (as Phoenix's Channel.Server.dispatch/3 and centrifuge's BrokerEventHandler are handed
 * theirs), the dispatcher applies the tenant's limits and counters for that kind, and the fan-out encodes it once
 * per serializer and publishes it. Messages for one socket (replayed at join, Postgres Changes owed to a joining
 * subscriber) come the same way.
 */
export class Dispatcher implements PubSubHandler {
  /** Subscribers of private `storage:<bucket>` topics, who get each event only if they may read its object. */
  readonly storageEvents: StorageEventGate;

  constructor(
    private readonly tenants: RunningTenants,
    private readonly metrics: Metrics,
    private readonly fanout: Fanout,
  ) {
    this.storageEvents = new StorageEventGate((id) => tenants.peek(id));
  }

  /** A message for the subscribers of `msg.key` on this node; `exclude` is the sender when it must not get it. */
  deliver(msg: PubSubMessage, exclude: ConnectionId | null): void {
    const { fanout, metrics } = this;
    const env = msg.env;
    if (env.type === 'changes') {
      // Postgres Changes are paced and counted by their engine before they are published (it holds, never drops).
      const bytes = fanout.deliverChanges(msg.key, msg.subTopic, env);
      if (bytes > 0) metrics.forTenant(msg.tenantId).outputBytes.inc(bytes);
      return;
    }
    const tenant = this.tenants.peek(msg.tenantId);
    if (isPresenceTopicKey(msg.key)) {
      // presence_diff (presence issue): counts against the presence rate, not the message rate, and is not held
      // back by the message-rate limiter (presence has its own, checked at track and at presence_state).
      const stats = fanout.deliver(msg.key, `realtime:${msg.subTopic}`, env, exclude);
      tenant?.presenceEvents.add(stats.deliveries);
      metrics.channelPresenceEvents.inc({ tenant: msg.tenantId }, stats.deliveries);
      metrics.outputBytes.inc({ tenant: msg.tenantId }, stats.bytes);
      return;
    }
    if (tenant) {
      const hit = trafficLimitHit(tenant);
      if (hit) return shutdownTopic(tenant, msg.key, hit.message, hit.code);
    }
    // Checked per event and subscriber, then written in order by the gate (which counts what it sends).
    if (this.storageEvents.enqueue(msg)) return;
    const stats = fanout.deliver(msg.key, `realtime:${msg.subTopic}`, env, exclude);
    if (stats.deliveries === 0) return;
    tenant?.events.add(stats.deliveries);
    tenant?.bytes.add(stats.bytes);
    const series = metrics.forTenant(msg.tenantId);
    series.events.inc(stats.deliveries);
    series.outputBytes.inc(stats.bytes);
  }

  changesRoom(): Promise<void> | null {
    return this.fanout.changes.room();
  }

  changesDrained(): Promise<void> | null {
    return this.fanout.changes.drained();
  }

  /**
   * Broadcasts replayed to a channel that just joined, oldest first; binary ones are skipped for V1 sockets. Returns
   * how many went out.
   */
  replay(socket: FanoutSocket, channelTopic: string, messages: readonly ReplayedMessage[]): number {
    let pushed = 0;
    for (const m of messages) {
      const frame = encodeFor(socket.vsn, channelTopic, replayEnvelope(m));
      if (frame === null) continue;
      socket.send(frame);
      pushed++;
    }
    return pushed;
  }

  /** Postgres Changes owed to one subscriber that is joining (committed before it could join its group). */
  sendChanges(socket: BatchSocket & { countOutput(bytes: number): void }, frames: ChangeFrames, items: readonly OutgoingChange[]): void {
    // One counter update for the whole batch: prom-client's inc is not free at hundreds of thousands of frames/s.
    socket.countOutput(writeChanges(socket, frames, items));
  }
}
