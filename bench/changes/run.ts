import { spawn } from 'node:child_process';
import { procMem } from '../lib/cpu.js';
import { connectSessions, startBenchPostgres, type BenchPostgres, type Session } from '../lib/db.js';
import { runBench } from '../lib/main.js';
import { repoRoot } from '../lib/paths.js';
import { performerBuilds } from '../lib/performer.js';
import { QuietMachine } from '../lib/quiet.js';
import { Tally } from '../lib/tally.js';
import { sleep } from '../lib/time.js';
import { args, CATCHUP_RUNS, JIT_WARM_ROWS, K, loadAtStart, NOTIFY_CHANNEL, OWNERS, opts, PUBLICATION, quick, RECV_RUNS, rowWorstMs, SAMPLE_CAP, timeLeftMs } from './options.js';
import { Producers } from './producers.js';
import { Recvlogical } from './recv.js';
import { compareSection, configureReport, f, machine, section, writeResults } from './report.js';
import { rlsProbe } from './rls-probe.js';
import { snap, usage, type Bench, type System } from './rows.js';
import { configureScaleReport, scaleSection, writeScaleResults } from './scale-report.js';
import { scaleRows } from './scale-rows.js';
import { notifyRows, recvRows, standardRows, type Run } from './sequences.js';
import { closeSubs, heartbeat } from './subs.js';
import { startSystem } from './systems.js';
import type { Results } from './types.js';

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
 *        [--drain-cap-ms=..] [--quiet-budget=s] [--repeat-budget=s] [--no-recv] [--notify-payload=bare,envelope]
 *        [--compare=<git rev>] [--reps=1]
 *   npm run bench:changes -- --scale [--repeat=3] [--rls-check=batch,per-viewer] [--profile] [--write]
 *        [--paced-rate=1000] [--paced-ms=10000] [--rows=10000] [--budget=900]
 *
 * Quick mode (< 60 s): 4,000 rows per row, no catch-up / steady-rate rows, no profiles, RESULTS.md only with --write.
 * Full mode (< 6 min): 20,000 rows, catch-up (N=1) and steady-rate rows, profiles, writes the `## Postgres Changes`
 * section of bench/RESULTS.md. --strace adds two rows with `strace -c` attached to Performer (syscalls per frame).
 * Scale mode (issue 14, ~4 min with --repeat=3): N=100 only, with and without RLS, each RLS check variant, steady
 * rate at 1,000/s for 10 s, LISTEN/NOTIFY sending Performer's own frame; no pg_recvlogical; `## Postgres Changes
 * under RLS at scale` with --write (scale-rows.ts).
 * --compare=<rev> starts Performer as it was at that revision beside this one
 * on a database of its own and measures the live rows of both, `--reps` times, alternating which goes first; the
 * before/after table is printed.
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

let db: BenchPostgres | null = null;
let sessions: Session[] = [];
const systems: System[] = [];
let peer: Bench['peer'] = null;

async function cleanup(): Promise<void> {
  closeSubs();
  for (const s of systems) s.child.kill();
  peer?.kill();
  await Promise.all(sessions.map((p) => p.client.end().catch(() => undefined)));
  sessions = [];
  await db?.stop();
  db = null;
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`changes bench${quick ? ' (quick)' : ''}: ${machine()}; load average ${f(loadAtStart, 1)}`);
  const recvBin = Recvlogical.findBinary(repoRoot);
  const recvVersion = await new Promise<string>((resolve) => {
    const c = spawn(recvBin, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', () => resolve(out.trim() || 'pg_recvlogical'));
  });
  db = await startBenchPostgres('changes');
  const clusterUrl = db.server.url;
  console.log(`${recvVersion} at ${recvBin}`);
  sessions = await connectSessions(clusterUrl, 1 + Math.max(opts.batchConns, opts.singleConns), (i) => (i === 0 ? 'bench_admin' : 'bench_producer'));
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
    get peer() {
      return peer;
    },
    set peer(child) {
      peer = child;
    },
    timeLeftMs,
    rowWorstMs,
    closeSubs,
  };
  b.recv = new Recvlogical({ admin, databaseUrl: clusterUrl, snap: () => snap(b, null), usage }, recvBin, RECV_RUNS);
  const results: Results = { rows: [], skipped: [], pgVersion, profiles: [], syscalls: [], recvLive: [], recvVersion, recvStartupMs: NaN };
  const run: Run = { b, results, systems, benchOf: new Map(), dir: db.dir, clusterUrl };
  const hb = setInterval(heartbeat, 15_000);
  hb.unref();
  try {
    // LISTEN/NOTIFY and pg_recvlogical first: no Performer slot exists yet, so no other walsender decodes their rows.
    // --scale interleaves them with Performer's rows (scale-rows.ts).
    if (!opts.scale) await notifyRows(run);
    if (opts.recv) await recvRows(run);
    // Performer, and with --compare the other revision's beside it.
    for (const [i, build] of performerBuilds(args).entries()) {
      const { system, bench } = await startSystem(build, i, b, clusterUrl, db.dir, sessions);
      systems.push(system);
      run.benchOf.set(system, bench);
    }
    if (opts.scale) await scaleRows(run);
    else await standardRows(run);
    // The RLS visibility check on its own, at two table sizes.
    if (opts.rls && !opts.scale && timeLeftMs() > 5000) results.probe = await rlsProbe(admin, clusterUrl, OWNERS);
    console.log(`Performer RSS at the end: ${f(procMem(systems[0]!.child.pid).rssKb / 1024)} MB`);
  } finally {
    clearInterval(hb);
    closeSubs();
    await peer?.stop();
    for (const s of systems) await s.child.stop();
    await cleanup();
  }
  configureScaleReport({ argv: args.argv, loadAtStart, rows: opts.rows, pacedMs: opts.pacedMs, pgVersion: results.pgVersion });
  const text = opts.scale ? scaleSection(results) : section(results);
  console.log(`\n${text}\n`);
  if (systems.length > 1) console.log(`\n${compareSection(results, systems.map((s) => s.label))}\n`);
  if (opts.write) {
    if (opts.scale) writeScaleResults(text);
    else writeResults(text);
    console.log(`bench/RESULTS.md: section "${opts.scale ? 'Postgres Changes under RLS at scale' : 'Postgres Changes'}" written`);
  } else {
    console.log(`(RESULTS.md not written: ${quick ? 'pass --write in quick mode' : '--no-write'})`);
  }
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

configureReport({ opts, argv: args.argv, loadAtStart, K, RECV_RUNS, CATCHUP_RUNS, JIT_WARM_ROWS, PUBLICATION, NOTIFY_CHANNEL });

runBench('changes', main, { hardLimitMs: opts.budgetMs + (quick ? 10_000 : 20_000), cleanup });
