import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import {
  createPgoutputContext,
  decodePgoutput,
  pgTimestampToEpochMs,
  type PgoutputMessage,
  type PgoutputProtocolVersion,
} from '../../src/replication/pgoutput/index.js';

// Two-phase messages from a real PostgreSQL 18. PREPARE TRANSACTION needs
// max_prepared_transactions > 0, which the shared test server does not set, so
// this file runs its own small cluster.

let dataDir: string;
let server: EmbeddedPostgres;
let client: pg.Client;

const q = (sql: string) => client.query(sql);
const recent = (ts: bigint) => Math.abs(pgTimestampToEpochMs(ts) - Date.now()) < 120_000;

async function peek(slot: string, version: PgoutputProtocolVersion, extra: string[]): Promise<PgoutputMessage[]> {
  const opts = ['proto_version', String(version), 'publication_names', 'pub', 'two_phase', 'true', ...extra];
  const placeholders = opts.map((_, i) => `$${i + 2}`).join(', ');
  const res = await client.query<{ data: Buffer }>(
    `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, ${placeholders})`,
    [slot, ...opts],
  );
  const ctx = createPgoutputContext(version);
  const msgs = res.rows.map((row) => decodePgoutput(row.data, ctx));
  expect(ctx.inStream).toBe(false);
  return msgs;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-pgoutput-2pc-'));
  server = await startEmbeddedPostgres({ dataDir, ephemeral: true, settings: { max_prepared_transactions: 4 } });
  client = new pg.Client({ connectionString: server.url });
  await client.connect();
  await q(`CREATE TABLE t (id int PRIMARY KEY)`);
  await q(`CREATE PUBLICATION pub FOR TABLE t`);
}, 120_000);

afterAll(async () => {
  await client?.end();
  await server?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('pgoutput two-phase against PostgreSQL 18', () => {
  it('Begin Prepare / Prepare / Commit Prepared / Rollback Prepared (protocol 3)', async () => {
    // Last argument: two_phase slot, so prepared transactions are decoded at PREPARE time.
    await q(`SELECT pg_create_logical_replication_slot('tp', 'pgoutput', false, true)`);
    await q(`BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'gid-1'`);
    await q(`COMMIT PREPARED 'gid-1'`);
    await q(`BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION 'gid-2'`);
    await q(`ROLLBACK PREPARED 'gid-2'`);

    const msgs = await peek('tp', 3, []);
    expect(msgs.map((m) => m.tag)).toEqual([
      'begin_prepare',
      'relation',
      'insert',
      'prepare',
      'commit_prepared',
      'begin_prepare',
      'insert',
      'prepare',
      'rollback_prepared',
    ]);
    const [bp1, , , p1, cp1, bp2, , p2, rp2] = msgs;
    if (bp1!.tag !== 'begin_prepare' || p1!.tag !== 'prepare' || cp1!.tag !== 'commit_prepared') throw new Error();
    if (bp2!.tag !== 'begin_prepare' || p2!.tag !== 'prepare' || rp2!.tag !== 'rollback_prepared') throw new Error();

    expect(bp1).toMatchObject({ gid: 'gid-1', xid: p1.xid, prepareLsn: p1.prepareLsn, endLsn: p1.endLsn });
    expect(p1).toMatchObject({ flags: 0, gid: 'gid-1', prepareTime: bp1.prepareTime });
    expect(recent(p1.prepareTime)).toBe(true);
    expect(cp1).toMatchObject({ flags: 0, gid: 'gid-1', xid: p1.xid });
    // The COMMIT PREPARED record can directly follow the PREPARE record.
    expect(cp1.commitLsn >= p1.endLsn).toBe(true);
    expect(cp1.endLsn > cp1.commitLsn).toBe(true);
    expect(recent(cp1.commitTime)).toBe(true);

    expect(bp2).toMatchObject({ gid: 'gid-2', xid: p2.xid });
    expect(rp2).toMatchObject({
      flags: 0,
      gid: 'gid-2',
      xid: p2.xid,
      prepareEndLsn: p2.endLsn,
      prepareTime: p2.prepareTime,
    });
    expect(rp2.rollbackEndLsn > rp2.prepareEndLsn).toBe(true);
    expect(recent(rp2.rollbackTime)).toBe(true);
  });

  it('Stream Prepare for a streamed prepared transaction (protocol 4, streaming = parallel)', async () => {
    await q(`SELECT pg_create_logical_replication_slot('tps', 'pgoutput', false, true)`);
    await q(`SET debug_logical_replication_streaming = immediate`);
    await q(`BEGIN; INSERT INTO t VALUES (3); PREPARE TRANSACTION 'gid-3'`);
    await q(`COMMIT PREPARED 'gid-3'`);

    const msgs = await peek('tps', 4, ['streaming', 'parallel']);
    expect(msgs.map((m) => m.tag)).toEqual([
      'stream_start',
      'relation',
      'insert',
      'stream_stop',
      'stream_prepare',
      'commit_prepared',
    ]);
    const [start, , insert, , sp, cp] = msgs;
    if (start!.tag !== 'stream_start' || sp!.tag !== 'stream_prepare' || cp!.tag !== 'commit_prepared') throw new Error();
    expect(insert).toMatchObject({ xid: start.xid, new: [{ kind: 'text', value: '3' }] });
    expect(sp).toMatchObject({ flags: 0, xid: start.xid, gid: 'gid-3' });
    expect(recent(sp.prepareTime)).toBe(true);
    expect(cp).toMatchObject({ xid: start.xid, gid: 'gid-3' });
    await q(`RESET debug_logical_replication_streaming`);
  });
});
