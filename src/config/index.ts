import { hostname } from 'node:os';
import { isHmacKeyOf } from '../auth/jwt.js';
import { loadAuthConfig, type AuthConfig } from './auth.js';
import { ConfigError } from './errors.js';
import { Reader, type Env } from './reader.js';

/** Where root keeps the embedded Postgres binaries and clusters when the `postgres` user cannot reach the checkout. */
export const DEFAULT_SYSTEM_DIR = '/var/lib/performer';

/**
 * Every environment variable Performer reads, parsed and validated once at start-up.
 * Nothing else in the code base reads process.env.
 */
export interface Config {
  port: number;
  host: string;
  databaseUrl: string | null;
  dataDir: string;
  /** Running as root from a directory the OS user postgres cannot enter: the embedded Postgres' binaries and cluster. */
  systemDir: string;
  jwtSecret: string;
  jwtJwks: { keys: Record<string, unknown>[] } | null;
  /** Exact-match claims required in every tenant JWT (upstream JWT_CLAIM_VALIDATORS), e.g. {"iss":"supabase"}. */
  jwtClaimValidators: Record<string, unknown>;
  tenantId: string;
  /** Management API secret; null = a random one kept in the data dir (never the tenants' JWT_SECRET). */
  apiJwtSecret: string | null;
  apiJwtSecretNext: string | null;
  metricsJwtSecret: string | null;
  /** REDIS_URL: a single Redis (or a primary) shared by the nodes of a cluster; null with no cluster nodes = run alone. */
  redisUrl: string | null;
  /** REDIS_CLUSTER_NODES: Redis Cluster seed nodes (`host:port`); sharded pub/sub keyed by tenant. */
  redisClusterNodes: { host: string; port: number }[];
  /** REDIS_KEY_PREFIX: every Redis key and channel starts with it, so clusters or test runs can share one Redis. */
  redisKeyPrefix: string;
  /** NODE_REGION: reported in /api/cluster (upstream REGION). */
  nodeRegion: string;
  /** How often a node refreshes its membership entry and reads the live set. */
  clusterHeartbeatMs: number;
  /** A member whose entry is this old is gone (its ownerships and presence are released). */
  clusterMemberTtlMs: number;
  /** How often a node publishes its per-tenant counts and reads the others' (cluster-wide limits). */
  clusterLimitsSyncMs: number;
  /** CLUSTER_PRESENCE_BATCH_MS: presence changes of this long are sent to the other nodes as one delta per tenant. */
  clusterPresenceBatchMs: number;
  /** CLUSTER_OWNERSHIP_TTL_MS: lease of a tenant's replication ownership, renewed every third of it. */
  clusterOwnershipTtlMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  connectErrorBackoffMs: number;
  channelErrorBackoffMs: number;
  idleTimeoutSeconds: number;
  maxFrameBytes: number;
  /**
   * Unsent bytes a socket may have queued before it is told (`system` message) and closed as too slow. uWS's own
   * limit, which cuts a socket at once, is set well above it as a memory backstop.
   */
  maxBufferedBytes: number;
  noChannelTimeoutMs: number;
  shutdownTimeoutMs: number;
  /** Tenant defaults (upstream TENANT_MAX_*). */
  tenantDefaults: TenantLimits;
  dbPoolSize: number;
  /** REST_SCHEMAS: the schemas /rest/v1 exposes; the first is the default (PostgREST's db-schemas). */
  restSchemas: string[];
  /** REST_MAX_ROWS: cap on the rows of one REST response (PostgREST's db-max-rows); null = no cap. */
  restMaxRows: number | null;
  /** REST_STATEMENT_TIMEOUT_MS: a REST request's statement_timeout (a runaway query ends with 57014); 0 = none. */
  restStatementTimeoutMs: number;
  /** FUNCTIONS_TIMEOUT_MS: an invocation's wall-clock budget; past it its worker is stopped and it is answered 546. */
  functionsTimeoutMs: number;
  /** FUNCTIONS_MEMORY_MB: a function's memory cap (WebAssembly memory maximum, JS engine heap). */
  functionsMemoryMb: number;
  /** FUNCTIONS_WORKERS: warm worker threads running invocations. */
  functionsWorkers: number;
  /** FUNCTIONS_MAX_BODY_BYTES: the cap on an invocation's request body and on a function's response body. */
  functionsMaxBodyBytes: number;
  /** FUNCTIONS_MAX_CODE_BYTES: the cap on a deployed module or source. */
  functionsMaxCodeBytes: number;
  /** FUNCTIONS_FETCH_ALLOW: origins a JavaScript function's fetch may reach besides this node's own API. */
  functionsFetchAllow: string[];
  /** STORAGE_BACKEND: where /storage/v1 keeps object bytes, the local disk or an S3-compatible service. */
  storageBackend: 'file' | 's3';
  /** STORAGE_DIR: the file backend's root (default `<PERFORMER_DATA_DIR>/storage`). */
  storageDir: string;
  /** STORAGE_FILE_SIZE_LIMIT: bytes any one upload may hold (upstream's default, 50 MB); a bucket may lower it. */
  storageFileSizeLimit: number;
  /**
   * STORAGE_SMALL_UPLOAD_BYTES: uploads declaring at most this many bytes are read into memory first and stored in one
   * transaction (bucket limits, RLS insert, row); larger ones stream. 0 streams every upload. Default 256 KiB.
   */
  storageSmallUploadBytes: number;
  /** STORAGE_S3_*: the S3 backend's endpoint (null = AWS), bucket and region; credentials come from the AWS variables. */
  storageS3: { endpoint: string | null; bucket: string; region: string; forcePathStyle: boolean };
  /** The control plane (tenants, extensions): schema `_performer` here, or in the default tenant's database. */
  controlDatabaseUrl: string | null;
  /** Key material for tenant secrets at rest; null = a random key kept in the data dir. */
  dbEncKey: string | null;
  tenantCacheExpirationMs: number;
  tenantIdleStopMs: number;
  tenantBackoffMinMs: number;
  tenantBackoffMaxMs: number;
  tenantDbProbeMs: number;
  rateCounterTickMs: number;
  rateCounterWindowMs: number;
  apiTokenBlocklist: string[];
  /** Postgres Changes: hold changes this long for subscribers of an earlier run to rejoin. */
  changesGraceMs: number;
  changesSlotIdleDropMs: number;
  changesMaxLagBytes: number;
  changesLagCheckMs: number;
  /** Warn when the changes slot's lag or retained WAL passes this many bytes (and each time it doubles). */
  changesSlotWarnBytes: number;
  /** Check the RLS visibility of a batch's rows for all its viewers in one call; false: one transaction per viewer. */
  changesRlsBatch: boolean;
  /** Start a batch's visibility checks while the batch before waits for its own (handed out in order). */
  changesPipeline: boolean;
  /** Appended to the database-broadcast replication slot name (upstream SLOT_NAME_SUFFIX). */
  slotNameSuffix: string;
  runJanitor: boolean;
  janitorIntervalMs: number;
  replicationReadyTimeoutMs: number;
  /** This node's name in health reports and logs. */
  nodeName: string;
  metricsTokenBlocklist: string[];
  /** Presence messages one channel may send per window (upstream CLIENT_PRESENCE_MAX_CALLS); tenants may override. */
  clientPresenceMaxCalls: number;
  clientPresenceWindowMs: number;
  /** The auth module (/auth/v1), AUTH_* variables (config/auth.ts). */
  auth: AuthConfig;
}

