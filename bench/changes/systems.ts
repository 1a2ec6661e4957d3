import path from 'node:path';
import { changesSlotName } from '../../src/replication/slot-names.js';
import { connectSessions, type Session } from '../lib/db.js';
import { startPerformer, type PerformerBuild } from '../lib/performer.js';
import { args, opts, OWNERS, PUBLICATION } from './options.js';
import { Producers } from './producers.js';
import type { Bench, System } from './rows.js';
import { jitWarm, jwtSecret } from './subs.js';
import type { RlsCheck } from './types.js';

/**
 * The Performers of a Postgres Changes run: this tree's, and with --compare the other revision's, each in a child
 * process; --scale restarts one with another RLS check (CHANGES_RLS_BATCH).
 */

const BENCH_TABLES = `
  CREATE TABLE public.bench (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
  CREATE TABLE public.bench_rls (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
  ALTER TABLE public.bench_rls ENABLE ROW LEVEL SECURITY;
  CREATE POLICY own_rows ON public.bench_rls FOR SELECT TO authenticated USING (owner = auth.uid());
  GRANT SELECT ON public.bench, public.bench_rls TO anon, authenticated;
  ALTER PUBLICATION ${PUBLICATION} ADD TABLE public.bench, public.bench_rls;
`;

interface Launch {
  build: PerformerBuild;
  databaseUrl: string;
  dataDir: string;
  check: RlsCheck;
}

const launches = new Map<System, Launch>();

/** The RLS check the system's process runs with. */
export const checkOf = (system: System): RlsCheck => launches.get(system)!.check;

async function launch(l: Launch): Promise<{ child: System['child']; port: number }> {
  const t0 = Date.now();
  const child = startPerformer(l.build, {
    databaseUrl: l.databaseUrl,
    dataName: 'performer-bench-changes-data',
    waitReplication: true,
    env: {
      JWT_SECRET: jwtSecret,
      PERFORMER_DATA_DIR: l.dataDir,
      // One RLS transaction per viewer with `per-viewer`: the check before issue 14 (--scale).
      CHANGES_RLS_BATCH: l.check === 'per-viewer' ? 'false' : 'true',
      // One batch at a time with `serial` (builds before the pipelining ignore it).
      CHANGES_PIPELINE: l.check === 'serial' ? 'false' : 'true',
      // Compared builds take turns: the WAL the other one wrote meanwhile must not make the lag guard recreate a slot.
      ...(args.option('compare') ? { CHANGES_MAX_LAG_BYTES: String(2 ** 50) } : {}),
    },
  });
  const port = Number((await child.ready).port);
  console.log(`${l.build.label} (RLS check: ${l.check}) up in ${Date.now() - t0} ms (pid ${child.pid}, port ${port})`);
  return { child, port };
}

/**
 * A Performer build with the bench tables. The first one uses the embedded cluster's `postgres` database; with
 * --compare every other one gets a database of its own in the same cluster (its own producers and admin session,
 * so `b` is copied): a system's slot never has the other system's rows to decode when its turn comes.
 */
export async function startSystem(build: PerformerBuild, i: number, b: Bench, clusterUrl: string, dir: string, sessions: Session[]): Promise<{ system: System; bench: Bench }> {
  let bench = b;
  let databaseUrl = clusterUrl;
  if (i > 0) {
    const name = `bench_cmp_${i}`;
    await b.admin.query(`CREATE DATABASE ${name}`);
    const u = new URL(clusterUrl);
    u.pathname = `/${name}`;
    databaseUrl = u.toString();
    const own = await connectSessions(databaseUrl, 1 + Math.max(opts.batchConns, opts.singleConns), (k) => (k === 0 ? 'bench_admin' : 'bench_producer'));
    sessions.push(...own);
    bench = { ...b, admin: own[0]!.client, producers: new Producers(own.slice(1).map((s) => s.client), OWNERS, opts) };
  }
  const l: Launch = { build, databaseUrl, dataDir: path.join(dir, `performer-${i}`), check: opts.rlsChecks[0] ?? 'batch' };
  const { child, port } = await launch(l);
  await bench.admin.query(BENCH_TABLES);
  const oid = (await bench.admin.query<{ oid: string }>('SELECT oid::text FROM pg_database WHERE datname = current_database()')).rows[0]!.oid;
  const system: System = { label: build.label, child, port, slot: changesSlotName('realtime-dev', oid) };
  launches.set(system, l);
  return { system, bench };
}

/** Stops the system's Performer and starts it again with `check` (a new process: the JIT starts cold again). */
export async function relaunch(system: System, check: RlsCheck): Promise<void> {
  const l = launches.get(system)!;
  await system.child.stop();
  l.check = check;
  const { child, port } = await launch(l);
  system.child = child;
  system.port = port;
  for (const key of [...jitWarm]) if (key.startsWith(`${system.label}:`)) jitWarm.delete(key);
}
