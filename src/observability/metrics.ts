import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ClusterMetrics } from './cluster-metrics.js';

/** A running tenant's replication, read at scrape time. */
export interface ReplicationFigures {
  tenant: string;
  /** The server setting that rules logical replication out (wal_level), or null. */
  misconfigured: string | null;
  /** The Postgres Changes slot at its last check, or null while there is none. */
  slot: { name: string; lagBytes: number; retainedWalBytes: number } | null;
}

/** Something that records one measurement: a prom-client histogram child, or nothing in code run without a server. */
export interface Observer {
  observe(value: number): void;
}

/** One tenant's labelled series, looked up once and kept (on the tenant's runtime) for the hot paths. */
export interface TenantMetrics {
  events: Counter.Internal;
  outputBytes: Counter.Internal;
  /** Postgres Changes events delivered (upstream's realtime_channel_db_events). */
  dbEvents: Counter.Internal;
  broadcastPayload: Histogram.Internal<string>;
  postgresChangesPayload: Histogram.Internal<string>;
  readAuthorization: Histogram.Internal<string>;
  writeAuthorization: Histogram.Internal<string>;
  postgresChangesAuthorization: Histogram.Internal<string>;
  replay: Histogram.Internal<string>;
  replayedMessages: Counter.Internal;
  broadcastFromDatabaseCommitted: Histogram.Internal<string>;
  broadcastFromDatabaseInserted: Histogram.Internal<string>;
}

/** Upstream's payload-size boundaries (bytes), plus 100 and 2000. */
const PAYLOAD_BYTES_BUCKETS = [100, 250, 500, 1000, 2000, 3000, 5000, 10_000, 25_000, 100_000, 500_000, 1_000_000, 3_000_000];
/** Milliseconds: upstream's boundaries for authorization checks and replay (10, 250, 5000, 15000), and finer steps between. */
const CHECK_MS_BUCKETS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 15_000];
/** Milliseconds: upstream's boundaries for broadcast from the database (10, 250, 5000), and finer steps, up to a minute. */
const DATABASE_BROADCAST_MS_BUCKETS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 15_000, 60_000];

