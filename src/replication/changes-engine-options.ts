import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { LocalPublisher } from '../shared/messages.js';
import type { ChangesMetrics } from './changes-dispatch.js';
import type { FanoutMember } from './changes-groups.js';
import type { DatabaseBroadcast } from './db-broadcast.js';
import type { StreamFence } from './stream-types.js';

/** How a tenant's changes engine is set up (src/tenants/changes.ts makes one from the configuration). */
export interface ChangesEngineOptions {
  tenantId: string;
  databaseUrl: string;
  publication: string;
  node: string;
  log: Logger;
  pool: () => Promise<pg.Pool>;
  /** How long changes are held for subscribers of an earlier run that have not rejoined yet. */
  graceMs: number;
  /** Drop the slot after this long without subscribers. */
  idleDropMs: number;
  /** Lag guard: when the slot is this many bytes behind, subscribers are told and the slot is recreated. */
  maxLagBytes: number;
  lagCheckMs: number;
  /** Warn when the slot's lag or retained WAL passes this many bytes (and each time it doubles). */
  slotWarnBytes: number;
  /** RLS visibility of a batch checked for all viewers in one call (default); false: one transaction per viewer. */
  rlsBatch?: boolean;
  /**
   * While a batch's visibility is asked, commits that arrive start the next batch's questions (one batch ahead at
   * most, handed out after it); false: one batch at a time.
   */
  pipeline?: boolean;
  backoff: { initialMs: number; maxMs: number };
  /** Where the groups' events are published (the channels dispatcher and fan-out take them to the sockets). */
  pubsub: LocalPublisher;
  /** The tenant's changes limiter (upstream's db_events): while false, changes are held, never dropped. */
  allow?: () => boolean;
  onDeliveries?: (n: number) => void;
  metrics?: ChangesMetrics;
  onStopped?: () => void;
  /** The tenant's database-broadcast pipeline: while this stream runs it reads realtime.messages for it too. */
  messages?: () => DatabaseBroadcast | null;
  /** In a cluster: this node's ownership of the tenant; nothing is handed out or confirmed once it may have lapsed. */
  fence?: StreamFence;
  /**
   * In a cluster: settles once every event sent to other nodes so far has reached Redis (rejects if one was lost).
   * A position is confirmed only then, so an owner killed between handing out and sending loses nothing.
   */
  published?: () => Promise<void> | null;
}

/** What a subscriber hears besides changes: the `system` messages of the postgres_changes extension. */
export interface SubscriberNotices {
  notify(status: 'ok' | 'error', message: string): void;
}

export type LiveSubscriber = FanoutMember & SubscriberNotices;

