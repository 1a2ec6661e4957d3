import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  INVALID_LSN,
  PG_EPOCH_MS,
  PG_TIMESTAMP_INFINITY,
  PG_TIMESTAMP_NEG_INFINITY,
  PgoutputDecodeError,
  RelationCache,
  createPgoutputContext,
  dateToPgTimestamp,
  decodePgoutput,
  epochMsToPgTimestamp,
  formatLsn,
  parseLsn,
  pgTimestampToDate,
  pgTimestampToEpochMicros,
  pgTimestampToEpochMs,
  pgTimestampToIsoString,
  type RelationMessage,
} from '../../src/replication/pgoutput/index.js';

describe('LSN text helpers', () => {
  it.each([
    [0n, '0/0'],
    [0x16_b374_d848n, '16/B374D848'],
    [0x1_0000_0000n, '1/0'],
    [0xffff_ffffn, '0/FFFFFFFF'],
    [0x0000_0001_0000_00abn, '1/AB'],
    [2n ** 64n - 1n, 'FFFFFFFF/FFFFFFFF'],
  ])('formatLsn(%s) = %s and parses back', (lsn, text) => {
    expect(formatLsn(lsn)).toBe(text);
    expect(parseLsn(text)).toBe(lsn);
  });

  it('parses lower case and zero-padded forms', () => {
    expect(parseLsn('16/b374d848')).toBe(0x16_b374_d848n);
    expect(parseLsn('00000016/0B374D84')).toBe(0x16_0b37_4d84n);
    expect(parseLsn('0/00000001')).toBe(1n);
  });

  it.each(['', '16', '16/', '/1', '123456789/0', '0/123456789', 'G/0', ' 1/0', '1/0 ', '1//0', '-1/0', '0x1/0'])(
    'parseLsn rejects %j',
    (text) => {
      expect(() => parseLsn(text)).toThrow(PgoutputDecodeError);
    },
  );

  it('formatLsn rejects values outside 64 bits unsigned', () => {
    expect(() => formatLsn(-1n)).toThrow(RangeError);
    expect(() => formatLsn(2n ** 64n)).toThrow(RangeError);
  });

  it('INVALID_LSN is 0/0', () => {
    expect(formatLsn(INVALID_LSN)).toBe('0/0');
  });

  it('round-trips every 64-bit value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (lsn) => {
        expect(parseLsn(formatLsn(lsn))).toBe(lsn);
      }),
    );
  });
});

describe('timestamp helpers', () => {
  // 2024-03-15T12:34:56.789012Z: 8840 days + 45296 s after 2000-01-01, plus 789012 us.
  const TS = 763_821_296_789_012n;

  it('PostgreSQL epoch', () => {
    expect(PG_EPOCH_MS).toBe(Date.UTC(2000, 0, 1));
    expect(pgTimestampToEpochMs(0n)).toBe(946_684_800_000);
    expect(pgTimestampToIsoString(0n)).toBe('2000-01-01T00:00:00.000Z');
    expect(pgTimestampToIsoString(0n, 'us')).toBe('2000-01-01T00:00:00.000000Z');
  });

  it('a known instant', () => {
    expect(pgTimestampToEpochMs(TS)).toBe(1_710_506_096_789);
    expect(pgTimestampToEpochMicros(TS)).toBe(1_710_506_096_789_012n);
    expect(pgTimestampToDate(TS).toISOString()).toBe('2024-03-15T12:34:56.789Z');
    expect(pgTimestampToIsoString(TS)).toBe('2024-03-15T12:34:56.789Z');
    expect(pgTimestampToIsoString(TS, 'us')).toBe('2024-03-15T12:34:56.789012Z');
  });

  it('pre-2000 values floor towards the past', () => {
    expect(pgTimestampToEpochMs(-1n)).toBe(946_684_799_999);
    expect(pgTimestampToIsoString(-1n)).toBe('1999-12-31T23:59:59.999Z');
    expect(pgTimestampToIsoString(-1n, 'us')).toBe('1999-12-31T23:59:59.999999Z');
    expect(pgTimestampToIsoString(-1_000_000n, 'us')).toBe('1999-12-31T23:59:59.000000Z');
  });

  it('infinities and out-of-range values', () => {
    expect(pgTimestampToIsoString(PG_TIMESTAMP_INFINITY)).toBe('infinity');
    expect(pgTimestampToIsoString(PG_TIMESTAMP_NEG_INFINITY)).toBe('-infinity');
    expect(Number.isNaN(pgTimestampToDate(PG_TIMESTAMP_INFINITY).getTime())).toBe(true);
    expect(() => pgTimestampToIsoString(PG_TIMESTAMP_INFINITY - 1n)).toThrow(RangeError);
    expect(() => pgTimestampToIsoString(PG_TIMESTAMP_NEG_INFINITY + 1n)).toThrow(RangeError);
  });

  it('converts back from epoch ms and Date', () => {
    expect(epochMsToPgTimestamp(946_684_800_000)).toBe(0n);
    expect(epochMsToPgTimestamp(1_710_506_096_789)).toBe(763_821_296_789_000n);
    expect(dateToPgTimestamp(new Date('2024-03-15T12:34:56.789Z'))).toBe(763_821_296_789_000n);
    expect(epochMsToPgTimestamp(946_684_800_000.5)).toBe(500n);
    expect(() => epochMsToPgTimestamp(Number.NaN)).toThrow(RangeError);
  });

  it('ms precision agrees with Date#toISOString across the Date range', () => {
    const maxUs = 8_640_000_000_000_000_000n - 946_684_800_000_000n;
    const minUs = -8_640_000_000_000_000_000n - 946_684_800_000_000n;
    fc.assert(
      fc.property(fc.bigInt({ min: minUs, max: maxUs }), (ts) => {
        const ms = pgTimestampToEpochMs(ts);
        expect(pgTimestampToIsoString(ts)).toBe(new Date(ms).toISOString());
        expect(epochMsToPgTimestamp(ms)).toBe(ts - (((ts % 1000n) + 1000n) % 1000n));
      }),
    );
  });
});

