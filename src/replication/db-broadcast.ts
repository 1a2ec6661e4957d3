import pg from 'pg';
import type { PubSubMessage } from '../shared/messages.js';
import type { Logger } from '../observability/logger.js';
import { MessagesRelay } from './messages-relay.js';
import type { Lsn } from './pgoutput/index.js';
import { ReplicationStream, type ReplicationEvent, type ReplicationStatus, type ReplicationStreamOptions } from './stream.js';

// Broadcast from the database (spec §4.6): rows inserted into realtime.messages become user broadcasts.

export const MESSAGES_PUBLICATION = 'supabase_realtime_messages_publication';
export const MESSAGES_SLOT_PREFIX = 'supabase_realtime_messages_replication_slot_';

/** How often a hand-over checks whether the own stream has caught up with the other one. */
const HANDOVER_CHECK_MS = 50;

/** Where and how the pipeline streams, whoever broadcasts the rows. */
export interface PipelineOptions {
  databaseUrl: string;
  log: Logger;
  /** SLOT_NAME_SUFFIX; lower-cased, characters outside [a-z0-9_] become '_'. Empty by default (name ends in '_'). */
  slotSuffix?: string;
  /** Stream tuning (tests use short backoffs). */
  replication?: Pick<ReplicationStreamOptions, 'backoff' | 'statusIntervalMs' | 'receiveTimeoutMs'>;
  /**
   * In a cluster, the owner's fence: claimed before every connection streams, which ends a paused former owner's
   * walsender (its temporary slot goes with it, so this one can be made) and refuses a stale owner.
   */
  fence?: ReplicationStreamOptions['fence'];
}

export interface DatabaseBroadcastOptions extends PipelineOptions {
  tenantId: string;
  /** Hands a message to pub/sub, e.g. `(msg) => ctx.pubsub.publish(msg, null)`. Called synchronously, in commit order. */
  publish: (msg: PubSubMessage) => void;
  /** Largest payload (bytes) broadcast; a function is read per row so limit changes apply at once. */
  payloadLimitBytes: number | (() => number);
  /** The tenant's events limiter: false drops the row. */
  allow?: () => boolean;
}

/** Another replication stream that reads realtime.messages into the relay: Postgres Changes' stream. */
export interface MessagesCarrier {
  readonly status: ReplicationStatus;
  /** From here on it reads every committed transaction. */
  readonly fromLsn: Lsn;
  /** Everything before this it has handled. */
  readonly handledLsn: Lsn;
}

export interface DatabaseBroadcast {
  readonly slot: string;
  /** 'up' once a replication connection carries realtime.messages: what `replication_ready` waits for. */
  readonly status: ReplicationStatus;
  readonly relay: MessagesRelay;
  /** Status changes of the pipeline's own stream. */
  onStatus(listener: (status: ReplicationStatus, error: unknown) => void): () => void;
  /** Whether the pipeline's own stream (and its walsender) runs. */
  readonly ownStream: boolean;
  /**
   * `carrier` now reads realtime.messages too: the own stream stops once it has handled everything before
   * `carrier.fromLsn` (both read the same transactions meanwhile; the relay broadcasts each once).
   */
  handOff(carrier: MessagesCarrier): void;
  /**
   * The carrier is about to stop: the own stream starts again. Resolves with the position it reads from once it is
   * up (the carrier should handle everything before it first), or null when the own stream never stopped.
   */
  takeBack(timeoutMs: number): Promise<Lsn | null>;
  stop(): Promise<void>;
}

/**
 * Starts the tenant's database broadcast pipeline: a temporary slot over the messages publication, every
 * inserted broadcast row published to its topic namespace. Never throws; connection trouble shows in status.
 */
export function startDatabaseBroadcast(opts: DatabaseBroadcastOptions): DatabaseBroadcast {
  const limit = typeof opts.payloadLimitBytes === 'function' ? opts.payloadLimitBytes : () => opts.payloadLimitBytes as number;
  const log = opts.log.child({ replication: 'broadcast_from_database' });
  return startBroadcastPipeline(opts, new MessagesRelay({ tenantId: opts.tenantId, publish: opts.publish, log, payloadLimitBytes: limit, allow: opts.allow }));
}

