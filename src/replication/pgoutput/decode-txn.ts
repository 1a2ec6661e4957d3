import type { MessageReader } from './reader.js';
import type {
  BeginMessage,
  BeginPrepareMessage,
  CommitMessage,
  CommitPreparedMessage,
  OriginMessage,
  PgoutputProtocolVersion,
  PrepareMessage,
  RollbackPreparedMessage,
  StreamAbortMessage,
  StreamCommitMessage,
  StreamPrepareMessage,
  StreamStartMessage,
} from './types.js';

// Transaction-boundary messages: never prefixed with a streamed xid.

export function decodeBegin(r: MessageReader): BeginMessage {
  const finalLsn = r.u64('final lsn');
  const commitTime = r.i64('commit timestamp');
  const xid = r.u32('xid');
  return { tag: 'begin', finalLsn, commitTime, xid };
}

export function decodeCommit(r: MessageReader): CommitMessage {
  const flags = r.u8('flags');
  const commitLsn = r.u64('commit lsn');
  const endLsn = r.u64('end lsn');
  const commitTime = r.i64('commit timestamp');
  return { tag: 'commit', flags, commitLsn, endLsn, commitTime };
}

export function decodeOrigin(r: MessageReader): OriginMessage {
  const originLsn = r.u64('origin lsn');
  const name = r.cstring('origin name');
  return { tag: 'origin', originLsn, name };
}

export function decodeStreamStart(r: MessageReader): StreamStartMessage {
  const xid = r.u32('xid');
  const first = r.u8('first segment flag');
  return { tag: 'stream_start', xid, firstSegment: first === 1 };
}

export function decodeStreamCommit(r: MessageReader): StreamCommitMessage {
  const xid = r.u32('xid');
  const flags = r.u8('flags');
  const commitLsn = r.u64('commit lsn');
  const endLsn = r.u64('end lsn');
  const commitTime = r.i64('commit timestamp');
  return { tag: 'stream_commit', xid, flags, commitLsn, endLsn, commitTime };
}

export function decodeStreamAbort(
  r: MessageReader,
  protoVersion: PgoutputProtocolVersion,
): StreamAbortMessage {
  const xid = r.u32('xid');
  const subXid = r.u32('subtransaction xid');
  // Protocol 4 only appends these with streaming = parallel, which the decoder
  // cannot know, so the message length decides. Anything else is left for end().
  if (protoVersion >= 4 && r.remaining > 0) {
    const abortLsn = r.u64('abort lsn');
    const abortTime = r.i64('abort timestamp');
    return { tag: 'stream_abort', xid, subXid, abortLsn, abortTime };
  }
  return { tag: 'stream_abort', xid, subXid, abortLsn: null, abortTime: null };
}

export function decodeBeginPrepare(r: MessageReader): BeginPrepareMessage {
  const prepareLsn = r.u64('prepare lsn');
  const endLsn = r.u64('end lsn');
  const prepareTime = r.i64('prepare timestamp');
  const xid = r.u32('xid');
  const gid = r.cstring('gid');
  return { tag: 'begin_prepare', prepareLsn, endLsn, prepareTime, xid, gid };
}

/** Prepare and Stream Prepare share one layout. */
function readPrepareBody(r: MessageReader) {
  const flags = r.u8('flags');
  const prepareLsn = r.u64('prepare lsn');
  const endLsn = r.u64('end lsn');
  const prepareTime = r.i64('prepare timestamp');
  const xid = r.u32('xid');
  const gid = r.cstring('gid');
  return { flags, prepareLsn, endLsn, prepareTime, xid, gid };
}

export function decodePrepare(r: MessageReader): PrepareMessage {
  return { tag: 'prepare', ...readPrepareBody(r) };
}

export function decodeStreamPrepare(r: MessageReader): StreamPrepareMessage {
  return { tag: 'stream_prepare', ...readPrepareBody(r) };
}

export function decodeCommitPrepared(r: MessageReader): CommitPreparedMessage {
  const flags = r.u8('flags');
  const commitLsn = r.u64('commit lsn');
  const endLsn = r.u64('end lsn');
  const commitTime = r.i64('commit timestamp');
  const xid = r.u32('xid');
  const gid = r.cstring('gid');
  return { tag: 'commit_prepared', flags, commitLsn, endLsn, commitTime, xid, gid };
}

export function decodeRollbackPrepared(r: MessageReader): RollbackPreparedMessage {
  const flags = r.u8('flags');
  const prepareEndLsn = r.u64('prepare end lsn');
  const rollbackEndLsn = r.u64('rollback end lsn');
  const prepareTime = r.i64('prepare timestamp');
  const rollbackTime = r.i64('rollback timestamp');
  const xid = r.u32('xid');
  const gid = r.cstring('gid');
  return {
    tag: 'rollback_prepared',
    flags,
    prepareEndLsn,
    rollbackEndLsn,
    prepareTime,
    rollbackTime,
    xid,
    gid,
  };
}
