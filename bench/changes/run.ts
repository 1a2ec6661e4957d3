import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signHs256 } from '../../src/auth/jwt.js';
import { changesSlotName } from '../../src/replication/slot-names.js';
import { Args } from '../lib/args.js';
import { Child } from '../lib/child.js';
import { formatSummary, profileWindow } from '../lib/cpuprofile.js';
import { procMem } from '../lib/cpu.js';
import { connectSessions, startBenchPostgres, type BenchPostgres, type Session } from '../lib/db.js';
import { runBench } from '../lib/main.js';
import { performerBuilds, startPerformer, type PerformerBuild } from '../lib/performer.js';
import { QuietMachine } from '../lib/quiet.js';
import { connectMany } from '../lib/raw-ws.js';
import { repoRoot } from '../lib/paths.js';
import { PHASE_WARM } from '../lib/stamp.js';
import { Tally } from '../lib/tally.js';
import { nowUs, sleep, waitForCount } from '../lib/time.js';
import { Producers } from './producers.js';
import { Recvlogical } from './recv.js';
import { compareSection, configureReport, f, machine, section, shapeText, withoutProfilerOverhead, writeResults } from './report.js';
import { rlsProbe } from './rls-probe.js';
import { bestLiveRow, catchupRow, pacedRow, recvLiveRow, liveRow, snap, straceRow, usage, type Bench, type SubSet, type System } from './rows.js';
import { Subscriber } from './subscriber.js';
import type { Results, Row, Shape } from './types.js';

/**
 * Postgres Changes end to end: INSERT committed -> walsender (pgoutput) -> Performer's changes stream -> RLS /
 * fan-out -> WebSocket subscriber, in changes per second, for 1 and 100 subscribers, with and without RLS, next to
 * two references measured in the same run on the same stream of rows:
 *  (a) pg_recvlogical (pgoutput, proto_version=1, the same publication, -f /dev/null) consuming the very changes of
 *      each Performer run from a slot created just before the run: pure decode + transfer ceiling;
 *  (b) a trigger + LISTEN/NOTIFY pipeline: AFTER INSERT trigger -> pg_notify(row_to_json(NEW)) -> one node-postgres
 *      LISTEN client -> a bare uWebSockets.js topic -> the same raw WebSocket subscribers (bench/changes/notify-peer.ts).
 *
 *   npm run bench:changes -- [--quick] [--write|--no-write] [--rows=20000] [--batch=100] [--n=1,100]
 *        [--profile|--no-profile] [--profile-rows=1:batch,1:single,100:batch] [--strace] [--catchup|--no-catchup]
 *        [--catchup-n=1] [--paced|--no-paced] [--paced-rate=500] [--no-notify] [--no-rls] [--produce-cap-ms=..] [--shapes=batch,single]
 *        [--drain-cap-ms=..] [--quiet-budget=s] [--repeat-budget=s] [--compare=<git rev>] [--reps=1]
 *
 * Quick mode (< 60 s): 4,000 rows per row, no catch-up / steady-rate rows, no profiles, RESULTS.md only with --write.
 * Full mode (< 6 min): 20,000 rows, catch-up (N=1) and steady-rate rows, profiles, writes the `## Postgres Changes`
 * section of bench/RESULTS.md. --strace adds two rows with `strace -c` attached to Performer (syscalls per frame).
 * --compare=<rev> starts Performer as it was at that revision beside this one (its own tenant id, so its own slot)
 * and measures the live rows of both, `--reps` times, alternating which goes first; the before/after table is printed.
 *
 * An embedded Postgres (wal_level=logical, fsync=off) is started here; Performer and the forwarder run in child
 * processes; producers (node-postgres) and subscribers (raw vsn 2.0.0 WebSocket clients) are this process, so send
 * stamps and receipts share one monotonic clock. All traffic is on 127.0.0.1; every loop is bounded in count and
 * time and a watchdog ends the run.
 *
 * Rows of one measurement: `rows` rows inserted as fast as possible, either 100 per transaction (2 producer
 * connections, one INSERT ... SELECT generate_series each) or 1 per transaction (4 connections, autocommit). Changes/s =
 * committed rows / (last receipt - first commit acknowledgement). Latency = receipt - the transaction's send stamp
 * (carried in the `body` column), so it includes the INSERT and COMMIT and, in these closed loops, the backlog.
 */

