import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { actAs, inRolledBackTransaction } from '../../src/db/rls.js';
import { checkVisibility } from '../../src/replication/visibility.js';
import { nowUs, sleep } from '../lib/time.js';
import { f } from './report.js';
import type { Probe } from './types.js';


/**
 * Performer's per-(table, claims, transaction) visibility check (src/replication/visibility.ts checkVisibility, one
 * key) timed on bench_rls as the runs left it and on a 100-row copy with the same policy, next to the same
 * transaction doing a plain primary-key lookup: shows whether the check's cost follows the table size.
 */
export async function rlsProbe(db: pg.Client, url: string, owners: readonly string[]): Promise<Probe> {
  const K = owners.length;
  const make = async (name: string, rows: number) => {
    await db.query(`
      CREATE TABLE public.${name} (LIKE public.bench_rls INCLUDING ALL);
      ALTER TABLE public.${name} ENABLE ROW LEVEL SECURITY;
      CREATE POLICY own_rows ON public.${name} FOR SELECT TO authenticated USING (owner = auth.uid());
      GRANT SELECT ON public.${name} TO anon, authenticated;
    `);
    await db.query(`INSERT INTO public.${name} (id, owner, body) SELECT g, ($1::uuid[])[1 + (g % ${K})::int], 'x' FROM generate_series(1, ${rows}) g`, [owners]);
    await db.query(`ANALYZE public.${name}`);
    const oid = (await db.query<{ oid: number }>(`SELECT 'public.${name}'::regclass::oid::int AS oid`)).rows[0]!.oid;
    return { table: { relationId: oid, schema: 'public', name, primaryKey: [{ name: 'id', type: 'bigint' }] }, rows, id: String(rows) };
  };
  // Not in the publication: only the check is timed here.
  const small = await make('bench_rls_probe_small', 100);
  const big = await make('bench_rls_probe_big', 100_000);
  let pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'bench_probe' });
  const claims = { role: 'authenticated', sub: owners[0], session_id: randomUUID(), aud: 'authenticated' };
  const scans = async () =>
    (
      await db.query<{ seq: string; idx: string }>(
        `SELECT coalesce(seq_tup_read, 0)::text AS seq, coalesce(idx_scan, 0)::text AS idx FROM pg_stat_user_tables WHERE relid = $1`,
        [big.table.relationId],
      )
    ).rows[0] ?? { seq: '0', idx: '0' };
  await sleep(1200);
  const scansBefore = await scans();
  const median = async (fn: () => Promise<unknown>): Promise<number> => {
    const t: number[] = [];
    for (let i = 0; i < 7; i++) {
      const s0 = nowUs();
      await fn();
      t.push((nowUs() - s0) / 1000);
    }
    return t.sort((x, y) => x - y)[3]!;
  };
  try {
    const check = (x: typeof big) => async () => {
      const r = await checkVisibility(pool, x.table, [[x.id]], { claims }, true);
      if (!r.ok) throw new Error(`visibility check failed: ${r.failure.message}`);
    };
    const bigMs = await median(check(big));
    // The pool's backend reports its table statistics when it exits.
    await pool.end();
    await sleep(500);
    const scansAfter = await scans();
    pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'bench_probe' });
    const probe: Probe = {
      bigRows: big.rows,
      bigMs,
      smallRows: small.rows,
      smallMs: await median(check(small)),
      pkLookupMs: await median(() =>
        inRolledBackTransaction(pool, async (c) => {
          await actAs(c, { topic: '', claims });
          await c.query(`SELECT id FROM public.${big.table.name} WHERE id = ANY($1::bigint[])`, [[big.id]]);
        }),
      ),
      seqRowsPerCheck: (Number(scansAfter.seq) - Number(scansBefore.seq)) / 7,
      idxScansPerCheck: (Number(scansAfter.idx) - Number(scansBefore.idx)) / 7,
    };
    console.log(
      `RLS visibility check (1 key): ${f(probe.bigMs, 2)} ms on ${f(probe.bigRows)} rows, ${f(probe.smallMs, 2)} ms on ${f(probe.smallRows)} rows; ` +
        `same transaction with a primary-key lookup on ${f(probe.bigRows)} rows: ${f(probe.pkLookupMs, 2)} ms; ` +
        `per check on ${f(probe.bigRows)} rows: ${f(probe.seqRowsPerCheck)} rows read by sequential scan, ${f(probe.idxScansPerCheck, 1)} index scans`,
    );
    return probe;
  } finally {
    await pool.end().catch(() => undefined);
  }
}