/** {@link startDatabaseBroadcast} around the tenant's relay, which outlives restarts of the pipeline. */
export function startBroadcastPipeline(opts: PipelineOptions, relay: MessagesRelay): DatabaseBroadcast {
  const slot = messagesSlotName(opts.slotSuffix ?? '');
  const log = opts.log.child({ replication: 'broadcast_from_database' });
  const statusListeners = new Set<(status: ReplicationStatus, error: unknown) => void>();
  let stopped = false;
  let carrier: MessagesCarrier | null = null;
  let handover: NodeJS.Timeout | null = null;

  const startOwn = (onStart?: (lsn: Lsn) => void): ReplicationStream => {
    const reader = relay.reader();
    const stream: ReplicationStream = new ReplicationStream({
      connection: opts.databaseUrl,
      publications: [MESSAGES_PUBLICATION],
      slot,
      temporary: true,
      autoAck: true,
      log,
      ...opts.replication,
      fence: opts.fence,
      prepare: () => prepareMessagesPublication(opts.databaseUrl, log),
      onStreamStart: (lsn) => {
        relay.startsAt(lsn);
        onStart?.(lsn);
      },
      handler: (event: ReplicationEvent) => {
        const message = event.message;
        if (message.tag === 'begin') return reader.begin(message.finalLsn, message.commitTime);
        if (message.tag === 'commit') return reader.commit();
        if (message.tag !== 'insert') return;
        const relation = stream.relations.get(message.relationId);
        if (relation) reader.insert(relation, message.new);
      },
    });
    stream.onStatus((status, error) => {
      // A stream stopped by a hand-over is not the pipeline stopping.
      if (stream !== own && !stopped) return;
      for (const listener of [...statusListeners]) listener(status, error);
    });
    return stream.start();
  };

  let own: ReplicationStream | null = startOwn();

  const stopHandover = () => {
    if (handover) clearInterval(handover);
    handover = null;
  };

  return {
    slot,
    relay,
    get status(): ReplicationStatus {
      if (stopped) return 'stopped';
      if (own?.status === 'up' || carrier?.status === 'up') return 'up';
      return 'down';
    },
    get ownStream() {
      return own !== null;
    },
    onStatus: (listener) => {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    handOff(next) {
      if (stopped) return;
      carrier = next;
      stopHandover();
      handover = setInterval(() => {
        const current = own;
        if (!current || carrier !== next) return stopHandover();
        // Stop only once the carrier covers all the own stream may not have read yet, and has caught up with it (a
        // carrier replaying a backlog would delay broadcasts).
        if (next.status !== 'up' || current.handledLsn < next.fromLsn || next.handledLsn < current.handledLsn) return;
        stopHandover();
        own = null;
        log.info({ slot }, 'realtime.messages now read by the Postgres Changes stream; own stream stopped');
        void current.stop();
      }, HANDOVER_CHECK_MS);
      handover.unref();
    },
    async takeBack(timeoutMs) {
      carrier = null;
      stopHandover();
      if (stopped || own) return null;
      log.info({ slot }, 'Postgres Changes stream stopping: realtime.messages read by the own stream again');
      let resolveStart!: (lsn: Lsn) => void;
      const started = new Promise<Lsn>((resolve) => (resolveStart = resolve));
      const stream = startOwn((lsn) => resolveStart(lsn));
      own = stream;
      const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), timeoutMs).unref());
      const at = await Promise.race([started, timeout]);
      // Up means START_REPLICATION went through: from here on the own stream misses nothing.
      const deadline = Date.now() + timeoutMs;
      while (at !== null && stream.status !== 'up' && Date.now() < deadline && !stopped) await new Promise((r) => setTimeout(r, 10));
      if (at !== null && stream.status === 'up') return at;
      if (!stopped) log.warn({ slot, timeout_ms: timeoutMs }, 'own stream not up in time to take realtime.messages back; broadcasts committed meanwhile may be missed');
      return null;
    },
    async stop() {
      stopped = true;
      carrier = null;
      stopHandover();
      const current = own;
      own = null;
      await current?.stop();
    },
  };
}

async function prepareMessagesPublication(databaseUrl: string, log: Logger): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000 });
  // A connection the server ends between queries reports here, not as an uncaught event; the query fails.
  client.on('error', (err) => log.debug({ err }, 'messages publication check: connection error'));
  await client.connect();
  try {
    const outcome = await ensureMessagesPublication(client);
    if (outcome !== 'ok') log.info({ publication: MESSAGES_PUBLICATION, outcome }, 'messages publication prepared');
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function messagesSlotName(suffix: string): string {
  return `${MESSAGES_SLOT_PREFIX}${suffix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

/**
 * Makes sure the publication exists and holds exactly realtime.messages (published via the partition root, with
 * inserts); otherwise creates or recreates it. Safe against concurrent callers.
 */
export async function ensureMessagesPublication(client: pg.ClientBase): Promise<'ok' | 'created' | 'recreated'> {
  const { rows } = await client.query<{ fine: boolean }>(
    `SELECT p.pubinsert AND p.pubviaroot AND NOT p.puballtables
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r
                         WHERE r.prpubid = p.oid AND r.prrelid = 'realtime.messages'::regclass)
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r
                             WHERE r.prpubid = p.oid AND r.prrelid <> 'realtime.messages'::regclass
                               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                                                WHERE i.inhrelid = r.prrelid
                                                  AND i.inhparent = 'realtime.messages'::regclass))
            AND (to_regclass('pg_catalog.pg_publication_namespace') IS NULL
                 OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace n WHERE n.pnpubid = p.oid)) AS fine
       FROM pg_catalog.pg_publication p WHERE p.pubname = $1`,
    [MESSAGES_PUBLICATION],
  );
  if (rows[0]?.fine) return 'ok';
  const outcome = rows.length === 0 ? 'created' : 'recreated';
  await client.query('BEGIN');
  try {
    await client.query(`DROP PUBLICATION IF EXISTS ${MESSAGES_PUBLICATION}`);
    await client.query(`CREATE PUBLICATION ${MESSAGES_PUBLICATION} FOR TABLE realtime.messages WITH (publish_via_partition_root = true)`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Another node created it between our check and our create.
    if ((err as { code?: string }).code === '42710' || (err as { code?: string }).code === '23505') return 'ok';
    throw err;
  }
  return outcome;
}