const args = new Args();
const quick = args.quick;
const reps = args.number('reps', 1);
const opts = {
  quick,
  rows: args.number('rows', quick ? 4000 : 20_000),
  batch: args.number('batch', 100),
  ns: args.numbers('n', [1, 100]),
  batchConns: args.number('batch-conns', 2),
  singleConns: args.number('single-conns', 4),
  /** Production stops after this long even if not all rows went in (slow configurations). */
  produceCapMs: args.number('produce-cap-ms', quick ? 4000 : 15_000),
  /** Waiting for the last deliveries stops after this long (from the end of production). */
  drainCapMs: args.number('drain-cap-ms', quick ? 4000 : 15_000),
  /** ...or after this long without a new delivery. */
  stallMs: 3000,
  bodyLen: args.number('body', 100),
  notify: !args.flag('no-notify'),
  rls: !args.flag('no-rls'),
  catchup: args.fullOnly('catchup'),
  paced: args.fullOnly('paced'),
  pacedRate: args.number('paced-rate', 500),
  pacedMs: args.number('paced-ms', 2000),
  profile: args.fullOnly('profile'),
  /** Profiled rows (no RLS), `N:shape`. */
  profileRows: args.list('profile-rows') ?? ['1:batch', '1:single', '100:batch'],
  write: args.fullOnly('write'),
  catchupNs: args.numbers('catchup-n', [1]),
  /** Compared runs take `reps` times the live rows, each of two systems. */
  budgetMs: (quick ? 47_000 : 330_000) * (args.option('compare') ? 2 * reps : 1),
  quietBudgetMs: args.number('quiet-budget', quick ? 0 : 30) * 1000,
  repeatBudgetMs: args.number('repeat-budget', quick ? 0 : 45) * 1000,
  strace: args.flag('strace'),
  /** Transaction shapes measured: `batch` (100 rows/txn), `single` (1 row/txn). */
  shapes: (args.list('shapes') ?? ['batch', 'single']).filter((x): x is Shape => x === 'batch' || x === 'single'),
};

/** Row owners (uuid) cycle over K users: row id -> OWNERS[id % K]. */
const K = 10;
const OWNERS = Array.from({ length: K }, () => randomUUID());
const ROOM_TOPIC = 'realtime:bench';
const NOTIFY_CHANNEL = 'bench_changes';
const PUBLICATION = 'supabase_realtime';
const SAMPLE_CAP = 200_000;
const JIT_WARM_ROWS = quick ? 2000 : 5000;
/** pg_recvlogical runs per row (one slot each, all created before the row): the fastest is the ceiling. */
const RECV_RUNS = quick ? 1 : 3;
/** Catch-up repetitions per shape (the fastest is kept, as the ceiling keeps its fastest run). */
const CATCHUP_RUNS = quick ? 1 : 3;
const RECV_LIVE_TABLE = 'bench_recv';
const RECV_LIVE_PUBLICATION = 'bench_recv_live';

const runStarted = Date.now();
const loadAtStart = os.loadavg()[0]!;
const timeLeftMs = () => opts.budgetMs - (Date.now() - runStarted);
/** Worst case of one closed-loop row: production cap + drain cap + the pg_recvlogical run and bookkeeping. */
const rowWorstMs = () => opts.produceCapMs + opts.drainCapMs + 4000;

// ---- processes ----

let db: BenchPostgres | null = null;
let sessions: Session[] = [];
let systems: System[] = [];
let bench: Bench | null = null;
let subs: Subscriber[] = [];

