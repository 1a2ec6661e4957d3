import type { BroadcastEnvelope, PubSubMessage } from '../shared/messages.js';
import { eventObject, visibleStorageEvents, type StorageEventObject } from '../tenants/storage-authorization.js';
import type { TenantRuntime } from '../tenants/tenant.js';
import type { FanoutSocket } from './fanout.js';
import { encodeFor } from './frames.js';

/** A subscriber of a private `storage:<bucket>` topic: its socket (conn), and its current claims (they change on access_token). */
export interface StorageEventMember {
  readonly conn: FanoutSocket;
  readonly closed: boolean;
  readonly claims: Record<string, unknown>;
}

/** Events checked in one transaction at most: bounds the transaction while a burst waits. */
const MAX_BATCH = 100;

/** Events waiting per topic while the database is slow; past it new ones are dropped (and logged) rather than kept. */
const MAX_PENDING = 10_000;

interface KeyState {
  members: Set<StorageEventMember>;
  pending: PubSubMessage[];
  running: boolean;
}

/**
 * Storage events of private `storage:<bucket>` topics reach a subscriber only when it may read the event's object
 * (src/tenants/storage-authorization.ts): they bypass uWS pub/sub, and each batch of a topic's events is checked for
 * the topic's distinct claims on this node in one rolled-back transaction, then written to each socket in order.
 * One batch per topic at a time, so every socket gets its events in commit order.
 */
export class StorageEventGate {
  private readonly keys = new Map<string, KeyState>();

  constructor(private readonly peek: (tenantId: string) => TenantRuntime | null) {}

  join(key: string, member: StorageEventMember): void {
    let state = this.keys.get(key);
    if (!state) this.keys.set(key, (state = { members: new Set(), pending: [], running: false }));
    state.members.add(member);
  }

  leave(key: string, member: StorageEventMember): void {
    const state = this.keys.get(key);
    if (!state) return;
    state.members.delete(member);
    if (state.members.size === 0 && !state.running) this.keys.delete(key);
  }

  /** False when nobody here listens to the message's key (it is then not the gate's to deliver). */
  enqueue(msg: PubSubMessage): boolean {
    const state = this.keys.get(msg.key);
    if (!state || state.members.size === 0) return false;
    if (state.pending.length >= MAX_PENDING) {
      this.peek(msg.tenantId)?.log.warn({ topic: msg.subTopic, pending: state.pending.length }, 'storage event dropped: too many waiting for authorization');
      return true;
    }
    state.pending.push(msg);
    if (!state.running) void this.drain(msg.key, state);
    return true;
  }

  private async drain(key: string, state: KeyState): Promise<void> {
    state.running = true;
    try {
      while (state.pending.length > 0 && state.members.size > 0) {
        const batch = state.pending.splice(0, MAX_BATCH);
        await this.deliverBatch(batch, [...state.members]).catch((err: unknown) => this.peek(batch[0]!.tenantId)?.onFault(err, 'storage events'));
      }
      state.pending = [];
    } finally {
      state.running = false;
      if (state.members.size === 0) this.keys.delete(key);
    }
  }

  private async deliverBatch(batch: PubSubMessage[], members: StorageEventMember[]): Promise<void> {
    const tenant = this.peek(batch[0]!.tenantId);
    if (!tenant) return;
    const objects: (StorageEventObject | null)[] = batch.map((m) => eventObject(payloadOf(m.env as BroadcastEnvelope)));
    const asked = objects.filter((o): o is StorageEventObject => o !== null);
    // Viewers by the text of their claims: members with the same claims share one check.
    const viewers = new Map<string, { claims: Record<string, unknown>; index: number }>();
    for (const m of members) {
      const text = JSON.stringify(m.claims);
      if (!viewers.has(text)) viewers.set(text, { claims: m.claims, index: viewers.size });
    }
    let answers: boolean[][] = [];
    if (asked.length > 0) {
      const pool = await tenant.database();
      const outcome = await visibleStorageEvents(pool, asked, [...viewers.values()].map((v) => v.claims), { latencyMs: tenant.metrics.readAuthorization });
      if (!outcome.ok) {
        tenant.log.error({ error_code: outcome.failure.code, reason: outcome.failure.message }, 'storage events not delivered: authorization failed');
        return;
      }
      answers = outcome.value;
    }
    for (const member of members) {
      if (member.closed || member.conn.closed) continue;
      const viewer = viewers.get(JSON.stringify(member.claims));
      let j = 0;
      for (let e = 0; e < batch.length; e++) {
        if (objects[e] === null) continue;
        const k = j++;
        // Claims changed while the batch was checked: this member's answer is not known, it gets nothing of it.
        if (!viewer || !answers[viewer.index]?.[k]) continue;
        const msg = batch[e]!;
        const frame = encodeFor(member.conn.vsn, `realtime:${msg.subTopic}`, msg.env as BroadcastEnvelope);
        if (frame === null) continue;
        member.conn.send(frame);
        tenant.events.add(1);
      }
    }
  }
}

function payloadOf(env: BroadcastEnvelope): unknown {
  try {
    if (env.type === 'json') return JSON.parse(env.payloadJson);
    return env.encoding === 1 ? JSON.parse(Buffer.from(env.payload).toString('utf8')) : null;
  } catch {
    return null;
  }
}
