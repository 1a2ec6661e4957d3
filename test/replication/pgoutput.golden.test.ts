import { describe, expect, it } from 'vitest';
import {
  createPgoutputContext,
  decodePgoutput,
  type PgoutputMessage,
} from '../../src/replication/pgoutput/index.js';

// Golden bytes for the protocol-1 messages. The hex literals were written by
// hand from the "Logical Replication Message Formats" docs; the builder cases
// spell out each field so the layout is readable next to the expectation.

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Test-only field writer: one call per documented field. */
class W {
  private parts: Buffer[] = [];
  private push(size: number, fn: (b: Buffer) => void): this {
    const b = Buffer.alloc(size);
    fn(b);
    this.parts.push(b);
    return this;
  }
  ch(c: string) { return this.push(1, (b) => b.writeUInt8(c.charCodeAt(0))); }
  u8(v: number) { return this.push(1, (b) => b.writeUInt8(v)); }
  i16(v: number) { return this.push(2, (b) => b.writeInt16BE(v)); }
  i32(v: number) { return this.push(4, (b) => b.writeInt32BE(v)); }
  u32(v: number) { return this.push(4, (b) => b.writeUInt32BE(v)); }
  u64(v: bigint) { return this.push(8, (b) => b.writeBigUInt64BE(v)); }
  i64(v: bigint) { return this.push(8, (b) => b.writeBigInt64BE(v)); }
  str(s: string) { this.parts.push(Buffer.from(s, 'utf8'), Buffer.from([0])); return this; }
  raw(b: Buffer | string) { this.parts.push(typeof b === 'string' ? Buffer.from(b, 'utf8') : b); return this; }
  done(): Buffer { return Buffer.concat(this.parts); }
}

const v1 = (buf: Buffer): PgoutputMessage => decodePgoutput(buf, createPgoutputContext(1));

const LSN_A = 0x16_b374_d848n; // "16/B374D848"
const LSN_B = 0x16_b374_d878n;
const ONE_SECOND = 1_000_000n; // 2000-01-01T00:00:01Z

describe('pgoutput golden: transaction framing', () => {
  it('Begin (literal hex)', () => {
    const buf = hex('42 00000016B374D848 00000000000F4240 000004D2');
    expect(v1(buf)).toStrictEqual({ tag: 'begin', finalLsn: LSN_A, commitTime: ONE_SECOND, xid: 1234 });
  });

  it('Begin with xid above 2^31 stays unsigned', () => {
    const buf = hex('42 0000000000000001 FFFFFFFFFFFFFFFF FFFFFFFE');
    expect(v1(buf)).toStrictEqual({ tag: 'begin', finalLsn: 1n, commitTime: -1n, xid: 0xfffffffe });
  });

  it('Commit (literal hex)', () => {
    const buf = hex('43 00 00000016B374D848 00000016B374D878 00000000000F4240');
    expect(v1(buf)).toStrictEqual({
      tag: 'commit',
      flags: 0,
      commitLsn: LSN_A,
      endLsn: LSN_B,
      commitTime: ONE_SECOND,
    });
  });

  it('Origin (literal hex)', () => {
    const buf = hex('4F 0000000000000064 6E6F64653100'); // "node1\0"
    expect(v1(buf)).toStrictEqual({ tag: 'origin', originLsn: 100n, name: 'node1' });
  });
});

describe('pgoutput golden: schema messages', () => {
  it('Relation (literal hex) with a key column and default identity', () => {
    const buf = hex(
      '52 00004000 7075626C696300 757365727300 64 0002' + // id 16384, "public", "users", 'd', 2 cols
        '01 696400 00000014 FFFFFFFF' + // key, "id", int8, typmod -1
        '00 6E616D6500 00000413 00000068', // "name", varchar(100): typmod 104
    );
    expect(v1(buf)).toStrictEqual({
      tag: 'relation',
      xid: null,
      relationId: 16384,
      namespace: 'public',
      name: 'users',
      replicaIdentity: 'default',
      columns: [
        { flags: 1, isKey: true, name: 'id', typeOid: 20, typeModifier: -1 },
        { flags: 0, isKey: false, name: 'name', typeOid: 1043, typeModifier: 104 },
      ],
    });
  });

  it.each([
    ['n', 'nothing'],
    ['f', 'full'],
    ['i', 'index'],
  ] as const)('Relation replica identity %s -> %s, pg_catalog as empty namespace', (b, ident) => {
    const buf = new W().ch('R').u32(1259).str('').str('pg_class').ch(b).i16(0).done();
    expect(v1(buf)).toStrictEqual({
      tag: 'relation',
      xid: null,
      relationId: 1259,
      namespace: '',
      name: 'pg_class',
      replicaIdentity: ident,
      columns: [],
    });
  });

  it('Type (literal hex)', () => {
    const buf = hex('59 00004001 7075626C696300 6D6F6F6400'); // oid 16385, "public", "mood"
    expect(v1(buf)).toStrictEqual({ tag: 'type', xid: null, typeOid: 16385, namespace: 'public', name: 'mood' });
  });
});