function closeSubs(): void {
  subs.forEach((s) => s.close());
  subs = [];
}

async function cleanup(): Promise<void> {
  closeSubs();
  for (const s of systems) s.child.kill();
  bench?.peer?.kill();
  await Promise.all(sessions.map((p) => p.client.end().catch(() => undefined)));
  sessions = [];
  await db?.stop();
  db = null;
}

// ---- subscribers ----

let anonToken = '';
let jwtSecret = '';

async function userToken(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // A session id per subscriber, as Supabase Auth tokens carry: every subscriber has its own claims.
  return signHs256({ role: 'authenticated', sub, session_id: randomUUID(), aud: 'authenticated', iat: now, exp: now + 3 * 3600 }, jwtSecret);
}

/**
 * Subscribers of `system` (null: the LISTEN/NOTIFY forwarder on `port`). Without RLS every subscriber uses the anon
 * key (identical claims, as supabase-js clients that are not signed in). With RLS subscriber i is user
 * OWNERS[i % K] for i < N/2 (N = 1: OWNERS[0]) and a user who owns no row for the others, each with its own token.
 */
async function connectSubs(b: Bench, system: System | null, n: number, rls: boolean, port = system?.port ?? 0): Promise<SubSet> {
  const target = system ? 'performer' : 'notify';
  const table = target === 'notify' ? 'bench_notify' : rls ? 'bench_rls' : 'bench';
  const perOwner = new Array<number>(K).fill(0);
  const specs: { owner: string | null; token: string }[] = [];
  for (let i = 0; i < n; i++) {
    if (!rls) {
      specs.push({ owner: null, token: anonToken });
      continue;
    }
    const ownerIndex = n === 1 ? 0 : i < n / 2 ? i % K : -1;
    const sub = ownerIndex >= 0 ? OWNERS[ownerIndex]! : randomUUID();
    if (ownerIndex >= 0) perOwner[ownerIndex]!++;
    specs.push({ owner: sub, token: await userToken(sub) });
  }
  const opened: Subscriber[] = [];
  const proto = target === 'performer' ? 'performer' : 'simple';
  await connectMany(n, 20, async (i) => {
    const spec = specs[i]!;
    opened.push(await Subscriber.open({ proto, port, topic: ROOM_TOPIC, table, apikey: anonToken, token: spec.token, owner: spec.owner, tally: b.tally, leaks: b.leaks }));
  });
  subs = opened;
  const expectedFor = rls ? (id: number) => perOwner[id % K]! : () => n;
  return { target, system, n, rls, table, expectedFor, perRow: rls ? perOwner.reduce((a, c) => a + c, 0) / K : n, subs: opened };
}

/** Sets whose first warm-up also warmed the JIT (per Performer process). */
const jitWarm = new Set<string>();

/**
 * One transaction of K rows (every owner), phase w: the path is live end to end before measuring. The first
 * warm-up of a no-RLS set also commits JIT_WARM_ROWS rows in transactions of 100, unmeasured, so the measured rows
 * see optimised code as a long-running server would, not the compiler at work.
 */
async function warmUp(b: Bench, set: SubSet): Promise<void> {
  b.tally.reset(1);
  const jitKey = `${set.system?.label ?? 'notify'}:${set.n}:${set.table}`;
  const rows = !set.rls && !jitWarm.has(jitKey) ? JIT_WARM_ROWS : K;
  jitWarm.add(jitKey);
  const first = b.producers.take(rows);
  for (let at = first; at < first + rows; at += 100) {
    await b.producers.insertMany(b.producers.clients[0]!, set.table, at, Math.min(100, first + rows - at), b.producers.body(PHASE_WARM, nowUs(), 0));
  }
  let expected = 0;
  for (let id = first; id < first + rows; id++) expected += set.expectedFor(id);
  const got = await waitForCount(() => b.tally.delivered, expected, { capMs: 15_000, stallMs: 15_000, pollMs: 5 });
  if (got < expected) throw new Error(`warm-up: ${got} of ${expected} deliveries after 15 s (${set.target}, N=${set.n})`);
  await sleep(50);
}

