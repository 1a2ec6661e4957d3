import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PgoutputDecodeError,
  createPgoutputContext,
  decodePgoutput,
  type OldTuple,
  type PgoutputContext,
  type PgoutputMessage,
  type PgoutputProtocolVersion,
  type RelationColumn,
  type ReplicaIdentity,
  type TupleColumn,
  type TupleData,
} from '../../src/replication/pgoutput/index.js';

// Property: decode(encode(m)) deep-equals m for generated messages of every
// type. The encoder below is written independently from the decoder, straight
// from the documented layouts.

class Enc {
  private parts: Buffer[] = [];
  private fixed(size: number, fn: (b: Buffer) => void): this {
    const b = Buffer.alloc(size);
    fn(b);
    this.parts.push(b);
    return this;
  }
  ch(c: string) { return this.u8(c.charCodeAt(0)); }
  u8(v: number) { return this.fixed(1, (b) => b.writeUInt8(v)); }
  i16(v: number) { return this.fixed(2, (b) => b.writeInt16BE(v)); }
  i32(v: number) { return this.fixed(4, (b) => b.writeInt32BE(v)); }
  u32(v: number) { return this.fixed(4, (b) => b.writeUInt32BE(v)); }
  u64(v: bigint) { return this.fixed(8, (b) => b.writeBigUInt64BE(v)); }
  i64(v: bigint) { return this.fixed(8, (b) => b.writeBigInt64BE(v)); }
  str(s: string) { this.parts.push(Buffer.from(s, 'utf8'), Buffer.alloc(1)); return this; }
  bytes(b: Buffer) { this.i32(b.length); this.parts.push(b); return this; }
  xid(x: number | null) { return x === null ? this : this.u32(x); }
  tuple(t: TupleData) {
    this.i16(t.length);
    for (const c of t) {
      if (c.kind === 'null') this.ch('n');
      else if (c.kind === 'unchanged') this.ch('u');
      else if (c.kind === 'text') this.ch('t').bytes(Buffer.from(c.value, 'utf8'));
      else this.ch('b').bytes(c.value);
    }
    return this;
  }
  old(o: OldTuple) { return this.ch(o.kind === 'key' ? 'K' : 'O').tuple(o.tuple); }
  done(): Buffer { return Buffer.concat(this.parts); }
}

const IDENT_BYTE: Record<ReplicaIdentity, string> = { default: 'd', nothing: 'n', full: 'f', index: 'i' };

function encode(m: PgoutputMessage): Buffer {
  const e = new Enc();
  switch (m.tag) {
    case 'begin':
      return e.ch('B').u64(m.finalLsn).i64(m.commitTime).u32(m.xid).done();
    case 'commit':
      return e.ch('C').u8(m.flags).u64(m.commitLsn).u64(m.endLsn).i64(m.commitTime).done();
    case 'origin':
      return e.ch('O').u64(m.originLsn).str(m.name).done();
    case 'relation':
      e.ch('R').xid(m.xid).u32(m.relationId).str(m.namespace).str(m.name);
      e.ch(IDENT_BYTE[m.replicaIdentity]).i16(m.columns.length);
      for (const c of m.columns) e.u8(c.flags).str(c.name).u32(c.typeOid).i32(c.typeModifier);
      return e.done();
    case 'type':
      return e.ch('Y').xid(m.xid).u32(m.typeOid).str(m.namespace).str(m.name).done();
    case 'insert':
      return e.ch('I').xid(m.xid).u32(m.relationId).ch('N').tuple(m.new).done();
    case 'update':
      e.ch('U').xid(m.xid).u32(m.relationId);
      if (m.old !== null) e.old(m.old);
      return e.ch('N').tuple(m.new).done();
    case 'delete':
      return e.ch('D').xid(m.xid).u32(m.relationId).old(m.old).done();
    case 'truncate':
      e.ch('T').xid(m.xid).u32(m.relationIds.length).u8((m.cascade ? 1 : 0) | (m.restartIdentity ? 2 : 0));
      for (const id of m.relationIds) e.u32(id);
      return e.done();
    case 'message':
      return e.ch('M').xid(m.xid).u8(m.transactional ? 1 : 0).u64(m.lsn).str(m.prefix).bytes(m.content).done();
    case 'stream_start':
      return e.ch('S').u32(m.xid).u8(m.firstSegment ? 1 : 0).done();
    case 'stream_stop':
      return e.ch('E').done();
    case 'stream_commit':
      return e.ch('c').u32(m.xid).u8(m.flags).u64(m.commitLsn).u64(m.endLsn).i64(m.commitTime).done();
    case 'stream_abort':
      e.ch('A').u32(m.xid).u32(m.subXid);
      if (m.abortLsn !== null && m.abortTime !== null) e.u64(m.abortLsn).i64(m.abortTime);
      return e.done();
    case 'begin_prepare':
      return e.ch('b').u64(m.prepareLsn).u64(m.endLsn).i64(m.prepareTime).u32(m.xid).str(m.gid).done();
    case 'prepare':
    case 'stream_prepare':
      e.ch(m.tag === 'prepare' ? 'P' : 'p').u8(m.flags).u64(m.prepareLsn).u64(m.endLsn);
      return e.i64(m.prepareTime).u32(m.xid).str(m.gid).done();
    case 'commit_prepared':
      e.ch('K').u8(m.flags).u64(m.commitLsn).u64(m.endLsn).i64(m.commitTime);
      return e.u32(m.xid).str(m.gid).done();
    case 'rollback_prepared':
      e.ch('r').u8(m.flags).u64(m.prepareEndLsn).u64(m.rollbackEndLsn);
      return e.i64(m.prepareTime).i64(m.rollbackTime).u32(m.xid).str(m.gid).done();
  }
}

