/** A WAL position (XLogRecPtr): unsigned 64-bit. */
export type Lsn = bigint;

/** A PostgreSQL TimestampTz: signed microseconds since 2000-01-01T00:00:00Z. */
export type PgTimestamp = bigint;

export type PgoutputProtocolVersion = 1 | 2 | 3 | 4;

/**
 * Per-replication-stream decoding state. Keep exactly one per connection: the
 * decoder flips `inStream` on Stream Start / Stream Stop, and that flag decides
 * whether data messages carry a leading xid.
 */
export interface PgoutputContext {
  readonly protoVersion: PgoutputProtocolVersion;
  inStream: boolean;
  /** Top-level xid of the open stream block, or null outside one. */
  streamXid: number | null;
}

/** One column of a TupleData. Null and unchanged-TOAST columns are shared singletons. */
export type TupleColumn =
  | { readonly kind: 'null' }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'text'; readonly value: string }
  | { readonly kind: 'binary'; readonly value: Buffer };

/** Columns in relation order (aligned with the Relation message's columns). */
export type TupleData = TupleColumn[];

/** 'key': replica identity columns only (K); 'full': the whole old row (O). */
export interface OldTuple {
  kind: 'key' | 'full';
  tuple: TupleData;
}

export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

export interface RelationColumn {
  /** Raw flags byte; bit 0 marks a replica identity key column. */
  flags: number;
  isKey: boolean;
  name: string;
  typeOid: number;
  typeModifier: number;
}

/** Messages that gain a leading xid inside a stream block; null outside one. */
interface StreamableFields {
  xid: number | null;
}

export interface BeginMessage {
  tag: 'begin';
  finalLsn: Lsn;
  commitTime: PgTimestamp;
  xid: number;
}

export interface CommitMessage {
  tag: 'commit';
  flags: number;
  commitLsn: Lsn;
  endLsn: Lsn;
  commitTime: PgTimestamp;
}

export interface OriginMessage {
  tag: 'origin';
  originLsn: Lsn;
  name: string;
}

export interface RelationMessage extends StreamableFields {
  tag: 'relation';
  relationId: number;
  /** Empty string means pg_catalog. */
  namespace: string;
  name: string;
  replicaIdentity: ReplicaIdentity;
  columns: RelationColumn[];
}

export interface TypeMessage extends StreamableFields {
  tag: 'type';
  typeOid: number;
  namespace: string;
  name: string;
}

export interface InsertMessage extends StreamableFields {
  tag: 'insert';
  relationId: number;
  new: TupleData;
}

export interface UpdateMessage extends StreamableFields {
  tag: 'update';
  relationId: number;
  old: OldTuple | null;
  new: TupleData;
}

export interface DeleteMessage extends StreamableFields {
  tag: 'delete';
  relationId: number;
  old: OldTuple;
}

export interface TruncateMessage extends StreamableFields {
  tag: 'truncate';
  cascade: boolean;
  restartIdentity: boolean;
  relationIds: number[];
}

export interface LogicalMessage extends StreamableFields {
  tag: 'message';
  transactional: boolean;
  lsn: Lsn;
  prefix: string;
  content: Buffer;
}

export interface StreamStartMessage {
  tag: 'stream_start';
  xid: number;
  firstSegment: boolean;
}

export interface StreamStopMessage {
  tag: 'stream_stop';
}

export interface StreamCommitMessage {
  tag: 'stream_commit';
  xid: number;
  flags: number;
  commitLsn: Lsn;
  endLsn: Lsn;
  commitTime: PgTimestamp;
}

export interface StreamAbortMessage {
  tag: 'stream_abort';
  xid: number;
  /** Equals xid when the whole top-level transaction aborted. */
  subXid: number;
  /** Only sent with protocol 4 and streaming = parallel; null otherwise. */
  abortLsn: Lsn | null;
  abortTime: PgTimestamp | null;
}

export interface BeginPrepareMessage {
  tag: 'begin_prepare';
  prepareLsn: Lsn;
  endLsn: Lsn;
  prepareTime: PgTimestamp;
  xid: number;
  gid: string;
}

export interface PrepareMessage {
  tag: 'prepare';
  flags: number;
  prepareLsn: Lsn;
  endLsn: Lsn;
  prepareTime: PgTimestamp;
  xid: number;
  gid: string;
}

export interface CommitPreparedMessage {
  tag: 'commit_prepared';
  flags: number;
  commitLsn: Lsn;
  endLsn: Lsn;
  commitTime: PgTimestamp;
  xid: number;
  gid: string;
}

export interface RollbackPreparedMessage {
  tag: 'rollback_prepared';
  flags: number;
  prepareEndLsn: Lsn;
  rollbackEndLsn: Lsn;
  prepareTime: PgTimestamp;
  rollbackTime: PgTimestamp;
  xid: number;
  gid: string;
}

export interface StreamPrepareMessage {
  tag: 'stream_prepare';
  flags: number;
  prepareLsn: Lsn;
  endLsn: Lsn;
  prepareTime: PgTimestamp;
  xid: number;
  gid: string;
}

export type PgoutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage
  | StreamStartMessage
  | StreamStopMessage
  | StreamCommitMessage
  | StreamAbortMessage
  | BeginPrepareMessage
  | PrepareMessage
  | CommitPreparedMessage
  | RollbackPreparedMessage
  | StreamPrepareMessage;

export type PgoutputTag = PgoutputMessage['tag'];