const BENCH_TABLES = `
  CREATE TABLE public.bench (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
  CREATE TABLE public.bench_rls (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
  ALTER TABLE public.bench_rls ENABLE ROW LEVEL SECURITY;
  CREATE POLICY own_rows ON public.bench_rls FOR SELECT TO authenticated USING (owner = auth.uid());
  GRANT SELECT ON public.bench, public.bench_rls TO anon, authenticated;
  ALTER PUBLICATION ${PUBLICATION} ADD TABLE public.bench, public.bench_rls;
`;

/**
 * A Performer build in its own child, with the bench tables. The first one uses the embedded cluster's `postgres`
 * database; with --compare every other one gets a database of its own in the same cluster (its own producers and
 * admin session, so `b` is copied): a system's slot then never has the other system's rows to decode when its turn
 * comes, and the lag guard is raised so that the WAL the others wrote meanwhile never recreates its slot.
 */
async function startSystem(build: PerformerBuild, i: number, b: Bench, dir: string): Promise<{ system: System; bench: Bench }> {
  let bench = b;
  let url = db!.server.url;
  if (i > 0) {
    const name = `bench_cmp_${i}`;
    await b.admin.query(`CREATE DATABASE ${name}`);
    const u = new URL(url);
    u.pathname = `/${name}`;
    url = u.toString();
    const own = await connectSessions(url, 1 + Math.max(opts.batchConns, opts.singleConns), (k) => (k === 0 ? 'bench_admin' : 'bench_producer'));
    sessions.push(...own);
    bench = { ...b, admin: own[0]!.client, producers: new Producers(own.slice(1).map((s) => s.client), OWNERS, opts) };
  }
  const t0 = Date.now();
  const child = startPerformer(build, {
    databaseUrl: url,
    dataName: 'performer-bench-changes-data',
    waitReplication: true,
    env: { JWT_SECRET: jwtSecret, PERFORMER_DATA_DIR: path.join(dir, `performer-${i}`), ...(args.option('compare') ? { CHANGES_MAX_LAG_BYTES: String(2 ** 50) } : {}) },
  });
  const port = Number((await child.ready).port);
  await bench.admin.query(BENCH_TABLES);
  const oid = (await bench.admin.query<{ oid: string }>('SELECT oid::text FROM pg_database WHERE datname = current_database()')).rows[0]!.oid;
  console.log(`${build.label} up in ${Date.now() - t0} ms (pid ${child.pid}, port ${port})`);
  return { system: { label: build.label, child, port, slot: changesSlotName('realtime-dev', oid) }, bench };
}

