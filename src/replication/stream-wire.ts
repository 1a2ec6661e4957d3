import type pg from 'pg';
import type { ReplicationStatus, StatusListener } from './stream-types.js';
import { epochMsToPgTimestamp, parseLsn, type Lsn, type PgoutputProtocolVersion } from './pgoutput/index.js';

// Helpers of the replication stream: the bytes and commands it sends on its connection.

const STANDBY_STATUS_UPDATE = 0x72; // 'r'
const XLOG_DATA = 0x77; // 'w'
const PRIMARY_KEEPALIVE = 0x6b; // 'k'

/**
 * One CopyData message of the replication protocol: XLogData ('w': start, end, clock, payload from byte 25) or a
 * primary keepalive ('k': WAL end, clock, reply flag). Header fields are read as numbers and handed to the
 * callbacks, allocating nothing per message. False for anything else.
 */
export function readCopyData(
  chunk: Buffer,
  onData: (lsn: Lsn, payload: Buffer) => void,
  onKeepalive: (walEnd: Lsn, replyRequested: boolean) => void,
): boolean {
  if (chunk.length >= 25 && chunk[0] === XLOG_DATA) onData(chunk.readBigUInt64BE(1), chunk.subarray(25));
  else if (chunk.length >= 18 && chunk[0] === PRIMARY_KEEPALIVE) onKeepalive(chunk.readBigUInt64BE(1), chunk[17] !== 0);
  else return false;
  return true;
}

/** Client settings of a replication connection: text values pinned to the formats the decoders expect. */
export function replicationClientConfig(connection: string | pg.ClientConfig, applicationName?: string): pg.ClientConfig {
  const base = typeof connection === 'string' ? { connectionString: connection } : connection;
  return {
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
    ...base,
    application_name: applicationName ?? 'realtime_replication_connection',
    // Text-mode values are rendered with the walsender's settings; pin the ones decoders depend on.
    options: '-c bytea_output=hex -c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3',
  };
}

/**
 * A Standby Status Update: positions are "last byte + 1" already, sent exactly as given (the library's own
 * acknowledge() adds one, which would confirm a byte nobody handled).
 */
export function standbyStatusUpdate(write: Lsn, flush: Lsn, apply: Lsn, replyRequested: boolean, nowMs = Date.now()): Buffer {
  const buf = Buffer.allocUnsafe(34);
  buf[0] = STANDBY_STATUS_UPDATE;
  buf.writeBigUInt64BE(write, 1);
  buf.writeBigUInt64BE(flush, 9);
  buf.writeBigUInt64BE(apply, 17);
  buf.writeBigInt64BE(epochMsToPgTimestamp(nowMs), 25);
  buf[33] = replyRequested ? 1 : 0;
  return buf;
}

/** The highest pgoutput protocol the server speaks (14: streaming, 15: two-phase, 16: parallel streaming). */
export function chooseProtocolVersion(serverVersionNum: number): PgoutputProtocolVersion {
  if (!Number.isFinite(serverVersionNum)) return 1;
  if (serverVersionNum >= 160000) return 4;
  if (serverVersionNum >= 150000) return 3;
  if (serverVersionNum >= 140000) return 2;
  return 1;
}

/** Postgres only accepts lower-case letters, digits and underscores in slot names, up to NAMEDATALEN - 1. */
export function validSlotName(name: string): boolean {
  return /^[a-z0-9_]{1,63}$/.test(name);
}

/**
 * The publication_names option value: a string literal holding a comma-separated identifier list. Each name is
 * double-quoted (exact case, any character) and the literal's quotes doubled, so no name can break out.
 */
export function quotePublications(names: readonly string[]): string {
  const list = names.map((name) => `"${name.replace(/"/g, '""')}"`).join(',');
  return `'${list.replace(/'/g, "''")}'`;
}

/** The configured protocol version, or the highest the server speaks. */
export async function negotiateVersion(client: pg.Client, wanted: PgoutputProtocolVersion | 'auto' | undefined): Promise<PgoutputProtocolVersion> {
  if (wanted !== undefined && wanted !== 'auto') return wanted;
  const res = await client.query<{ server_version_num: string }>('SHOW server_version_num');
  return chooseProtocolVersion(Number(res.rows[0]?.server_version_num));
}

/**
 * Creates the slot on the replication connection (temporary: always, it dies with the session; persistent: when
 * missing) and returns its confirmed position. The slot name must have passed validSlotName().
 */
export async function ensureSlot(client: pg.Client, slot: string, temporary: boolean): Promise<Lsn> {
  // NOEXPORT_SNAPSHOT (rather than the PG15+ option list) keeps older servers working.
  const create = `CREATE_REPLICATION_SLOT ${slot} ${temporary ? 'TEMPORARY ' : ''}LOGICAL pgoutput NOEXPORT_SNAPSHOT`;
  if (temporary) {
    const res = await client.query<{ consistent_point: string }>(create);
    return parseLsn(res.rows[0]!.consistent_point);
  }
  try {
    await client.query(create);
  } catch (err) {
    if ((err as { code?: string }).code !== '42710') throw err; // duplicate_object: already there
  }
  // A replication connection refuses the extended protocol, so no $1 here: the name goes in as a literal quoted by
  // the driver (and it passed validSlotName, so there is nothing to quote).
  const res = await client.query<{ lsn: string | null }>(
    `SELECT confirmed_flush_lsn::text AS lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = ${client.escapeLiteral(slot)}`,
  );
  const lsn = res.rows[0]?.lsn;
  return lsn ? parseLsn(lsn) : 0n;
}

/** Reconnect delay after `attempt` failures in a row: initialMs doubling up to maxMs (defaults 500 ms and 30 s). */
export function backoffDelay(attempt: number, backoff: { initialMs?: number; maxMs?: number } = {}): number {
  return Math.min(backoff.maxMs ?? 30_000, (backoff.initialMs ?? 500) * 2 ** Math.min(attempt, 30));
}

/** The error_code logged for a failed or lost replication connection. */
export function failureCode(error: unknown): string {
  const e = error as { code?: string; message?: string } | null;
  if (e?.code === '53300' && /wal_senders|replication/i.test(e.message ?? '')) return 'ReplicationMaxWalSendersReached';
  if (e?.code === '42710' || e?.code === '55006') return 'ReplicationSlotBusy'; // exists / active elsewhere
  if (e?.code === '55000' && /wal_level/i.test(e.message ?? '')) return 'ReplicationWalLevelNotLogical';
  return 'ReplicationConnectionDown';
}

/** Resolves when promise settles or after ms, whichever is first; never rejects. */
export function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    void promise.then(done, done);
  });
}

/** Resolves once the stream reports `up`; rejects when it is missing or not up within ms. */
export function untilUp(stream: { readonly status: ReplicationStatus; onStatus(listener: StatusListener): () => void } | null, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!stream) return reject(new Error('changes stream not started'));
    const timer = setTimeout(() => {
      off();
      reject(new Error('the changes stream did not come up in time'));
    }, ms);
    const off = stream.onStatus((status) => {
      if (status !== 'up') return;
      clearTimeout(timer);
      off();
      resolve();
    });
    // It may have come up between the caller's check and the listener.
    if (stream.status === 'up') {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
}