/** Lowest protocol version that can carry the message as generated. */
function minVersion(m: PgoutputMessage): PgoutputProtocolVersion {
  switch (m.tag) {
    case 'stream_abort':
      return m.abortLsn !== null ? 4 : 2;
    case 'stream_start':
    case 'stream_stop':
    case 'stream_commit':
      return 2;
    case 'begin_prepare':
    case 'prepare':
    case 'commit_prepared':
    case 'rollback_prepared':
    case 'stream_prepare':
      return 3;
    default:
      return 'xid' in m && m.xid !== null && m.tag !== 'begin' ? 2 : 1;
  }
}

const DATA_TAGS = new Set(['relation', 'type', 'insert', 'update', 'delete', 'truncate', 'message']);

/** Data messages with an xid, and Stream Stop, only decode inside a stream block. */
function contextFor(m: PgoutputMessage, version: PgoutputProtocolVersion): PgoutputContext {
  const ctx = createPgoutputContext(version);
  const streamed = m.tag === 'stream_stop' || (DATA_TAGS.has(m.tag) && 'xid' in m && m.xid !== null);
  if (streamed) {
    ctx.inStream = true;
    ctx.streamXid = 1;
  }
  return ctx;
}

// ---- arbitraries ----

const u8 = fc.integer({ min: 0, max: 0xff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const i32 = fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff });
const lsn = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const ts = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
// C strings cannot contain NUL; length-prefixed text can.
const cstr = fc.string({ unit: 'binary', maxLength: 12 }).map((s) => s.replace(/\0/g, ''));
const text = fc.string({ unit: 'binary', maxLength: 20 });
const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
const streamXid = fc.option(u32, { nil: null });

const column: fc.Arbitrary<TupleColumn> = fc.oneof(
  fc.constant<TupleColumn>({ kind: 'null' }),
  fc.constant<TupleColumn>({ kind: 'unchanged' }),
  text.map((value): TupleColumn => ({ kind: 'text', value })),
  bytes.map((value): TupleColumn => ({ kind: 'binary', value })),
);
const tuple = fc.array(column, { maxLength: 8 });
const oldTuple = fc.record({ kind: fc.constantFrom<OldTuple['kind']>('key', 'full'), tuple }, { noNullPrototype: true });

const relationColumn: fc.Arbitrary<RelationColumn> = fc
  .record({ flags: u8, name: cstr, typeOid: u32, typeModifier: i32 })
  .map((c) => ({ flags: c.flags, isKey: (c.flags & 1) !== 0, name: c.name, typeOid: c.typeOid, typeModifier: c.typeModifier }));

const tagged = <T extends PgoutputMessage['tag'], R extends object>(tag: T, a: fc.Arbitrary<R>) =>
  a.map((r) => ({ tag, ...r }) as PgoutputMessage);

