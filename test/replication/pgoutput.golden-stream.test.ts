import { describe, expect, it } from 'vitest';
import {
  PgoutputDecodeError,
  createPgoutputContext,
  decodePgoutput,
} from '../../src/replication/pgoutput/index.js';

// Golden bytes for protocol 2 (streaming), 3 (two-phase) and 4 (parallel
// stream abort). All literals are hand-derived from the protocol docs.

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const LSN_A = 0x16_b374_d848n;
const LSN_B = 0x16_b374_d878n;
const ONE_SECOND = 1_000_000n;
const TWO_SECONDS = 2_000_000n;

const LSN_A_HEX = '00000016B374D848';
const LSN_B_HEX = '00000016B374D878';
const ONE_SECOND_HEX = '00000000000F4240';
const TWO_SECONDS_HEX = '00000000001E8480';
const GID_HEX = '7478312D676964 00'; // "tx1-gid"

describe('pgoutput golden: protocol 2 streaming', () => {
  it('decodes a full stream block and tracks the in-stream flag', () => {
    const ctx = createPgoutputContext(2);

    expect(decodePgoutput(hex('53 000003E8 01'), ctx)).toStrictEqual({
      tag: 'stream_start',
      xid: 1000,
      firstSegment: true,
    });
    expect(ctx).toStrictEqual({ protoVersion: 2, inStream: true, streamXid: 1000 });

    // Relation inside the stream: leading xid 1000.
    const rel = hex('52 000003E8 00004000 7075626C696300 7400 66 0001 01 696400 00000017 FFFFFFFF');
    expect(decodePgoutput(rel, ctx)).toStrictEqual({
      tag: 'relation',
      xid: 1000,
      relationId: 16384,
      namespace: 'public',
      name: 't',
      replicaIdentity: 'full',
      columns: [{ flags: 1, isKey: true, name: 'id', typeOid: 23, typeModifier: -1 }],
    });

    // A change from subtransaction 1001 carries the subxact's xid.
    const ins = hex('49 000003E9 00004000 4E 0001 74 00000001 78');
    expect(decodePgoutput(ins, ctx)).toStrictEqual({
      tag: 'insert',
      xid: 1001,
      relationId: 16384,
      new: [{ kind: 'text', value: 'x' }],
    });

    const upd = hex('55 000003E8 00004000 4F 0001 74 00000001 78 4E 0001 74 00000001 79');
    expect(decodePgoutput(upd, ctx)).toStrictEqual({
      tag: 'update',
      xid: 1000,
      relationId: 16384,
      old: { kind: 'full', tuple: [{ kind: 'text', value: 'x' }] },
      new: [{ kind: 'text', value: 'y' }],
    });

    const del = hex('44 000003E8 00004000 4B 0001 74 00000001 79');
    expect(decodePgoutput(del, ctx)).toStrictEqual({
      tag: 'delete',
      xid: 1000,
      relationId: 16384,
      old: { kind: 'key', tuple: [{ kind: 'text', value: 'y' }] },
    });

    const typ = hex('59 000003E8 00004001 7075626C696300 6D6F6F6400');
    expect(decodePgoutput(typ, ctx)).toStrictEqual({
      tag: 'type',
      xid: 1000,
      typeOid: 16385,
      namespace: 'public',
      name: 'mood',
    });

    const trunc = hex('54 000003E8 00000002 01 00004000 00004001');
    expect(decodePgoutput(trunc, ctx)).toStrictEqual({
      tag: 'truncate',
      xid: 1000,
      cascade: true,
      restartIdentity: false,
      relationIds: [16384, 16385],
    });

    const msg = hex(`4D 000003E8 01 ${LSN_A_HEX} 7000 00000000`);
    expect(decodePgoutput(msg, ctx)).toStrictEqual({
      tag: 'message',
      xid: 1000,
      transactional: true,
      lsn: LSN_A,
      prefix: 'p',
      content: Buffer.alloc(0),
    });

    expect(decodePgoutput(hex('45'), ctx)).toStrictEqual({ tag: 'stream_stop' });
    expect(ctx).toStrictEqual({ protoVersion: 2, inStream: false, streamXid: null });

    // Outside the block the same Insert bytes would be misread, so data
    // messages go back to having no xid.
    const plain = hex('49 00004000 4E 0001 74 00000001 7A');
    expect(decodePgoutput(plain, ctx)).toMatchObject({ tag: 'insert', xid: null, relationId: 16384 });
  });

  it('Stream Start for a later segment', () => {
    expect(decodePgoutput(hex('53 000003E8 00'), createPgoutputContext(2))).toStrictEqual({
      tag: 'stream_start',
      xid: 1000,
      firstSegment: false,
    });
  });

  it('Stream Commit', () => {
    const buf = hex(`63 000003E8 00 ${LSN_A_HEX} ${LSN_B_HEX} ${ONE_SECOND_HEX}`);
    expect(decodePgoutput(buf, createPgoutputContext(2))).toStrictEqual({
      tag: 'stream_commit',
      xid: 1000,
      flags: 0,
      commitLsn: LSN_A,
      endLsn: LSN_B,
      commitTime: ONE_SECOND,
    });
  });

  it('Stream Abort (protocol 2: xid + subxid only)', () => {
    expect(decodePgoutput(hex('41 000003E8 000003E9'), createPgoutputContext(2))).toStrictEqual({
      tag: 'stream_abort',
      xid: 1000,
      subXid: 1001,
      abortLsn: null,
      abortTime: null,
    });
  });

  it('Stream Abort with abort lsn + timestamp is rejected before protocol 4', () => {
    const buf = hex(`41 000003E8 000003E8 ${LSN_A_HEX} ${ONE_SECOND_HEX}`);
    expect(() => decodePgoutput(buf, createPgoutputContext(3))).toThrow(PgoutputDecodeError);
  });

  it('Stream Start while a stream is open and Stream Stop without one are rejected', () => {
    const ctx = createPgoutputContext(2);
    expect(() => decodePgoutput(hex('45'), ctx)).toThrow(/Stream Stop without/);
    decodePgoutput(hex('53 00000001 01'), ctx);
    expect(() => decodePgoutput(hex('53 00000002 01'), ctx)).toThrow(/still open/);
    expect(ctx.streamXid).toBe(1);
  });

  it('a failed decode leaves the context untouched', () => {
    const ctx = createPgoutputContext(2);
    expect(() => decodePgoutput(hex('53 000003E8'), ctx)).toThrow(PgoutputDecodeError);
    expect(ctx.inStream).toBe(false);
  });

  it.each(['53 00000001 01', '45', '63', '41 00000001 00000001'])(
    'protocol 1 rejects streaming message %s',
    (h) => {
      expect(() => decodePgoutput(hex(h), createPgoutputContext(1))).toThrow(/requires protocol version 2/);
    },
  );
});