export interface TenantLimits {
  maxConcurrentUsers: number;
  maxEventsPerSecond: number;
  maxJoinsPerSecond: number;
  maxChannelsPerClient: number;
  maxBytesPerSecond: number;
  maxPayloadSizeInKb: number;
  maxPresenceEventsPerSecond: number;
}

export { ConfigError };

const INT32_MAX = 2_147_483_647;

export const DEFAULT_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
/** Shorter HS256 secrets than this are guessable offline from any token (RFC 7518 wants 256 bits). */
export const MIN_JWT_SECRET_LENGTH = 32;

/** Why JWT_SECRET is unfit for a server others can reach, or null when it is fine. */
export function jwtSecretWeakness(secret: string): string | null {
  if (secret === DEFAULT_JWT_SECRET) {
    return 'JWT_SECRET is the public demo secret: anyone can sign tokens for this server (service_role included)';
  }
  if (secret.length < MIN_JWT_SECRET_LENGTH) {
    return `JWT_SECRET is shorter than ${MIN_JWT_SECRET_LENGTH} characters: tokens signed with it can be brute-forced`;
  }
  return null;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;


export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const jwtSecret = r.string('JWT_SECRET', DEFAULT_JWT_SECRET);
  const config: Config = {
    port: r.int('PORT', 4000, 0, 65535),
    // The well-known demo secret lets anyone mint service_role tokens: with it, stay on loopback unless told.
    host: r.string('HOST', jwtSecret === DEFAULT_JWT_SECRET ? '127.0.0.1' : '0.0.0.0'),
    databaseUrl: r.optionalUrl('DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: r.string('PERFORMER_DATA_DIR', '.performer'),
    systemDir: r.absolutePath('PERFORMER_SYSTEM_DIR', DEFAULT_SYSTEM_DIR),
    jwtSecret,
    jwtJwks: r.jwks('JWT_JWKS'),
    jwtClaimValidators: r.jsonObject('JWT_CLAIM_VALIDATORS'),
    tenantId: r.tenantId('TENANT_ID', 'realtime-dev'),
    apiJwtSecret: r.optionalString('API_JWT_SECRET'),
    apiJwtSecretNext: r.optionalString('API_JWT_SECRET_NEXT'),
    metricsJwtSecret: r.optionalString('METRICS_JWT_SECRET'),
    redisUrl: r.optionalUrl('REDIS_URL', ['redis:', 'rediss:']),
    redisClusterNodes: r.hostPorts('REDIS_CLUSTER_NODES'),
    redisKeyPrefix: r.keyPrefix('REDIS_KEY_PREFIX', 'performer:'),
    nodeRegion: r.string('NODE_REGION', 'local'),
    clusterHeartbeatMs: r.int('CLUSTER_HEARTBEAT_MS', 1000, 50, 60_000),
    clusterMemberTtlMs: r.int('CLUSTER_MEMBER_TTL_MS', 5000, 200, 600_000),
    clusterLimitsSyncMs: r.int('CLUSTER_LIMITS_SYNC_MS', 1000, 50, 3_600_000),
    clusterPresenceBatchMs: r.int('CLUSTER_PRESENCE_BATCH_MS', 50, 5, 10_000),
    clusterOwnershipTtlMs: r.int('CLUSTER_OWNERSHIP_TTL_MS', 5000, 300, 60_000),
    logLevel: r.oneOf('LOG_LEVEL', LOG_LEVELS, 'info'),
    connectErrorBackoffMs: r.int('CONNECT_ERROR_BACKOFF_MS', 2000, 0, 60_000),
    channelErrorBackoffMs: r.int('CHANNEL_ERROR_BACKOFF_MS', 5000, 0, 60_000),
    idleTimeoutSeconds: r.int('WEBSOCKET_IDLE_TIMEOUT_SECONDS', 60, 8, 960),
    maxFrameBytes: r.int('WEBSOCKET_MAX_FRAME_BYTES', 5_000_000, 1024, 64 * 1024 * 1024),
    maxBufferedBytes: r.int('WEBSOCKET_MAX_BUFFERED_BYTES', 1024 * 1024, 16 * 1024, 256 * 1024 * 1024),
    noChannelTimeoutMs: r.int('NO_CHANNEL_TIMEOUT_IN_MS', 600_000, 1000, 86_400_000),
    shutdownTimeoutMs: r.int('SHUTDOWN_TIMEOUT_MS', 10_000, 100, 60_000),
    tenantDefaults: {
      // Stored in 32-bit columns (bytes per second in a 64-bit one), as upstream's.
      maxConcurrentUsers: r.int('TENANT_MAX_CONCURRENT_USERS', 200, 0, INT32_MAX),
      maxEventsPerSecond: r.int('TENANT_MAX_EVENTS_PER_SECOND', 100, 0, INT32_MAX),
      maxJoinsPerSecond: r.int('TENANT_MAX_JOINS_PER_SECOND', 100, 0, INT32_MAX),
      maxChannelsPerClient: r.int('TENANT_MAX_CHANNELS_PER_CLIENT', 100, 0, INT32_MAX),
      maxBytesPerSecond: r.int('TENANT_MAX_BYTES_PER_SECOND', 100_000, 0),
      maxPayloadSizeInKb: r.int('TENANT_MAX_PAYLOAD_SIZE_IN_KB', 3000, 1, INT32_MAX),
      maxPresenceEventsPerSecond: r.int('TENANT_MAX_PRESENCE_EVENTS_PER_SECOND', 1000, 0, INT32_MAX),
    },
    dbPoolSize: r.int('DB_POOL_SIZE', 10, 1, 1000),
    restSchemas: restSchemas(r.list('REST_SCHEMAS')),
    restMaxRows: r.optionalString('REST_MAX_ROWS') === null ? null : r.int('REST_MAX_ROWS', 0, 1, Number.MAX_SAFE_INTEGER),
    restStatementTimeoutMs: r.int('REST_STATEMENT_TIMEOUT_MS', 8000, 0, 86_400_000),
    functionsTimeoutMs: r.int('FUNCTIONS_TIMEOUT_MS', 10_000, 10, 3_600_000),
    functionsMemoryMb: r.int('FUNCTIONS_MEMORY_MB', 128, 1, 4096),
    functionsWorkers: r.int('FUNCTIONS_WORKERS', 4, 1, 256),
    functionsMaxBodyBytes: r.int('FUNCTIONS_MAX_BODY_BYTES', 8_000_000, 1, 256 * 1024 * 1024),
    functionsMaxCodeBytes: r.int('FUNCTIONS_MAX_CODE_BYTES', 20 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    functionsFetchAllow: fetchOrigins(r.list('FUNCTIONS_FETCH_ALLOW')),
    storageBackend: r.oneOf('STORAGE_BACKEND', ['file', 's3'] as const, 'file'),
    storageDir: r.string('STORAGE_DIR', `${r.string('PERFORMER_DATA_DIR', '.performer')}/storage`),
    storageFileSizeLimit: r.int('STORAGE_FILE_SIZE_LIMIT', 50 * 1024 * 1024, 1, Number.MAX_SAFE_INTEGER),
    storageSmallUploadBytes: r.int('STORAGE_SMALL_UPLOAD_BYTES', 256 * 1024, 0, 16 * 1024 * 1024),
    storageS3: {
      endpoint: r.optionalUrl('STORAGE_S3_ENDPOINT', ['http:', 'https:']),
      bucket: r.string('STORAGE_S3_BUCKET', 'performer-storage'),
      region: r.string('STORAGE_S3_REGION', 'us-east-1'),
      forcePathStyle: r.bool('STORAGE_S3_FORCE_PATH_STYLE', true),
    },
    controlDatabaseUrl: r.optionalUrl('CONTROL_DATABASE_URL', ['postgres:', 'postgresql:']),
    dbEncKey: r.secretKey('DB_ENC_KEY'),
    tenantCacheExpirationMs: r.int('TENANT_CACHE_EXPIRATION_IN_MS', 30_000, 100, 86_400_000),
    tenantIdleStopMs: r.int('TENANT_IDLE_STOP_MS', 600_000, 1000, 86_400_000),
    tenantBackoffMinMs: r.int('TENANT_BACKOFF_MIN_MS', 500, 10, 600_000),
    tenantBackoffMaxMs: r.int('TENANT_BACKOFF_MAX_MS', 30_000, 10, 3_600_000),
    tenantDbProbeMs: r.int('TENANT_DB_PROBE_MS', 5000, 100, 600_000),
    rateCounterTickMs: r.int('RATE_COUNTER_TICK_MS', 1000, 10, 60_000),
    rateCounterWindowMs: r.int('RATE_COUNTER_WINDOW_MS', 60_000, 10, 3_600_000),
    apiTokenBlocklist: r.list('API_TOKEN_BLOCKLIST'),
    changesGraceMs: r.int('CHANGES_GRACE_MS', 30_000, 0, 3_600_000),
    changesSlotIdleDropMs: r.int('CHANGES_SLOT_IDLE_DROP_MS', 600_000, 1000, 86_400_000),
    changesMaxLagBytes: r.int('CHANGES_MAX_LAG_BYTES', 1024 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER),
    changesLagCheckMs: r.int('CHANGES_LAG_CHECK_MS', 10_000, 100, 3_600_000),
    changesSlotWarnBytes: r.int('CHANGES_SLOT_WARN_BYTES', 256 * 1024 * 1024, 1024, Number.MAX_SAFE_INTEGER),
    changesRlsBatch: r.bool('CHANGES_RLS_BATCH', true),
    changesPipeline: r.bool('CHANGES_PIPELINE', true),
    slotNameSuffix: r.string('SLOT_NAME_SUFFIX', ''),
    runJanitor: r.bool('RUN_JANITOR', true),
    janitorIntervalMs: r.int('JANITOR_INTERVAL_MS', 3_600_000, 1000, 86_400_000),
    replicationReadyTimeoutMs: r.int('REPLICATION_READY_TIMEOUT_MS', 60_000, 100, 3_600_000),
    nodeName: r.nodeName('NODE_NAME', `${hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 100)}-${process.pid}`),
    metricsTokenBlocklist: r.list('METRICS_TOKEN_BLOCKLIST'),
    clientPresenceMaxCalls: r.int('CLIENT_PRESENCE_MAX_CALLS', 5, 1),
    clientPresenceWindowMs: r.int('CLIENT_PRESENCE_WINDOW_MS', 30_000, 1, 86_400_000),
    auth: loadAuthConfig(env),
  };
  checkManagementSecretsApart(config);
  if (config.clusterMemberTtlMs < 2 * config.clusterHeartbeatMs) {
    throw new ConfigError('CLUSTER_MEMBER_TTL_MS', 'must be at least twice CLUSTER_HEARTBEAT_MS, or a live node would flicker out of the cluster');
  }
  return config;
}

/** Origins (scheme://host[:port]) a function's fetch may reach; anything else in the list is refused. */
function fetchOrigins(entries: string[]): string[] {
  return entries.map((entry) => {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new ConfigError('FUNCTIONS_FETCH_ALLOW', `"${entry}" is not an origin`);
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== entry.replace(/\/$/, '')) {
      throw new ConfigError('FUNCTIONS_FETCH_ALLOW', `"${entry}" is not an http(s) origin`);
    }
    return url.origin;
  });
}

/** Exposed REST schemas: valid identifiers only (they reach SQL as quoted identifiers and header comparisons). */
function restSchemas(names: string[]): string[] {
  if (names.length === 0) return ['public'];
  for (const n of names) if (!/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(n)) throw new ConfigError('REST_SCHEMAS', `"${n}" is not a schema name`);
  return [...new Set(names)];
}

/**
 * A management secret that is also the default tenant's signing key would make that tenant's tokens (the public
 * anon key first) admin tokens of the management API: refused outright rather than tolerated.
 */
function checkManagementSecretsApart(config: Config): void {
  const tenantSigners = { secret: config.jwtSecret, jwks: config.jwtJwks };
  for (const [name, secret] of [['API_JWT_SECRET', config.apiJwtSecret], ['API_JWT_SECRET_NEXT', config.apiJwtSecretNext]] as const) {
    if (secret !== null && isHmacKeyOf(secret, tenantSigners)) {
      throw new ConfigError(name, "must differ from JWT_SECRET and JWT_JWKS keys, or the tenant's anon key would be a management token");
    }
  }
}
