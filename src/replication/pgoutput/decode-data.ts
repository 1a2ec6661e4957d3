import type { MessageReader } from './reader.js';
import {
  TUPLE_KEY,
  TUPLE_NEW,
  TUPLE_OLD,
  expectByte,
  hex,
  readOldTuple,
  readTupleData,
} from './tuple.js';
import type {
  DeleteMessage,
  InsertMessage,
  LogicalMessage,
  RelationColumn,
  RelationMessage,
  ReplicaIdentity,
  TruncateMessage,
  TypeMessage,
  UpdateMessage,
} from './types.js';

// Decoders for the messages that may sit inside a stream block. Each takes the
// already-read streamed xid (or null) so the dispatcher owns the context rules.

const TRUNCATE_CASCADE = 1;
const TRUNCATE_RESTART_IDENTITY = 2;
const MESSAGE_TRANSACTIONAL = 1;

function replicaIdentity(r: MessageReader, at: number, b: number): ReplicaIdentity {
  switch (b) {
    case 0x64: // 'd'
      return 'default';
    case 0x6e: // 'n'
      return 'nothing';
    case 0x66: // 'f'
      return 'full';
    case 0x69: // 'i'
      return 'index';
    default:
      return r.fail(`unknown replica identity 0x${hex(b)}`, at);
  }
}

export function decodeRelation(r: MessageReader, xid: number | null): RelationMessage {
  const relationId = r.u32('relation id');
  const namespace = r.cstring('namespace');
  const name = r.cstring('relation name');
  const identAt = r.pos;
  const ident = replicaIdentity(r, identAt, r.u8('replica identity'));
  const n = r.u16('column count');
  // flags(1) + name NUL(1) + type oid(4) + typmod(4)
  r.count(n, 10, 'relation column');
  const columns: RelationColumn[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const flags = r.u8('column flags');
    columns[i] = {
      flags,
      isKey: (flags & 1) !== 0,
      name: r.cstring('column name'),
      typeOid: r.u32('column type oid'),
      typeModifier: r.i32('column type modifier'),
    };
  }
  return { tag: 'relation', xid, relationId, namespace, name, replicaIdentity: ident, columns };
}

export function decodeType(r: MessageReader, xid: number | null): TypeMessage {
  const typeOid = r.u32('type oid');
  const namespace = r.cstring('type namespace');
  const name = r.cstring('type name');
  return { tag: 'type', xid, typeOid, namespace, name };
}

export function decodeInsert(r: MessageReader, xid: number | null): InsertMessage {
  const relationId = r.u32('relation id');
  expectByte(r, TUPLE_NEW, 'new tuple marker');
  return { tag: 'insert', xid, relationId, new: readTupleData(r) };
}

export function decodeUpdate(r: MessageReader, xid: number | null): UpdateMessage {
  const relationId = r.u32('relation id');
  const at = r.pos;
  const marker = r.u8('tuple marker');
  if (marker === TUPLE_NEW) {
    return { tag: 'update', xid, relationId, old: null, new: readTupleData(r) };
  }
  if (marker !== TUPLE_KEY && marker !== TUPLE_OLD) {
    r.fail(`expected tuple marker 'K', 'O' or 'N', got 0x${hex(marker)}`, at);
  }
  const old = readOldTuple(r, marker);
  expectByte(r, TUPLE_NEW, 'new tuple marker');
  return { tag: 'update', xid, relationId, old, new: readTupleData(r) };
}

export function decodeDelete(r: MessageReader, xid: number | null): DeleteMessage {
  const relationId = r.u32('relation id');
  const at = r.pos;
  const marker = r.u8('tuple marker');
  if (marker !== TUPLE_KEY && marker !== TUPLE_OLD) {
    r.fail(`expected tuple marker 'K' or 'O', got 0x${hex(marker)}`, at);
  }
  return { tag: 'delete', xid, relationId, old: readOldTuple(r, marker) };
}

export function decodeTruncate(r: MessageReader, xid: number | null): TruncateMessage {
  const n = r.u32('relation count');
  const options = r.u8('truncate options');
  r.count(n, 4, 'truncated relation');
  const relationIds: number[] = new Array(n);
  for (let i = 0; i < n; i++) relationIds[i] = r.u32('relation id');
  return {
    tag: 'truncate',
    xid,
    cascade: (options & TRUNCATE_CASCADE) !== 0,
    restartIdentity: (options & TRUNCATE_RESTART_IDENTITY) !== 0,
    relationIds,
  };
}

export function decodeLogicalMessage(r: MessageReader, xid: number | null): LogicalMessage {
  const flags = r.u8('message flags');
  const lsn = r.u64('message lsn');
  const prefix = r.cstring('message prefix');
  const content = r.slice(r.length('message content'));
  return {
    tag: 'message',
    xid,
    transactional: (flags & MESSAGE_TRANSACTIONAL) !== 0,
    lsn,
    prefix,
    content,
  };
}