describe('pgoutput golden: protocol 3 two-phase', () => {
  it('Begin Prepare', () => {
    const buf = hex(`62 ${LSN_A_HEX} ${LSN_B_HEX} ${ONE_SECOND_HEX} 000004D2 ${GID_HEX}`);
    expect(decodePgoutput(buf, createPgoutputContext(3))).toStrictEqual({
      tag: 'begin_prepare',
      prepareLsn: LSN_A,
      endLsn: LSN_B,
      prepareTime: ONE_SECOND,
      xid: 1234,
      gid: 'tx1-gid',
    });
  });

  it('Prepare', () => {
    const buf = hex(`50 00 ${LSN_A_HEX} ${LSN_B_HEX} ${ONE_SECOND_HEX} 000004D2 ${GID_HEX}`);
    expect(decodePgoutput(buf, createPgoutputContext(3))).toStrictEqual({
      tag: 'prepare',
      flags: 0,
      prepareLsn: LSN_A,
      endLsn: LSN_B,
      prepareTime: ONE_SECOND,
      xid: 1234,
      gid: 'tx1-gid',
    });
  });

  it('Commit Prepared', () => {
    const buf = hex(`4B 00 ${LSN_A_HEX} ${LSN_B_HEX} ${TWO_SECONDS_HEX} 000004D2 ${GID_HEX}`);
    expect(decodePgoutput(buf, createPgoutputContext(3))).toStrictEqual({
      tag: 'commit_prepared',
      flags: 0,
      commitLsn: LSN_A,
      endLsn: LSN_B,
      commitTime: TWO_SECONDS,
      xid: 1234,
      gid: 'tx1-gid',
    });
  });

  it('Rollback Prepared', () => {
    const buf = hex(`72 00 ${LSN_A_HEX} ${LSN_B_HEX} ${ONE_SECOND_HEX} ${TWO_SECONDS_HEX} 000004D2 ${GID_HEX}`);
    expect(decodePgoutput(buf, createPgoutputContext(3))).toStrictEqual({
      tag: 'rollback_prepared',
      flags: 0,
      prepareEndLsn: LSN_A,
      rollbackEndLsn: LSN_B,
      prepareTime: ONE_SECOND,
      rollbackTime: TWO_SECONDS,
      xid: 1234,
      gid: 'tx1-gid',
    });
  });

  it('Stream Prepare', () => {
    const buf = hex(`70 00 ${LSN_A_HEX} ${LSN_B_HEX} ${ONE_SECOND_HEX} 000003E8 ${GID_HEX}`);
    expect(decodePgoutput(buf, createPgoutputContext(3))).toStrictEqual({
      tag: 'stream_prepare',
      flags: 0,
      prepareLsn: LSN_A,
      endLsn: LSN_B,
      prepareTime: ONE_SECOND,
      xid: 1000,
      gid: 'tx1-gid',
    });
  });

  it.each(['62', '50', '4B', '72', '70'])('protocol 2 rejects two-phase message type %s', (t) => {
    expect(() => decodePgoutput(hex(t), createPgoutputContext(2))).toThrow(/requires protocol version 3/);
  });
});

describe('pgoutput golden: protocol 4 stream abort', () => {
  it('Stream Abort with abort lsn + timestamp (streaming = parallel)', () => {
    const buf = hex(`41 000003E8 000003E9 ${LSN_A_HEX} ${TWO_SECONDS_HEX}`);
    expect(decodePgoutput(buf, createPgoutputContext(4))).toStrictEqual({
      tag: 'stream_abort',
      xid: 1000,
      subXid: 1001,
      abortLsn: LSN_A,
      abortTime: TWO_SECONDS,
    });
  });

  it('Stream Abort without the parallel fields (streaming = on)', () => {
    expect(decodePgoutput(hex('41 000003E8 000003E8'), createPgoutputContext(4))).toStrictEqual({
      tag: 'stream_abort',
      xid: 1000,
      subXid: 1000,
      abortLsn: null,
      abortTime: null,
    });
  });

  it('Stream Abort with a partial parallel suffix is malformed', () => {
    const buf = hex(`41 000003E8 000003E8 ${LSN_A_HEX} 0000`);
    expect(() => decodePgoutput(buf, createPgoutputContext(4))).toThrow(PgoutputDecodeError);
  });
});

describe('createPgoutputContext', () => {
  it.each([0, 5, 1.5, Number.NaN])('rejects protocol version %s', (v) => {
    expect(() => createPgoutputContext(v)).toThrow(PgoutputDecodeError);
  });
});
