import pg from 'pg';
import { JwtVerifier } from '../auth/jwt.js';
import type { AuthOverrides } from '../config/auth.js';
import type { TenantLoad } from '../cluster/load-sync.js';
import type { TenantLimits } from '../config/index.js';
import { withoutPoolClient } from '../db/lend.js';
import type { Logger } from '../observability/logger.js';
import type { TenantMetrics } from '../observability/metrics.js';
import { newReplicaId, TenantPresence } from '../presence/tenant-presence.js';
import type { ChangesEngine } from '../replication/changes-engine.js';
import type { DatabaseBroadcast } from '../replication/db-broadcast.js';
import type { MessagesRelay } from '../replication/messages-relay.js';
import type { StreamFence } from '../replication/stream-types.js';
import { RateCounter } from './rate-counter.js';
import { ReplicationCheck } from './replication-check.js';

export interface TenantSettings {
  externalId: string;
  databaseUrl: string;
  jwtSecret: string | null;
  jwtJwks: { keys: Record<string, unknown>[] } | null;
  privateOnly: boolean;
  suspend: boolean;
  presenceEnabled: boolean;
  limits: TenantLimits;
  dbPoolSize: number;
  /** The publication Postgres Changes may subscribe to (extension setting `publication`). */
  publication?: string;
  /** Exact-match claims every tenant token must carry (JWT_CLAIM_VALIDATORS). */
  claimValidators?: Record<string, unknown>;
  /** Per-channel presence limiter overrides (upstream max_client_presence_events_per_window, client_presence_window_ms); null/absent = the CLIENT_PRESENCE_* defaults. */
  maxClientPresenceEventsPerWindow?: number | null;
  clientPresenceWindowMs?: number | null;
  /** The auth module's settings for this tenant where they differ from AUTH_* (tenant record `auth_settings`). */
  auth?: AuthOverrides;
}

/** What the tenant knows of a joined channel: enough to count it and shut it down. */
export interface ChannelHandle {
  readonly subTopic: string;
  shutdown(message: string): void;
}

/** What the tenant knows of a connected socket. */
export interface SocketHandle {
  readonly id: number;
  /** When the socket last had no channel joined (null while it has one). */
  readonly idleSince: number | null;
  channelCount(): number;
  disconnect(code: number, systemMessage: string | null): void;
  /** False (after telling it and starting to close it) when the socket has fallen too far behind its writes. */
  keepsUp(): boolean;
}

export type DatabasePreparer = (pool: pg.Pool, log: Logger) => Promise<void>;

/** How long stop() waits for the tenant's pool to close. */
const POOL_CLOSE_TIMEOUT_MS = 5000;
/** How often the database's replication settings are checked again (they change only with a server restart). */
const REPLICATION_RECHECK_MS = 5000;

export type DatabaseState = 'idle' | 'connecting' | 'ready' | 'failed';

/**
 * One tenant's runtime state on this node: its sockets, channels, counters and database pool. Nothing about a
 * tenant lives in module globals, so a tenant can be stopped or restarted as one unit.
 */
export class TenantRuntime {
  readonly verifier: JwtVerifier;
  readonly sockets = new Set<SocketHandle>();
  /** Sockets with at least one joined channel on this node: what `max_concurrent_users` counts, with `remoteUsers`. */
  readonly users = new Set<SocketHandle>();
  /** The other cluster nodes' users of this tenant as of the last load sync (cluster/load-sync.ts); 0 when alone. */
  remoteUsers = 0;
  readonly channelsByKey = new Map<string, Set<ChannelHandle>>();
  readonly events: RateCounter;
  readonly joins: RateCounter;
  /** Payload bytes sent and delivered, for `max_bytes_per_second`. */
  readonly bytes: RateCounter;
  /** REST requests, for the rate-limit headers of the REST API. */
  readonly requests: RateCounter;
  /** presence_state pushes and delivered presence_diffs, against max_presence_events_per_second. */
  readonly presenceEvents: RateCounter;
  /** Delivered postgres_changes events (upstream's db_events), against max_events_per_second. */
  readonly dbEvents: RateCounter;
  /** This tenant's presence replica on this node (the cluster layer replicates it through its delta methods). */
  readonly presence: TenantPresence;
  readonly log: Logger;
  dbState: DatabaseState = 'idle';
  /** The database-broadcast stream while it runs (its status is what `replication_ready` waits for). */
  replication: DatabaseBroadcast | null = null;
  /** Broadcast from the database of this tenant, whichever stream reads realtime.messages; outlives restarts of the pipeline. */
  messagesRelay: MessagesRelay | null = null;
  /** Postgres Changes, while anyone subscribes (or an earlier run's subscribers may rejoin). */
  changes: ChangesEngine | null = null;
  /** In a cluster, while this node owns the tenant: what guards its streams (null otherwise, and when alone). */
  streamOwner: {
    /** Postgres Changes' stream's fence, and the database-broadcast stream's (each claims its own row). */
    fence: StreamFence;
    broadcastFence: StreamFence;
    valid(): boolean;
    published?: () => Promise<void> | null;
  } | null = null;
  /** Whether the database can do logical replication at all (wal_level and the like). */
  readonly replicationCheck: ReplicationCheck;
  /** Set by the tenant's supervisor: where an exception from this tenant's handlers is reported. */
  onFault: (err: unknown, where: string) => void = () => undefined;
  private pool: pg.Pool | null = null;
  private dbReady: Promise<pg.Pool> | null = null;
  private lastDbFailure = 0;