/**
 * Metric families, named as upstream where upstream has a name, labelled by tenant.
 * One instance per server so tests can run several servers in one process.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly connectionsConnected = new Gauge({
    name: 'realtime_connections_connected',
    help: 'Connected WebSocket clients per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly channelEvents = new Counter({
    name: 'realtime_channel_events',
    help: 'Broadcast events sent and delivered per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly channelPresenceEvents = new Counter({
    name: 'realtime_channel_presence_events',
    help: 'Presence events per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly channelDbEvents = new Counter({
    name: 'realtime_channel_db_events',
    help: 'Postgres Changes events delivered to subscribers per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly channelJoins = new Counter({
    name: 'realtime_channel_joins',
    help: 'Channel joins per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly inputBytes = new Counter({
    name: 'realtime_channel_input_bytes',
    help: 'Bytes received from clients per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly outputBytes = new Counter({
    name: 'realtime_channel_output_bytes',
    help: 'Bytes sent to clients per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly payloadSize = new Histogram({
    name: 'realtime_tenants_payload_size',
    help: 'Payload sizes in bytes per tenant and message type',
    labelNames: ['tenant', 'message_type'],
    buckets: PAYLOAD_BYTES_BUCKETS,
    registers: [this.registry],
  });
  readonly readAuthorizationCheck = new Histogram({
    name: 'realtime_tenants_read_authorization_check',
    help: 'Milliseconds of private channel read authorization checks (RLS on realtime.messages), pool checkout included',
    labelNames: ['tenant'],
    buckets: CHECK_MS_BUCKETS,
    registers: [this.registry],
  });
  readonly writeAuthorizationCheck = new Histogram({
    name: 'realtime_tenants_write_authorization_check',
    help: 'Milliseconds of private channel write authorization checks (RLS on realtime.messages), pool checkout included',
    labelNames: ['tenant'],
    buckets: CHECK_MS_BUCKETS,
    registers: [this.registry],
  });
  readonly postgresChangesAuthorizationCheck = new Histogram({
    name: 'realtime_tenants_postgres_changes_authorization_check',
    help: 'Milliseconds of Postgres Changes visibility checks (RLS and column privileges, one per table and viewer per batch)',
    labelNames: ['tenant'],
    buckets: CHECK_MS_BUCKETS,
    registers: [this.registry],
  });
  readonly replay = new Histogram({
    name: 'realtime_tenants_replay',
    help: 'Milliseconds of broadcast replay queries at private channel joins; its count is the replay requests',
    labelNames: ['tenant'],
    buckets: CHECK_MS_BUCKETS,
    registers: [this.registry],
  });
  readonly replayedMessages = new Counter({
    name: 'realtime_tenants_replay_messages_total',
    help: 'Stored broadcasts handed to clients by replay per tenant',
    labelNames: ['tenant'],
    registers: [this.registry],
  });
  readonly broadcastFromDatabaseCommitted = new Histogram({
    name: 'realtime_tenants_broadcast_from_database_latency_committed_at',
    help: 'Milliseconds from the commit of a realtime.messages broadcast row to its fan-out on this node',
    labelNames: ['tenant'],
    buckets: DATABASE_BROADCAST_MS_BUCKETS,
    registers: [this.registry],
  });
  readonly broadcastFromDatabaseInserted = new Histogram({
    name: 'realtime_tenants_broadcast_from_database_latency_inserted_at',
    help: 'Milliseconds from the inserted_at of a realtime.messages broadcast row (read as UTC) to its fan-out on this node',
    labelNames: ['tenant'],
    buckets: DATABASE_BROADCAST_MS_BUCKETS,
    registers: [this.registry],
  });
  readonly channelErrors = new Counter({
    name: 'realtime_channel_error',
    help: 'Errors returned to clients per tenant and upstream error code',
    labelNames: ['tenant', 'code'],
    registers: [this.registry],
  });
  /** Set by the server: how many tenants run on this node, read at scrape time. */
  tenantsRunning: () => number = () => 0;
  readonly tenantsConnected: Gauge = new Gauge({
    name: 'realtime_tenants_connected',
    help: 'Tenants with a running runtime on this node',
    registers: [this.registry],
    collect: (): void => this.tenantsConnected.set(this.tenantsRunning()),
  });

  /** Set by the server: the replication of every running tenant, read at scrape time. */
  replicationFigures: () => ReplicationFigures[] = () => [];
  readonly replicationSlotLag: Gauge = new Gauge({
    name: 'realtime_replication_slot_lag_bytes',
    help: 'Bytes of WAL between the current position and the Postgres Changes slot\'s confirmed position, per tenant',
    labelNames: ['tenant', 'slot'],
    registers: [this.registry],
    collect: (): void => this.collectSlots(this.replicationSlotLag, (s) => s.lagBytes),
  });
  readonly replicationSlotRetainedWal: Gauge = new Gauge({
    name: 'realtime_replication_slot_retained_wal_bytes',
    help: 'Bytes of WAL the server keeps for the Postgres Changes slot, per tenant',
    labelNames: ['tenant', 'slot'],
    registers: [this.registry],
    collect: (): void => this.collectSlots(this.replicationSlotRetainedWal, (s) => s.retainedWalBytes),
  });
  readonly replicationMisconfigured: Gauge = new Gauge({
    name: 'realtime_replication_misconfigured',
    help: 'Tenants whose database settings rule logical replication out (1), by the setting at fault',
    labelNames: ['tenant', 'setting'],
    registers: [this.registry],
    collect: (): void => {
      this.replicationMisconfigured.reset();
      for (const f of this.replicationFigures()) {
        if (f.misconfigured) this.replicationMisconfigured.set({ tenant: f.tenant, setting: f.misconfigured }, 1);
      }
    },
  });

  /** Membership, Redis and cross-node traffic (src/cluster/). */
  readonly cluster = new ClusterMetrics(this.registry);

  private readonly tenantCache = new Map<string, TenantMetrics>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Series of tenants that stopped or dropped their slot disappear with them. */
  private collectSlots(gauge: Gauge, figure: (slot: NonNullable<ReplicationFigures['slot']>) => number): void {
    gauge.reset();
    for (const f of this.replicationFigures()) if (f.slot) gauge.set({ tenant: f.tenant, slot: f.slot.name }, figure(f.slot));
  }

  /**
   * A tenant's labelled series, looked up once: prom-client hashes the label object on every update, which the
   * broadcast bench found to be a sixth of Performer's per-message JavaScript.
   */
  forTenant(tenant: string): TenantMetrics {
    let m = this.tenantCache.get(tenant);
    if (!m) {
      m = {
        events: this.channelEvents.labels({ tenant }),
        outputBytes: this.outputBytes.labels({ tenant }),
        dbEvents: this.channelDbEvents.labels({ tenant }),
        broadcastPayload: this.payloadSize.labels({ tenant, message_type: 'broadcast' }),
        postgresChangesPayload: this.payloadSize.labels({ tenant, message_type: 'postgres_changes' }),
        readAuthorization: this.readAuthorizationCheck.labels({ tenant }),
        writeAuthorization: this.writeAuthorizationCheck.labels({ tenant }),
        postgresChangesAuthorization: this.postgresChangesAuthorizationCheck.labels({ tenant }),
        replay: this.replay.labels({ tenant }),
        replayedMessages: this.replayedMessages.labels({ tenant }),
        broadcastFromDatabaseCommitted: this.broadcastFromDatabaseCommitted.labels({ tenant }),
        broadcastFromDatabaseInserted: this.broadcastFromDatabaseInserted.labels({ tenant }),
      };
      this.tenantCache.set(tenant, m);
    }
    return m;
  }
}