describe('pgoutput golden: row changes', () => {
  it('Insert with n / u / t / b columns (literal hex)', () => {
    const buf = hex('49 00004000 4E 0004 6E 75 74 00000002 6869 62 00000003 DEADBE');
    expect(v1(buf)).toStrictEqual({
      tag: 'insert',
      xid: null,
      relationId: 16384,
      new: [
        { kind: 'null' },
        { kind: 'unchanged' },
        { kind: 'text', value: 'hi' },
        { kind: 'binary', value: Buffer.from([0xde, 0xad, 0xbe]) },
      ],
    });
  });

  it('Insert keeps multi-byte UTF-8 text and empty values', () => {
    const text = 'héllo ✓';
    const bytes = Buffer.from(text, 'utf8');
    const buf = new W().ch('I').u32(7).ch('N').i16(3)
      .ch('t').i32(bytes.length).raw(bytes)
      .ch('t').i32(0)
      .ch('b').i32(0)
      .done();
    expect(v1(buf)).toStrictEqual({
      tag: 'insert',
      xid: null,
      relationId: 7,
      new: [
        { kind: 'text', value: text },
        { kind: 'text', value: '' },
        { kind: 'binary', value: Buffer.alloc(0) },
      ],
    });
  });

  it('binary values are views into the input, not copies', () => {
    const buf = hex('49 00004000 4E 0001 62 00000002 CAFE');
    const msg = v1(buf);
    if (msg.tag !== 'insert' || msg.new[0]!.kind !== 'binary') throw new Error('unexpected');
    expect(msg.new[0]!.value.buffer).toBe(buf.buffer);
  });

  it('Update without old tuple', () => {
    const buf = new W().ch('U').u32(16384).ch('N').i16(2).ch('t').i32(1).raw('1').ch('u').done();
    expect(v1(buf)).toStrictEqual({
      tag: 'update',
      xid: null,
      relationId: 16384,
      old: null,
      new: [{ kind: 'text', value: '1' }, { kind: 'unchanged' }],
    });
  });

  it('Update with K (key) old tuple (literal hex)', () => {
    // Key tuple carries the key column; non-key columns are sent as nulls.
    const buf = hex('55 00004000 4B 0002 74 00000001 31 6E 4E 0002 74 00000001 32 74 00000001 61');
    expect(v1(buf)).toStrictEqual({
      tag: 'update',
      xid: null,
      relationId: 16384,
      old: { kind: 'key', tuple: [{ kind: 'text', value: '1' }, { kind: 'null' }] },
      new: [
        { kind: 'text', value: '2' },
        { kind: 'text', value: 'a' },
      ],
    });
  });

  it('Update with O (full) old tuple', () => {
    const buf = new W().ch('U').u32(99)
      .ch('O').i16(2).ch('t').i32(1).raw('1').ch('t').i32(3).raw('old')
      .ch('N').i16(2).ch('t').i32(1).raw('1').ch('t').i32(3).raw('new')
      .done();
    expect(v1(buf)).toStrictEqual({
      tag: 'update',
      xid: null,
      relationId: 99,
      old: { kind: 'full', tuple: [{ kind: 'text', value: '1' }, { kind: 'text', value: 'old' }] },
      new: [{ kind: 'text', value: '1' }, { kind: 'text', value: 'new' }],
    });
  });

  it('Delete with K (literal hex)', () => {
    const buf = hex('44 00004000 4B 0002 74 00000002 3432 6E');
    expect(v1(buf)).toStrictEqual({
      tag: 'delete',
      xid: null,
      relationId: 16384,
      old: { kind: 'key', tuple: [{ kind: 'text', value: '42' }, { kind: 'null' }] },
    });
  });

  it('Delete with O', () => {
    const buf = new W().ch('D').u32(16384).ch('O').i16(2).ch('t').i32(2).raw('42').ch('b').i32(1).raw(Buffer.from([7])).done();
    expect(v1(buf)).toStrictEqual({
      tag: 'delete',
      xid: null,
      relationId: 16384,
      old: { kind: 'full', tuple: [{ kind: 'text', value: '42' }, { kind: 'binary', value: Buffer.from([7]) }] },
    });
  });

  it('Truncate of several relations with cascade + restart identity (literal hex)', () => {
    const buf = hex('54 00000003 03 00004000 00004001 00004002');
    expect(v1(buf)).toStrictEqual({
      tag: 'truncate',
      xid: null,
      cascade: true,
      restartIdentity: true,
      relationIds: [16384, 16385, 16386],
    });
  });

  it.each([
    [0, false, false],
    [1, true, false],
    [2, false, true],
  ])('Truncate options %i', (opts, cascade, restartIdentity) => {
    const buf = new W().ch('T').u32(1).u8(opts).u32(5).done();
    expect(v1(buf)).toStrictEqual({ tag: 'truncate', xid: null, cascade, restartIdentity, relationIds: [5] });
  });
});

describe('pgoutput golden: logical decoding messages', () => {
  it('transactional Message (literal hex)', () => {
    const buf = hex('4D 01 0000000001000000 70667800 00000003 616263'); // "pfx", "abc"
    expect(v1(buf)).toStrictEqual({
      tag: 'message',
      xid: null,
      transactional: true,
      lsn: 0x1000000n,
      prefix: 'pfx',
      content: Buffer.from('abc'),
    });
  });

  it('non-transactional Message with binary content', () => {
    const content = Buffer.from([0, 1, 2, 0xff]);
    const buf = new W().ch('M').u8(0).u64(LSN_A).str('realtime').i32(content.length).raw(content).done();
    expect(v1(buf)).toStrictEqual({
      tag: 'message',
      xid: null,
      transactional: false,
      lsn: LSN_A,
      prefix: 'realtime',
      content,
    });
  });
});