  constructor(
    readonly settings: TenantSettings,
    parentLog: Logger,
    private readonly prepareDatabase: DatabasePreparer,
    /** The tenant's labelled metric series, looked up once for the paths that run per message. */
    readonly metrics: TenantMetrics,
    private readonly rates: { tickMs: number; windowMs: number } = { tickMs: 1000, windowMs: 60_000 },
    /** This node's name: presence replica ids start with it, so other nodes drop them when the node leaves. */
    nodeName?: string,
  ) {
    this.log = parentLog.child({ tenant: settings.externalId });
    this.events = this.counter();
    this.joins = this.counter();
    this.bytes = this.counter();
    this.requests = this.counter();
    this.presenceEvents = this.counter();
    this.dbEvents = this.counter();
    this.verifier = new JwtVerifier({ secret: settings.jwtSecret, jwks: settings.jwtJwks, claimValidators: settings.claimValidators });
    this.presence = new TenantPresence(settings.externalId, newReplicaId(nodeName));
    this.replicationCheck = new ReplicationCheck(() => this.database(), this.log, REPLICATION_RECHECK_MS);
  }

  /** A rolling rate counter ticking as configured for this node (tests use short ticks). */
  counter(): RateCounter {
    return new RateCounter(this.rates.tickMs, this.rates.windowMs).start();
  }

  get id(): string {
    return this.settings.externalId;
  }

  /** The tenant's pool, connected and migrated on first use; a failure is remembered for a short backoff. */
  database(): Promise<pg.Pool> {
    if (this.dbReady) return this.dbReady;
    if (this.dbState === 'failed' && Date.now() - this.lastDbFailure < 1000) {
      return Promise.reject(new Error('tenant database recently failed to connect'));
    }
    this.dbState = 'connecting';
    const pool = new pg.Pool({
      connectionString: this.settings.databaseUrl,
      max: this.settings.dbPoolSize,
      application_name: 'performer',
      connectionTimeoutMillis: 5000,
    });
    pool.on('error', (err) => this.log.warn({ err: withoutPoolClient(err), error_code: 'DatabaseConnectionError' }, 'idle tenant database client failed'));
    this.pool = pool;
    this.dbReady = this.prepareDatabase(pool, this.log).then(
      () => {
        this.dbState = 'ready';
        return pool;
      },
      async (err: unknown) => {
        this.dbState = 'failed';
        this.lastDbFailure = Date.now();
        this.dbReady = null;
        this.pool = null;
        this.log.error({ err, error_code: 'UnableToConnectToProject' }, 'tenant database unavailable');
        await pool.end().catch(() => undefined);
        throw err;
      },
    );
    return this.dbReady;
  }

  /** The pool when database() has it ready, without waiting (per-request hot paths); null otherwise. */
  readyPool(): pg.Pool | null {
    return this.dbState === 'ready' && this.dbReady !== null ? this.pool : null;
  }

  /** Drops the pool after its database failed; the next database() call connects afresh. */
  async resetDatabase(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    this.dbReady = null;
    this.dbState = 'failed';
    this.lastDbFailure = Date.now();
    if (pool) await pool.end().catch(() => undefined);
  }

  /** True when the channel is the first of its topic key on this node (what pub/sub is told as interest). */
  addChannel(key: string, channel: ChannelHandle): boolean {
    let set = this.channelsByKey.get(key);
    const first = set === undefined;
    if (!set) this.channelsByKey.set(key, (set = new Set()));
    set.add(channel);
    return first;
  }

  /** True when the channel was the last of its topic key on this node. */
  removeChannel(key: string, channel: ChannelHandle): boolean {
    const set = this.channelsByKey.get(key);
    if (!set?.delete(channel) || set.size > 0) return false;
    this.channelsByKey.delete(key);
    return true;
  }

  /** Users of the tenant in the whole cluster (approximate across nodes): what `max_concurrent_users` limits. */
  clusterUsers(): number {
    return this.users.size + this.remoteUsers;
  }

  /** This node's own figures for the cluster-wide limits (LoadedTenant). */
  localLoad(): TenantLoad {
    return {
      users: this.users.size,
      joins: this.joins.localRate,
      events: this.events.localRate,
      bytes: this.bytes.localRate,
      presence: this.presenceEvents.localRate,
    };
  }

  /** The other nodes' figures summed (LoadedTenant): added to every limit check from now on. */
  setRemoteLoad(load: TenantLoad): void {
    this.remoteUsers = load.users;
    this.joins.remote = load.joins;
    this.events.remote = load.events;
    this.bytes.remote = load.bytes;
    this.presenceEvents.remote = load.presence;
  }

  channelCount(): number {
    let n = 0;
    for (const set of this.channelsByKey.values()) n += set.size;
    return n;
  }

  async stop(): Promise<void> {
    this.events.stop();
    this.joins.stop();
    this.bytes.stop();
    this.requests.stop();
    this.presenceEvents.stop();
    this.dbEvents.stop();
    const pool = this.pool;
    this.pool = null;
    this.dbReady = null;
    this.dbState = 'idle';
    if (!pool) return;
    // pool.end() waits for every checked-out client; a query stuck in the database must not hold shutdown forever.
    const ended = pool.end().catch((err: unknown) => this.log.warn({ err }, 'closing tenant pool failed'));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.log.warn({ error_code: 'PoolCloseTimeout' }, 'tenant pool still busy at stop; leaving it behind');
        resolve();
      }, POOL_CLOSE_TIMEOUT_MS);
      timer.unref();
    });
    await Promise.race([ended, timedOut]);
    clearTimeout(timer);
  }
}
