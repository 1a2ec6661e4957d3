import {
  decodeDelete,
  decodeInsert,
  decodeLogicalMessage,
  decodeRelation,
  decodeTruncate,
  decodeType,
  decodeUpdate,
} from './decode-data.js';
import {
  decodeBegin,
  decodeBeginPrepare,
  decodeCommit,
  decodeCommitPrepared,
  decodeOrigin,
  decodePrepare,
  decodeRollbackPrepared,
  decodeStreamAbort,
  decodeStreamCommit,
  decodeStreamPrepare,
  decodeStreamStart,
} from './decode-txn.js';
import { PgoutputDecodeError } from './errors.js';
import { MessageReader } from './reader.js';
import { hex } from './tuple.js';
import type { PgoutputContext, PgoutputMessage, PgoutputProtocolVersion } from './types.js';

export function createPgoutputContext(protoVersion: number): PgoutputContext {
  if (protoVersion !== 1 && protoVersion !== 2 && protoVersion !== 3 && protoVersion !== 4) {
    throw new PgoutputDecodeError(`unsupported pgoutput protocol version ${protoVersion}`);
  }
  return { protoVersion, inStream: false, streamXid: null };
}

type DataDecoder = (r: MessageReader, xid: number | null) => PgoutputMessage;

interface Spec {
  label: string;
  minVersion: PgoutputProtocolVersion;
}

const DATA: Record<number, Spec & { decode: DataDecoder }> = {
  0x52: { label: 'Relation', minVersion: 1, decode: decodeRelation }, // R
  0x59: { label: 'Type', minVersion: 1, decode: decodeType }, // Y
  0x49: { label: 'Insert', minVersion: 1, decode: decodeInsert }, // I
  0x55: { label: 'Update', minVersion: 1, decode: decodeUpdate }, // U
  0x44: { label: 'Delete', minVersion: 1, decode: decodeDelete }, // D
  0x54: { label: 'Truncate', minVersion: 1, decode: decodeTruncate }, // T
  0x4d: { label: 'Message', minVersion: 1, decode: decodeLogicalMessage }, // M
};

const CONTROL: Record<number, Spec & { decode: (r: MessageReader, ctx: PgoutputContext) => PgoutputMessage }> = {
  0x42: { label: 'Begin', minVersion: 1, decode: decodeBegin }, // B
  0x43: { label: 'Commit', minVersion: 1, decode: decodeCommit }, // C
  0x4f: { label: 'Origin', minVersion: 1, decode: decodeOrigin }, // O
  0x53: { label: 'Stream Start', minVersion: 2, decode: decodeStreamStart }, // S
  0x45: { label: 'Stream Stop', minVersion: 2, decode: () => ({ tag: 'stream_stop' }) }, // E
  0x63: { label: 'Stream Commit', minVersion: 2, decode: decodeStreamCommit }, // c
  0x41: { label: 'Stream Abort', minVersion: 2, decode: (r, ctx) => decodeStreamAbort(r, ctx.protoVersion) }, // A
  0x62: { label: 'Begin Prepare', minVersion: 3, decode: decodeBeginPrepare }, // b
  0x50: { label: 'Prepare', minVersion: 3, decode: decodePrepare }, // P
  0x4b: { label: 'Commit Prepared', minVersion: 3, decode: decodeCommitPrepared }, // K
  0x72: { label: 'Rollback Prepared', minVersion: 3, decode: decodeRollbackPrepared }, // r
  0x70: { label: 'Stream Prepare', minVersion: 3, decode: decodeStreamPrepare }, // p
};

/**
 * Decodes one pgoutput message: the payload of an XLogData ('w') message,
 * starting with the message type byte. Binary column values and Message
 * content are views into `buf`, not copies.
 *
 * Updates `ctx.inStream` / `ctx.streamXid` on Stream Start / Stream Stop, only
 * after the message decoded successfully.
 *
 * @throws PgoutputDecodeError for any malformed or unexpected input.
 */
export function decodePgoutput(buf: Buffer, ctx: PgoutputContext): PgoutputMessage {
  if (buf.length === 0) throw new PgoutputDecodeError('empty pgoutput message', 0);
  const r = new MessageReader(buf);
  const type = r.u8('message type');

  const data = DATA[type];
  if (data !== undefined) {
    r.label = data.label;
    // Protocol 1 has no streaming, so inStream is never set there.
    const xid = ctx.inStream ? r.u32('streamed xid') : null;
    const msg = data.decode(r, xid);
    r.end();
    return msg;
  }

  const control = CONTROL[type];
  if (control === undefined) {
    throw new PgoutputDecodeError(`unknown pgoutput message type 0x${hex(type)} (${printable(type)})`, 0);
  }
  r.label = control.label;
  if (ctx.protoVersion < control.minVersion) {
    throw new PgoutputDecodeError(
      `${control.label} message requires protocol version ${control.minVersion}, negotiated ${ctx.protoVersion}`,
      0,
    );
  }
  const msg = control.decode(r, ctx);
  r.end();
  applyStreamState(msg, ctx);
  return msg;
}

function applyStreamState(msg: PgoutputMessage, ctx: PgoutputContext): void {
  if (msg.tag === 'stream_start') {
    if (ctx.inStream) {
      throw new PgoutputDecodeError(
        `Stream Start for xid ${msg.xid} while stream for xid ${ctx.streamXid} is still open`,
      );
    }
    ctx.inStream = true;
    ctx.streamXid = msg.xid;
  } else if (msg.tag === 'stream_stop') {
    if (!ctx.inStream) throw new PgoutputDecodeError('Stream Stop without a preceding Stream Start');
    ctx.inStream = false;
    ctx.streamXid = null;
  }
}

function printable(b: number): string {
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : 'non-printable';
}