const message: fc.Arbitrary<PgoutputMessage> = fc.oneof(
  tagged('begin', fc.record({ finalLsn: lsn, commitTime: ts, xid: u32 })),
  tagged('commit', fc.record({ flags: u8, commitLsn: lsn, endLsn: lsn, commitTime: ts })),
  tagged('origin', fc.record({ originLsn: lsn, name: cstr })),
  tagged(
    'relation',
    fc.record({
      xid: streamXid,
      relationId: u32,
      namespace: cstr,
      name: cstr,
      replicaIdentity: fc.constantFrom<ReplicaIdentity>('default', 'nothing', 'full', 'index'),
      columns: fc.array(relationColumn, { maxLength: 6 }),
    }),
  ),
  tagged('type', fc.record({ xid: streamXid, typeOid: u32, namespace: cstr, name: cstr })),
  tagged('insert', fc.record({ xid: streamXid, relationId: u32, new: tuple })),
  tagged('update', fc.record({ xid: streamXid, relationId: u32, old: fc.option(oldTuple, { nil: null }), new: tuple })),
  tagged('delete', fc.record({ xid: streamXid, relationId: u32, old: oldTuple })),
  tagged(
    'truncate',
    fc.record({ xid: streamXid, cascade: fc.boolean(), restartIdentity: fc.boolean(), relationIds: fc.array(u32, { maxLength: 8 }) }),
  ),
  tagged('message', fc.record({ xid: streamXid, transactional: fc.boolean(), lsn, prefix: cstr, content: bytes })),
  tagged('stream_start', fc.record({ xid: u32, firstSegment: fc.boolean() })),
  tagged('stream_stop', fc.record({})),
  tagged('stream_commit', fc.record({ xid: u32, flags: u8, commitLsn: lsn, endLsn: lsn, commitTime: ts })),
  tagged(
    'stream_abort',
    fc.oneof(
      fc.record({ xid: u32, subXid: u32, abortLsn: fc.constant(null), abortTime: fc.constant(null) }),
      fc.record({ xid: u32, subXid: u32, abortLsn: lsn, abortTime: ts }),
    ),
  ),
  tagged('begin_prepare', fc.record({ prepareLsn: lsn, endLsn: lsn, prepareTime: ts, xid: u32, gid: cstr })),
  tagged('prepare', fc.record({ flags: u8, prepareLsn: lsn, endLsn: lsn, prepareTime: ts, xid: u32, gid: cstr })),
  tagged('commit_prepared', fc.record({ flags: u8, commitLsn: lsn, endLsn: lsn, commitTime: ts, xid: u32, gid: cstr })),
  tagged(
    'rollback_prepared',
    fc.record({
      flags: u8,
      prepareEndLsn: lsn,
      rollbackEndLsn: lsn,
      prepareTime: ts,
      rollbackTime: ts,
      xid: u32,
      gid: cstr,
    }),
  ),
  tagged('stream_prepare', fc.record({ flags: u8, prepareLsn: lsn, endLsn: lsn, prepareTime: ts, xid: u32, gid: cstr })),
);

const versions: PgoutputProtocolVersion[] = [1, 2, 3, 4];

describe('pgoutput round trip', () => {
  it('decode(encode(m)) equals m for every message type and every protocol version that can carry it', () => {
    fc.assert(
      fc.property(message, fc.constantFrom(...versions), (m, v) => {
        const version = Math.max(v, minVersion(m)) as PgoutputProtocolVersion;
        expect(decodePgoutput(encode(m), contextFor(m, version))).toStrictEqual(m);
      }),
      { numRuns: 3000 },
    );
  });

  it('every strict prefix and any trailing byte is rejected with PgoutputDecodeError', () => {
    fc.assert(
      fc.property(message, u8, (m, extra) => {
        const version = minVersion(m);
        const full = encode(m);
        for (let len = 0; len < full.length; len++) {
          // A protocol-4 Stream Abort minus its optional suffix is itself valid.
          if (m.tag === 'stream_abort' && m.abortLsn !== null && len === 9) continue;
          expect(() => decodePgoutput(full.subarray(0, len), contextFor(m, version))).toThrow(PgoutputDecodeError);
        }
        const longer = Buffer.concat([full, Buffer.from([extra])]);
        expect(() => decodePgoutput(longer, contextFor(m, version))).toThrow(PgoutputDecodeError);
      }),
      { numRuns: 500 },
    );
  });

  it('generates every message tag', () => {
    const seen = new Set(fc.sample(message, 3000).map((m) => m.tag));
    expect(seen.size).toBe(19);
  });

  it('stream start / stop round-trip updates the shared context', () => {
    fc.assert(
      fc.property(u32, fc.boolean(), (xid, first) => {
        const ctx = createPgoutputContext(2);
        decodePgoutput(encode({ tag: 'stream_start', xid, firstSegment: first }), ctx);
        expect(ctx).toStrictEqual({ protoVersion: 2, inStream: true, streamXid: xid });
        decodePgoutput(encode({ tag: 'stream_stop' }), ctx);
        expect(ctx).toStrictEqual({ protoVersion: 2, inStream: false, streamXid: null });
      }),
    );
  });
});