async function main(): Promise<void> {
  console.log(`changes bench${quick ? ' (quick)' : ''}: ${machine()}; load average ${f(loadAtStart, 1)}`);
  const recvBin = Recvlogical.findBinary(repoRoot);
  const recvVersion = await new Promise<string>((resolve) => {
    const c = spawn(recvBin, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', () => resolve(out.trim() || 'pg_recvlogical'));
  });
  db = await startBenchPostgres('changes');
  const url = db.server.url;
  console.log(`${recvVersion} at ${recvBin}`);
  sessions = await connectSessions(url, 1 + Math.max(opts.batchConns, opts.singleConns), (i) => (i === 0 ? 'bench_admin' : 'bench_producer'));
  const admin = sessions[0]!.client;
  const pgVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  const b: Bench = {
    o: opts,
    admin,
    pgPid: db.server.pid,
    producers: new Producers(
      sessions.slice(1).map((s) => s.client),
      OWNERS,
      opts,
    ),
    tally: new Tally(SAMPLE_CAP),
    leaks: { foreignOwner: 0 },
    recv: null as unknown as Recvlogical,
    quiet: new QuietMachine({
      measure: async () => {
        const a = await snap(b, null);
        await sleep(500);
        return usage(a, await snap(b, null)).otherPct;
      },
      maxOtherPct: 25,
      perWaitMs: 15_000,
      budgetMs: opts.quietBudgetMs,
      repeatBudgetMs: opts.repeatBudgetMs,
    }),
    sampleCap: SAMPLE_CAP,
    publication: PUBLICATION,
    peer: null,
    timeLeftMs,
    rowWorstMs,
    closeSubs,
  };
  bench = b;
  b.recv = new Recvlogical({ admin, databaseUrl: url, snap: () => snap(b, null), usage }, recvBin, RECV_RUNS);
  const results: Results = { rows: [], skipped: [], pgVersion, profiles: [], syscalls: [], recvLive: [], recvVersion, recvStartupMs: NaN };
  const hb = setInterval(() => subs.forEach((s) => s.heartbeat()), 15_000);
  hb.unref();

  try {
    // ---- LISTEN/NOTIFY first: no replication slot exists yet, so no walsender decodes these rows ----
    await admin.query(`
      CREATE TABLE public.bench_notify (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
      CREATE FUNCTION public.bench_notify_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('${NOTIFY_CHANNEL}', row_to_json(NEW)::text);
        RETURN NULL;
      END $$;
      CREATE TRIGGER bench_notify_trg AFTER INSERT ON public.bench_notify FOR EACH ROW EXECUTE FUNCTION public.bench_notify_fn();
    `);
    if (opts.notify) {
      b.peer = new Child('notify-peer', 'bench/changes/notify-peer.ts', { env: { BENCH_DATABASE_URL: url, NOTIFY_CHANNEL, NOTIFY_TOPIC: ROOM_TOPIC } });
      const port = Number((await b.peer.ready).port);
      console.log(`LISTEN/NOTIFY forwarder up (pid ${b.peer.pid}, port ${port})`);
      for (const n of opts.ns) {
        const set = await connectSubs(b, null, n, false, port);
        await warmUp(b, set);
        for (const shape of opts.shapes) {
          const { row, resubscribe } = await bestLiveRow(b, set, shape, false);
          results.rows.push(row);
          if (resubscribe) await connectSubs(b, null, n, false, port);
        }
        if (opts.paced) results.rows.push(await pacedRow(b, set, opts.pacedRate));
        closeSubs();
      }
      await b.peer.stop();
      b.peer = null;
    }

    // ---- pg_recvlogical as the live consumer, on the same kind of rows (no Performer, no other slot yet) ----
    await admin.query(`
      CREATE TABLE public.${RECV_LIVE_TABLE} (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
      CREATE PUBLICATION ${RECV_LIVE_PUBLICATION} FOR TABLE public.${RECV_LIVE_TABLE};
    `);
    results.recvStartupMs = await b.recv.startupMs(RECV_LIVE_PUBLICATION);
    console.log(`pg_recvlogical start-up with nothing to decode: ${f(results.recvStartupMs)} ms (median of 3)`);
    for (const shape of opts.shapes) {
      let row = await recvLiveRow(b, shape, RECV_LIVE_TABLE, RECV_LIVE_PUBLICATION);
      // Now and then its output misses the last transaction (seen about once in five 1 row/txn runs): run it again.
      if (!row.complete) {
        console.log('  (pg_recvlogical live run incomplete: running it again)');
        row = await recvLiveRow(b, shape, RECV_LIVE_TABLE, RECV_LIVE_PUBLICATION);
      }
      results.recvLive.push(row);
    }

    // ---- Performer (and with --compare the other revision's, beside it) ----
    jwtSecret = randomBytes(32).toString('hex');
    anonToken = await signHs256({ iss: 'supabase-demo', role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, jwtSecret);
    const builds = performerBuilds(args);
    const benchOf = new Map<System, Bench>();
    for (const [i, build] of builds.entries()) {
      const started = await startSystem(build, i, b, db.dir);
      systems.push(started.system);
      benchOf.set(started.system, started.bench);
    }
    const main = systems[0]!;
    // Main rows first (every configuration, both shapes; with --compare every system, `reps` times, the order
    // flipping every repetition), then the extras while the budget lasts.
    const rlsModes = opts.rls ? [false, true] : [false];
    const singleRates = new Map<string, number>();
    const profileReserveMs = opts.profile ? 25_000 : 0;
    const turns = (rep: number) => (rep % 2 === 0 ? systems : [...systems].reverse());
    for (const rls of rlsModes) {
      for (const n of opts.ns) {
        for (let rep = 0; rep < reps; rep++) {
          for (const system of turns(rep)) {
            const what = `${system.label} ${rls ? 'RLS' : 'no RLS'} N=${n}${reps > 1 ? ` (rep ${rep + 1})` : ''}`;
            if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
              results.skipped.push(`${what} (time budget)`);
              continue;
            }
            const started = Date.now();
            const sb = benchOf.get(system)!;
            let set = await connectSubs(sb, system, n, rls);
            console.log(`${what}: ${n} subscriber(s) subscribed in ${Date.now() - started} ms`);
            await warmUp(sb, set);
            for (const shape of opts.shapes) {
              if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
                results.skipped.push(`${what} ${shapeText(shape)} (time budget)`);
                continue;
              }
              // The pg_recvlogical ceiling once per configuration, on this tree's first repetition.
              const { row, resubscribe } = await bestLiveRow(sb, set, shape, system === main && rep === 0);
              row.rep = rep;
              results.rows.push(row);
              if (shape === 'single' && system === main && rep === 0) singleRates.set(`${rls}|${n}`, row.changesPerSec);
              if (resubscribe && shape === 'batch') {
                set = await connectSubs(sb, system, n, rls);
                await warmUp(sb, set);
              }
            }
            closeSubs();
            await sleep(200);
          }
        }
      }
    }

    // ---- syscalls per frame / transaction (opt-in: strace slows the process it traces) ----
    if (opts.strace && timeLeftMs() <= 30_000 + profileReserveMs) results.skipped.push('strace rows (time budget)');
    if (opts.strace && timeLeftMs() > 30_000 + profileReserveMs) {
      const set = await connectSubs(b, main, 1, false);
      await warmUp(b, set);
      for (const shape of opts.shapes) {
        const r = await straceRow(b, set, shape, db.dir);
        if (r) results.syscalls.push(r);
        else results.skipped.push(`strace ${shapeText(shape)} (strace not usable here)`);
      }
      closeSubs();
    }

    // Catch-up (no RLS) and steady-rate latency rows.
    for (const rls of rlsModes) {
      for (const n of opts.ns) {
        const doCatchup = opts.catchup && !rls && opts.catchupNs.includes(n);
        if (!doCatchup && !opts.paced) continue;
        if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
          results.skipped.push(`catch-up / steady-rate rows for ${rls ? 'RLS' : 'no RLS'} N=${n} (time budget)`);
          continue;
        }
        let set = await connectSubs(b, main, n, rls);
        await warmUp(b, set);
        for (const shape of doCatchup ? opts.shapes : []) {
          if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
            results.skipped.push(`catch-up N=${n} ${shapeText(shape)} (time budget)`);
            continue;
          }
          // Best of CATCHUP_RUNS against the best pg_recvlogical run of them all: the ceiling is a fastest run too.
          const runs: Row[] = [];
          for (let i = 0; i < CATCHUP_RUNS && timeLeftMs() > rowWorstMs() + profileReserveMs; i++) {
            const row = await catchupRow(b, set, shape);
            runs.push(row);
            if (!row.drained) {
              set = await connectSubs(b, main, n, rls);
              await warmUp(b, set);
              break;
            }
          }
          if (runs.length === 0) continue;
          const best = runs.reduce((x, y) => (y.changesPerSec > x.changesPerSec ? y : x));
          const ceiling = runs.map((r) => r.recv).reduce((x, y) => ((y?.netChangesPerSec ?? 0) > (x?.netChangesPerSec ?? 0) ? y : x));
          results.rows.push({ ...best, recv: ceiling, catchupRuns: runs.map((r) => r.changesPerSec) });
        }
        if (opts.paced && timeLeftMs() > opts.pacedMs + opts.drainCapMs + 5000 + profileReserveMs) {
          const measured = singleRates.get(`${rls}|${n}`) ?? NaN;
          const rate = Math.max(20, Math.min(opts.pacedRate, Math.floor(0.5 * (Number.isFinite(measured) ? measured : opts.pacedRate))));
          results.rows.push(await pacedRow(b, set, rate));
        } else if (opts.paced) results.skipped.push(`steady-rate row ${rls ? 'RLS' : 'no RLS'} N=${n} (time budget)`);
        closeSubs();
        await sleep(200);
      }
    }

    // ---- profiles: no-RLS rows again, with V8's sampling profiler in the Performer child ----
    const target = results.rows.filter((r) => r.kind === 'live' && r.system === main.label && !r.rls);
    const missed = target.some((r) => r.recv && r.changesPerSec < 0.5 * r.recv.netChangesPerSec);
    if (opts.profile || (missed && !args.flag('no-profile'))) {
      for (const spec of opts.profileRows) {
        const [nText, shapeName] = spec.split(':');
        const n = Number(nText);
        const shape: Shape = shapeName === 'single' ? 'single' : 'batch';
        if (timeLeftMs() < Math.min(rowWorstMs(), 20_000)) {
          results.skipped.push(`profile N=${n} ${shapeText(shape)} (time budget)`);
          continue;
        }
        const set = await connectSubs(b, main, n, false);
        await warmUp(b, set);
        const file = path.join(db.dir, `performer-${n}-${shape}.cpuprofile`);
        const profiler = profileWindow(main.child, file, 250);
        const { row } = await liveRow(b, set, shape, false, profiler);
        closeSubs();
        const { summary: raw, cpuMs } = await profiler.done();
        const summary = withoutProfilerOverhead(raw);
        const label = `no RLS, N=${n}, ${shapeText(shape)}`;
        results.profiles.push({ label, summary, row, cpuMs });
        console.log(`\nprofile (${label}, profiler on):`);
        console.log(formatSummary(summary, 25, cpuMs));
        if (process.env.BENCH_KEEP_PROFILES) writeFileSync(path.join(process.env.BENCH_KEEP_PROFILES, path.basename(file)), readFileSync(file));
        await sleep(200);
      }
    } else {
      results.skipped.push('profiles (target met; pass --profile)');
    }

    // ---- the RLS visibility check on its own, at two table sizes ----
    if (opts.rls && timeLeftMs() > 5000) results.probe = await rlsProbe(admin, url, OWNERS);
    console.log(`Performer RSS at the end: ${f(procMem(main.child.pid).rssKb / 1024)} MB`);
  } finally {
    clearInterval(hb);
    closeSubs();
    await b.peer?.stop();
    for (const s of systems) await s.child.stop();
    await cleanup();
  }
  const text = section(results);
  console.log(`\n${text}\n`);
  if (systems.length > 1) console.log(`\n${compareSection(results, systems.map((s) => s.label))}\n`);
  if (opts.write) {
    writeResults(text);
    console.log('bench/RESULTS.md: section "Postgres Changes" written');
  } else {
    console.log(`(RESULTS.md not written: ${quick ? 'pass --write in quick mode' : '--no-write'})`);
  }
  console.log(`total ${((Date.now() - runStarted) / 1000).toFixed(0)} s`);
}

configureReport({ opts, argv: args.argv, loadAtStart, K, RECV_RUNS, CATCHUP_RUNS, JIT_WARM_ROWS, PUBLICATION, NOTIFY_CHANNEL });

runBench('changes', main, { hardLimitMs: opts.budgetMs + (quick ? 10_000 : 20_000), cleanup });
