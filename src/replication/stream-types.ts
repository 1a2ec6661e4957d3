import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { Lsn, PgoutputMessage, PgoutputProtocolVersion } from './pgoutput/index.js';

/** One decoded pgoutput message and where it sits in the WAL. */
export interface ReplicationEvent {
  /** WAL position the server gave the XLogData carrying it (for a Commit: the end of the commit record). */
  lsn: Lsn;
  message: PgoutputMessage;
  /**
   * What to pass to `ack()` once this message and everything before it is handled: the commit end for a Commit,
   * just past a non-transactional logical message; null for messages inside a transaction.
   */
  ackLsn: Lsn | null;
}

/** Sync handlers run inline; a returned promise holds back the next message until it settles (in order). */
export type ReplicationHandler = (event: ReplicationEvent) => void | Promise<void>;

export type ReplicationStatus = 'down' | 'up' | 'stopped';
export type StatusListener = (status: ReplicationStatus, error: unknown) => void;

export interface ReplicationStreamOptions {
  /** Connection string or pg client config of the tenant database (a replication connection is made from it). */
  connection: string | pg.ClientConfig;
  publications: readonly string[];
  /** [a-z0-9_], at most 63 characters (Postgres' rule for slot names). */
  slot: string;
  /** A temporary slot lives as long as its connection; a persistent one is created when missing and kept. */
  temporary: boolean;
  handler: ReplicationHandler;
  /** Default 'auto': the highest version the server speaks (PG14: 2, PG15: 3, PG16+: 4). */
  protoVersion?: PgoutputProtocolVersion | 'auto';
  /** Ask pgoutput for logical decoding messages (pg_logical_emit_message). Default false. */
  messages?: boolean;
  /** Where a persistent slot starts when nothing was acknowledged yet (the slot's own position wins if later). */
  startLsn?: Lsn;
  /** Acknowledge each event's `ackLsn` as soon as its handler returned (or its promise resolved). Default false. */
  autoAck?: boolean;
  /** Runs before every connection attempt (e.g. to ensure the publication); a failure counts as a failed attempt. */
  prepare?: () => Promise<void>;
  /** Called with the position streaming starts from, just before START_REPLICATION (every connection). */
  onStreamStart?: (startLsn: Lsn) => void;
  /** Guards a stream run by a cluster's owner of the slot (see StreamFence). */
  fence?: StreamFence;
  log?: Logger;
  applicationName?: string;
  /** Reconnect delays: initialMs doubling up to maxMs. Defaults 500 ms and 30 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Standby status update period; keep it below the server's wal_sender_timeout. Default 10 s. */
  statusIntervalMs?: number;
  /** Reconnect when nothing (not even a keepalive) arrived for this long while reading. Default 60 s. */
  receiveTimeoutMs?: number;
  /** Pause reading from the server when this many messages wait for the handler; resume at lowWaterMark. */
  highWaterMark?: number;
  lowWaterMark?: number;
  /** How long stop() waits for a running handler before closing. Default 5 s. */
  stopTimeoutMs?: number;
}

/**
 * A cluster node may run a slot's stream only while it owns the tenant (a Redis lease with a fencing number).
 * `claim` runs on the replication connection before START_REPLICATION and throws when a newer owner holds the slot;
 * `valid` turns false as soon as the lease may have lapsed (a paused process included): from then on no position
 * is confirmed.
 */
export interface StreamFence {
  /** `client` may also be an ordinary connection: the claim is the same (an owner claims before it reads its records). */
  claim(client: pg.ClientBase, slot: string): Promise<void>;
  valid(): boolean;
  /**
   * The row of realtime.performer_stream_fences and the number this owner claims: a write made on its behalf (a
   * subscriber put on record) is refused once a newer owner's number is there.
   */
  readonly held?: { key: string; fence: number };
}
