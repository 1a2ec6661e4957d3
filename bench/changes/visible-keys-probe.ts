import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { BatchViewer } from '../../src/replication/rls-batch.js';
import { sql as v10 } from '../../src/tenants/migrations/010-changes-visible-keys.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { procCpuSeconds } from '../lib/cpu.js';
import { startBenchPostgres } from '../lib/db.js';
import { Args } from '../lib/args.js';
import { nowUs } from '../lib/time.js';

/**
 * What one call of realtime.performer_visible_keys costs Postgres, per viewer, for the paced row's shape (bench_rls,
 * `owner = auth.uid()`, 100 viewers: 50 owners' tokens over 10 owners, 50 who own nothing), at a few batch sizes:
 * the function as this tree's migrations leave it next to migration 10's version (installed beside it under another
 * name), in the same database, alternating. The backend's CPU per call (/proc) is the figure outside load moves least.
 *
 *   node --import tsx bench/changes/visible-keys-probe.ts [--calls=200] [--keys=1,10,50] [--viewers=100] [--explain]
 */

const args = new Args();
const CALLS = args.number('calls', 200);
const KEY_COUNTS = args.numbers('keys', [1, 10, 50]);
const VIEWERS = args.number('viewers', 100);
const OWNERS = Array.from({ length: 10 }, () => randomUUID());

const OLD = 'realtime.performer_visible_keys_v10';

async function main(): Promise<void> {
  const db = await startBenchPostgres('visible-keys');
  const pool = new pg.Pool({ connectionString: db.server.url, max: 1 });
  // The server stops under idle connections at the end.
  pool.on('error', () => undefined);
  const admin = new pg.Client({ connectionString: db.server.url });
  try {
    await admin.connect();
    await migrateTenantDatabase(pool);
    // Migration 10's functions beside this tree's, under other names (each calls its own helpers).
    await admin.query(
      v10
        .replaceAll('realtime.performer_visible_keys(', `${OLD}(`)
        .replaceAll('realtime.performer_policy_reads(', 'realtime.performer_policy_reads_v10(')
        .replaceAll('realtime.performer_auth_functions(', 'realtime.performer_auth_functions_v10('),
    );
    await admin.query(`
      CREATE TABLE public.bench_rls (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
      ALTER TABLE public.bench_rls ENABLE ROW LEVEL SECURITY;
      CREATE POLICY own_rows ON public.bench_rls FOR SELECT TO authenticated USING (owner = auth.uid());
      GRANT SELECT ON public.bench_rls TO anon, authenticated;
    `);
    await admin.query(`INSERT INTO public.bench_rls (id, owner, body) SELECT g, ($1::uuid[])[1 + g % 10], 'x' FROM generate_series(1, 10000) g`, [OWNERS]);
    await admin.query('ANALYZE public.bench_rls');
    const oid = (await admin.query<{ oid: number }>(`SELECT 'public.bench_rls'::regclass::oid::int AS oid`)).rows[0]!.oid;
    const now = Math.floor(Date.now() / 1000);
    const viewers: BatchViewer[] = Array.from({ length: VIEWERS }, (_v, i) => {
      const claims = { role: 'authenticated', sub: i < VIEWERS / 2 ? OWNERS[i % 10] : randomUUID(), session_id: randomUUID(), aud: 'authenticated', iat: now, exp: now + 3600 };
      return { claims, claimsText: JSON.stringify(claims) };
    });
    const client = await pool.connect();
    const backend = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    client.release();
    console.log(`load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)}; ${VIEWERS} viewers, ${CALLS} calls per cell`);
    console.log('| keys | function | wall ms per call (median) | backend CPU ms per call | µs per viewer |');
    console.log('| ---: | --- | ---: | ---: | ---: |');
    for (const n of KEY_COUNTS) {
      const keys = Array.from({ length: n }, (_k, i) => [String(1 + ((i * 37) % 10000))]);
      // The call as the engine makes it (viewers sorted by role, then sub), to either function.
      const sorted = [...viewers].sort((a, b) => (String(a.claims.sub) < String(b.claims.sub) ? -1 : 1));
      const direct = (fn: string) => async () => {
        const c = await pool.connect();
        try {
          await c.query("BEGIN; SET LOCAL statement_timeout = '5s'");
          await c.query(`SELECT * FROM ${fn}($1::oid::regclass, $2, $3, $4, $5, $6, $7, $8)`, [
            oid,
            ['id'],
            keys,
            sorted.map((v) => v.claims.role),
            sorted.map((v) => v.claimsText),
            sorted.map((v) => v.claims.sub),
            sorted.map(() => null),
            [],
          ]);
        } finally {
          await c.query('ROLLBACK');
          c.release();
        }
      };
      const variants = [
        { label: 'migration 10', fn: direct(OLD), wall: [] as number[], cpu: 0 },
        { label: 'this tree', fn: direct('realtime.performer_visible_keys'), wall: [] as number[], cpu: 0 },
      ];
      for (const v of variants) for (let i = 0; i < 10; i++) await v.fn();
      for (let round = 0; round < CALLS / 10; round++) {
        for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
          const c0 = procCpuSeconds(backend);
          for (let i = 0; i < 10; i++) {
            const t0 = nowUs();
            await v.fn();
            v.wall.push((nowUs() - t0) / 1000);
          }
          v.cpu += procCpuSeconds(backend) - c0;
        }
      }
      for (const v of variants) {
        const wall = [...v.wall].sort((a, b) => a - b)[v.wall.length >> 1]!;
        const cpuMs = (v.cpu * 1000) / v.wall.length;
        console.log(`| ${n} | ${v.label} | ${wall.toFixed(2)} | ${cpuMs.toFixed(2)} | ${((cpuMs * 1000) / VIEWERS).toFixed(1)} |`);
      }
    }
  } finally {
    await admin.end().catch(() => undefined);
    await pool.end().catch(() => undefined);
    await db.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
