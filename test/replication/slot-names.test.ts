import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { broadcastSlotTag, changesSlotName, escapeTenantId, isLegacyChangesSlot } from '../../src/replication/slot-names.js';
import { validSlotName } from '../../src/replication/stream-wire.js';

/** What earlier versions named the slot: the tenant lossily, then a hash of the URL's host:port/path. */
function legacySlotName(tenantId: string, databaseUrl: string): string {
  const tenant = tenantId.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30);
  const u = new URL(databaseUrl);
  return `performer_changes_${tenant}_${createHash('sha256').update(`${u.hostname}:${u.port}${u.pathname}`).digest('hex').slice(0, 10)}`;
}

/** The inverse of escapeTenantId: it exists, so the escaping is injective. */
function unescapeTenantId(escaped: string): string {
  let out = '';
  for (let i = 0; i < escaped.length; ) {
    if (escaped[i] !== '_') out += escaped[i++];
    else if (escaped[i + 1] === '_') {
      out += String.fromCharCode(Number.parseInt(escaped.slice(i + 2, i + 6), 16));
      i += 6;
    } else {
      out += String.fromCharCode(Number.parseInt(escaped.slice(i + 1, i + 3), 16));
      i += 3;
    }
  }
  return out;
}

/** Any UTF-16 string, lone surrogates included. */
const anyString = (maxLength: number) => fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength });
/** Tenant ids as the management API accepts them. */
const tenantId = fc.stringMatching(/^[A-Za-z0-9_-]{1,200}$/);
const oid = fc.integer({ min: 1, max: 0xffffffff }).map(String);

describe('changes slot names', () => {
  it('spell the database oid and the tenant out', () => {
    expect(changesSlotName('realtime-dev', '16384')).toBe('performer_cdc_16384_realtime_2ddev');
    expect(changesSlotName('a-b', '5')).toBe('performer_cdc_5_a_2db');
    expect(changesSlotName('a_b', '5')).toBe('performer_cdc_5_a_5fb');
    expect(changesSlotName('Ab', '5')).toBe('performer_cdc_5__41b');
    expect(changesSlotName('ab', '5')).toBe('performer_cdc_5_ab');
    expect(changesSlotName('é€', '5')).toBe('performer_cdc_5__e9__20ac');
  });

  it('do not depend on the address the database is reached at', () => {
    // Only the tenant and the database oid go in: a new port, host or password cannot change the name.
    expect(changesSlotName('realtime-dev', '16384')).toBe(changesSlotName('realtime-dev', '16384'));
    expect(legacySlotName('realtime-dev', 'postgres://u@127.0.0.1:5001/postgres')).not.toBe(legacySlotName('realtime-dev', 'postgres://u@127.0.0.1:5002/postgres'));
  });

  it('keep a-b and a_b apart where the earlier names did not', () => {
    const url = 'postgres://u@127.0.0.1:5432/postgres';
    expect(legacySlotName('a-b', url)).toBe(legacySlotName('a_b', url));
    expect(changesSlotName('a-b', '16384')).not.toBe(changesSlotName('a_b', '16384'));
  });

  it('escape any string injectively into [a-z0-9_]', () => {
    fc.assert(
      fc.property(anyString(80), (id) => {
        const escaped = escapeTenantId(id);
        expect(escaped).toMatch(/^[a-z0-9_]*$/);
        expect(unescapeTenantId(escaped)).toBe(id);
      }),
      { numRuns: 2000 },
    );
  });

  it('are valid slot names for any tenant id and oid, and never longer than 63', () => {
    fc.assert(
      fc.property(fc.oneof(tenantId, anyString(300)), oid, (id, o) => {
        const name = changesSlotName(id, o);
        expect(validSlotName(name)).toBe(true);
        expect(name.startsWith(`performer_cdc_${o}_`)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('differ for different tenants or databases, short or long ids alike', () => {
    fc.assert(
      fc.property(fc.oneof(tenantId, anyString(120)), fc.oneof(tenantId, anyString(120)), oid, oid, (a, b, oa, ob) => {
        fc.pre(a !== b || oa !== ob);
        expect(changesSlotName(a, oa)).not.toBe(changesSlotName(b, ob));
      }),
      { numRuns: 5000 },
    );
    // Long ids that only differ at the end: the hash of the whole id tells them apart.
    fc.assert(
      fc.property(tenantId, fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/), oid, (head, x, y, o) => {
        fc.pre(x !== y);
        const long = head.padEnd(120, 'x');
        expect(changesSlotName(long + x, o)).not.toBe(changesSlotName(long + y, o));
      }),
      { numRuns: 2000 },
    );
  });

  it('shorten a long id to a readable head and a hash of the whole id', () => {
    const id = 'Tenant-With-A-Very-Long-Name-'.repeat(6);
    const name = changesSlotName(id, '4294967295');
    expect(name).toHaveLength(63);
    expect(name).toMatch(/^performer_cdc_4294967295__54enant_2d_57ith_2d[a-z0-9_]*_z[0-9a-f]{16}$/);
    // The longest id that still fits is spelled out whole.
    const fits = 'a'.repeat(63 - 'performer_cdc_16384_'.length);
    expect(changesSlotName(fits, '16384')).toBe(`performer_cdc_16384_${fits}`);
    expect(changesSlotName(`${fits}a`, '16384')).toMatch(/_z[0-9a-f]{16}$/);
  });

  it('reject an oid that is not one', () => {
    expect(() => changesSlotName('t', '1; DROP')).toThrow(/invalid database oid/);
    expect(() => changesSlotName('t', '')).toThrow(/invalid database oid/);
  });
});

describe('slots of the earlier naming scheme', () => {
  it('are recognised for their tenant only', () => {
    const url = 'postgres://u:p@127.0.0.1:41234/postgres';
    expect(isLegacyChangesSlot(legacySlotName('realtime-dev', url), 'realtime-dev')).toBe(true);
    expect(isLegacyChangesSlot(legacySlotName('realtime-dev', url), 'realtime-dev2')).toBe(false);
    expect(isLegacyChangesSlot(legacySlotName('realtime', url), 'realtime-dev')).toBe(false);
    expect(isLegacyChangesSlot(legacySlotName('T'.repeat(40), url), 't'.repeat(31))).toBe(true); // the scheme cut at 30
    expect(isLegacyChangesSlot('performer_changes_realtime_dev_0123456789', 'realtime-dev')).toBe(true);
    expect(isLegacyChangesSlot('performer_changes_realtime_dev_012345678g', 'realtime-dev')).toBe(false);
    expect(isLegacyChangesSlot('performer_changes_realtime_dev_012345678', 'realtime-dev')).toBe(false);
    expect(isLegacyChangesSlot('supabase_realtime_messages_replication_slot_', 'realtime-dev')).toBe(false);
  });

  it('never include a slot of the current scheme, whatever the tenants', () => {
    fc.assert(
      fc.property(fc.oneof(tenantId, anyString(80)), fc.oneof(tenantId, anyString(80)), oid, (a, b, o) => {
        expect(isLegacyChangesSlot(changesSlotName(a, o), b)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('database-broadcast slot tag', () => {
  it('tells tenants and databases apart', () => {
    expect(broadcastSlotTag('a-b', '16384')).toMatch(/^[0-9a-f]{10}$/);
    expect(broadcastSlotTag('a-b', '16384')).not.toBe(broadcastSlotTag('a_b', '16384'));
    expect(broadcastSlotTag('a-b', '16384')).not.toBe(broadcastSlotTag('a-b', '16385'));
  });
});