describe('RelationCache', () => {
  const relationBytes = Buffer.from(
    '52 00004000 7075626C696300 757365727300 69 0002 01 696400 00000014 FFFFFFFF 00 6E616D6500 00000019 FFFFFFFF'.replace(
      /\s+/g,
      '',
    ),
    'hex',
  );
  const relation = decodePgoutput(relationBytes, createPgoutputContext(1)) as RelationMessage;

  it('stores by relation id, newest wins', () => {
    const cache = new RelationCache();
    expect(cache.get(16384)).toBeUndefined();
    cache.set(relation);
    expect(cache.has(16384)).toBe(true);
    expect(cache.size).toBe(1);
    const renamed: RelationMessage = { ...relation, name: 'people' };
    cache.set(renamed);
    expect(cache.get(16384)).toBe(renamed);
    expect(cache.size).toBe(1);
    expect(cache.delete(16384)).toBe(true);
    expect(cache.size).toBe(0);
    cache.set(relation);
    cache.clear();
    expect(cache.has(16384)).toBe(false);
  });

  it('zips a tuple with the relation columns and exposes the replica identity', () => {
    const cache = new RelationCache();
    cache.set(relation);
    const insert = decodePgoutput(
      Buffer.from('4900004000 4E 0002 74 00000001 37 6E'.replace(/\s+/g, ''), 'hex'),
      createPgoutputContext(1),
    );
    if (insert.tag !== 'insert') throw new Error('expected insert');
    const zipped = cache.zip(insert.relationId, insert.new);
    expect(zipped.relation.replicaIdentity).toBe('index');
    expect(zipped.relation.namespace).toBe('public');
    expect(zipped.columns).toStrictEqual([
      { flags: 1, isKey: true, name: 'id', typeOid: 20, typeModifier: -1, value: { kind: 'text', value: '7' } },
      { flags: 0, isKey: false, name: 'name', typeOid: 25, typeModifier: -1, value: { kind: 'null' } },
    ]);
  });

  it('unknown relation and column-count mismatch are PgoutputDecodeErrors', () => {
    const cache = new RelationCache();
    expect(() => cache.zip(1, [])).toThrow(/no Relation message seen for relation id 1/);
    expect(() => cache.require(1)).toThrow(PgoutputDecodeError);
    cache.set(relation);
    expect(() => cache.zip(16384, [{ kind: 'null' }])).toThrow(/tuple has 1 column\(s\) but relation public.users/);
  });
});
