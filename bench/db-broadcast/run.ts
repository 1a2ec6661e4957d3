import path from 'node:path';
import os from 'node:os';
import type pg from 'pg';
import { Args } from '../lib/args.js';
import type { Child } from '../lib/child.js';
import { formatSummary, profileWindow } from '../lib/cpuprofile.js';
import { machineCpuSeconds, procCpuSeconds, procMem } from '../lib/cpu.js';
import { connectSessions, startBenchPostgres, type BenchPostgres, type Session } from '../lib/db.js';
import { runBench } from '../lib/main.js';
import { buildPerformer, startPerformer } from '../lib/performer.js';
import { pgCpuDelta, readPgCpu, type PgCpu } from '../lib/pg-cpu.js';
import { QuietMachine } from '../lib/quiet.js';
import { openLoop } from '../lib/open-loop.js';
import { connectMany } from '../lib/raw-ws.js';
import { f, machine } from '../lib/report.js';
import { PHASE_MEASURE, PHASE_WARM, stampText } from '../lib/stamp.js';
import { Tally, type Latency } from '../lib/tally.js';
import { nowUs, sleep, waitForCount } from '../lib/time.js';
import { configureReport, logRow, section, writeResults } from './report.js';
import { Subscriber, type Vsn } from './subscriber.js';
import type { Mode, Results, Row, Usage } from './types.js';

/**
 * Broadcast from the database: realtime.send (public) -> realtime.messages -> logical replication -> Performer ->
 * WebSocket subscribers of `realtime:bench`.
 *
 *   npm run bench:db-broadcast -- [--quick] [--profile|--no-profile] [--write|--no-write] [--v1|--no-v1]
 *        [--n=1,100] [--producers=4] [--batch-producers=2] [--batch=100] [--open-conns=8] [--rates=1000,5000,10000]
 *        [--payload=100] [--closed-ms=5000] [--open-ms=5000] [--profile-rows=single:1,batch:100] [--quiet-budget=75]
 *        [--repeat|--no-repeat]
 *
 * Quick mode (< 1 min): N=1 and 100, two closed-loop rows and one open-loop rate each, nothing written unless --write.
 * Full mode (< 5 min): three open-loop rates, vsn 1.0.0 rows, two profiled rows; replaces the "Broadcast from the
 * database" section of bench/RESULTS.md.
 *
 * An embedded Postgres (wal_level=logical, fsync off, data dir under os.tmpdir()) is started here; Performer runs in
 * a child process (bench/lib/performer-server.ts); the producers (pg connections calling realtime.send) and the
 * subscribers (raw vsn 2.0.0 / 1.0.0 WebSocket clients) are this process: one clock for the send stamp and the
 * receipt. All traffic is on 127.0.0.1. Every loop is bounded in count and time, and a watchdog ends the run.
 *
 * Rows, for N subscribers:
 *  - closed loop, one message per transaction: P producers each `SELECT realtime.send(...)` back to back;
 *  - closed loop, batched: `SELECT realtime.send(...) FROM generate_series(1, B)`, B messages in one transaction;
 *  - open loop at fixed rates, stamped with the scheduled time (queueing in the load generator counts as latency):
 *    one message per transaction while the closed loop left headroom for it, else transactions of 10 or 100.
 * Latency = receipt - send stamp (the realtime.send call: includes the INSERT and the commit), and receipt - the
 * producer's commit acknowledgement (can come out negative: the walsender may beat the backend's reply).
 */

const args = new Args();
const quick = args.quick;
const opts = {
  quick,
  ns: args.numbers('n', [1, 100]),
  warmupMs: quick ? 500 : 1000,
  closedMs: args.number('closed-ms', quick ? 2000 : 5000),
  openMs: args.number('open-ms', quick ? 2000 : 5000),
  producers: args.number('producers', 4),
  batchProducers: args.number('batch-producers', 2),
  batch: args.number('batch', 100),
  openConns: args.number('open-conns', 8),
  rates: args.numbers('rates', quick ? [1000] : [1000, 5000, 10_000]),
  payloadBytes: args.number('payload', 100),
  /** Extra vsn 1.0.0 rows at the largest N (full mode). */
  v1: args.fullOnly('v1'),
  profile: args.fullOnly('profile'),
  /**
   * Profiled closed-loop rows, `mode:N` (default: one message per transaction at N=1, where Performer's per-transaction
   * path shows, and batched at the largest N, where the fan-out shows).
   */
  profileRows: args.list('profile-rows'),
  write: args.fullOnly('write'),
  /** Rows are only started while they fit; the watchdog ends the process 10 s after this. */
  budgetMs: quick ? 50_000 : 275_000,
  /** Total time the run may wait for other load on the machine to pass. */
  quietBudgetMs: args.number('quiet-budget', quick ? 5 : 75) * 1000,
  /** Repeat a row once when outside load was high during it (full mode, time permitting). */
  repeat: args.fullOnly('repeat'),
};

const MAX_TXNS = 1_000_000;
const SAMPLE_CAP = 1_000_000;

const runStarted = Date.now();
const loadAtStart = os.loadavg()[0]!;
const timeLeftMs = () => opts.budgetMs - (Date.now() - runStarted);

let db: BenchPostgres | null = null;
let server: Child | null = null;

// ---- producers ----

type Producer = Session;

const SQL_ONE = "SELECT realtime.send($1::jsonb, 'e', 'bench', false)";
const SQL_BATCH = "SELECT realtime.send($1::jsonb, 'e', 'bench', false) FROM generate_series(1, $2::int)";

/** The JSON a producer sends: the stamp first, padded to `payloadBytes` (jsonb adds the row id on insert). */
function payloadJson(phase: number, sendUs: number, txn: number): string {
  const head = `{"t":"${stampText(phase, sendUs, txn)}","pad":"`;
  return `${head}${PAD.slice(0, Math.max(0, opts.payloadBytes - head.length - 2))}"}`;
}
const PAD = 'x'.repeat(4096);

function sendOne(p: Producer, phase: number, sendUs: number, txn: number): Promise<unknown> {
  return p.client.query({ name: 'send1', text: SQL_ONE, values: [payloadJson(phase, sendUs, txn)] });
}

function sendBatch(p: Producer, phase: number, sendUs: number, txn: number, count = opts.batch): Promise<unknown> {
  return p.client.query({ name: 'sendN', text: SQL_BATCH, values: [payloadJson(phase, sendUs, txn), count] });
}

// ---- measurement ----

interface Snap {
  atUs: number;
  server: number;
  pg: PgCpu;
  gen: number;
  machine: number;
}

interface Ctx {
  pgPid: number;
  quiet: QuietMachine;
  producers: Producer[];
  producerPids: Set<number>;
  port: number;
  token: string;
  tally: Tally;
  acks: Float64Array;
  lag: LagSampler;
}

/**
 * Where a backlog sits: every 200 ms, how much committed WAL the walsender feeding Performer has not sent yet
 * (pg_current_wal_lsn - sent_lsn). Converted to messages with the WAL written per message during the window.
 * Large: Postgres (decoding) is behind; small while latency grows: the backlog is in Performer or the clients.
 */
class LagSampler {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private max = 0;
  private sum = 0;
  private unreadSum = 0;
  private count = 0;
  private lsnStart = 0;

  constructor(private readonly client: pg.Client) {}

  private async walPosition(): Promise<number> {
    const { rows } = await this.client.query<{ b: number }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 AS b");
    return rows[0].b;
  }

  async start(): Promise<void> {
    this.max = 0;
    this.sum = 0;
    this.unreadSum = 0;
    this.count = 0;
    this.lsnStart = await this.walPosition();
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      this.client
        .query<{ unsent: number; unread: number }>(
          `SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn)), 0)::float8 AS unsent,
                  coalesce(max(pg_wal_lsn_diff(sent_lsn, write_lsn)), 0)::float8 AS unread
             FROM pg_stat_replication WHERE application_name = 'realtime_replication_connection'`,
        )
        .then(
          ({ rows }) => {
            const v = rows[0]?.unsent ?? 0;
            this.max = Math.max(this.max, v);
            this.sum += v;
            this.unreadSum += Math.max(0, rows[0]?.unread ?? 0);
            this.count++;
          },
          () => undefined,
        )
        .finally(() => (this.busy = false));
    }, 200);
  }

  /** Stops sampling; `messages` = messages committed since start (all phases). */
  async stop(messages: number): Promise<{ walBytesPerMsg: number; unsentMaxMsgs: number; unsentMeanMsgs: number; unreadMeanMsgs: number }> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (let i = 0; i < 100 && this.busy; i++) await sleep(10);
    const walBytesPerMsg = ((await this.walPosition()) - this.lsnStart) / Math.max(1, messages);
    return {
      walBytesPerMsg,
      unsentMaxMsgs: this.max / Math.max(1, walBytesPerMsg),
      unsentMeanMsgs: this.count ? this.sum / this.count / Math.max(1, walBytesPerMsg) : NaN,
      unreadMeanMsgs: this.count ? this.unreadSum / this.count / Math.max(1, walBytesPerMsg) : NaN,
    };
  }
}

function snap(ctx: Ctx): Snap {
  return {
    atUs: nowUs(),
    server: procCpuSeconds(server?.pid ?? -1),
    pg: readPgCpu(ctx.pgPid, ctx.producerPids),
    gen: procCpuSeconds(process.pid),
    machine: machineCpuSeconds().busy,
  };
}

function usage(a: Snap, b: Snap): Usage {
  const windowS = Math.max(1e-6, (b.atUs - a.atUs) / 1e6);
  const pct = (s: number) => (100 * s) / windowS;
  const pgd = pgCpuDelta(a.pg, b.pg);
  const serverPct = pct(b.server - a.server);
  const genPct = pct(b.gen - a.gen);
  const machinePct = pct(b.machine - a.machine);
  const pgPct = pct(pgd.total);
  const walsenderPct = pct(pgd.walsender);
  const sat: string[] = [];
  if (walsenderPct >= 85) sat.push('walsender');
  if (serverPct >= 85) sat.push('Performer');
  if (genPct >= 85) sat.push('load generator');
  if (machinePct >= 185) sat.push(`${os.cpus().length} cores`);
  return {
    windowS,
    serverPct,
    pgPct,
    walsenderPct,
    producerBackendsPct: pct(pgd.producer),
    pgOtherPct: pct(pgd.other),
    genPct,
    machinePct,
    otherPct: machinePct - serverPct - pgPct - genPct,
    serverRssMb: procMem(server?.pid ?? -1).rssKb / 1024,
    saturated: sat.join(' + ') || 'none',
  };
}

/** Waits until every measured message reached every subscriber, or deliveries stop growing for 2 s (max 20 s). */
async function drain(ctx: Ctx, expected: number): Promise<void> {
  await waitForCount(() => ctx.tally.delivered, expected, { capMs: Math.min(20_000, Math.max(2000, timeLeftMs() - 15_000)), stallMs: 2000, pollMs: 20 });
}

type Lag = Awaited<ReturnType<LagSampler['stop']>>;

function finishRow(
  ctx: Ctx,
  base: Omit<Row, keyof Usage | keyof Latency | keyof Lag | 'deliveredMsgsPerSec' | 'deliveriesPerSec' | 'expected' | 'delivered' | 'lost' | 'drainMs' | 'unexpectedCloses' | 'sustained'>,
  committed: number,
  a: Snap,
  b: Snap,
  stopUs: number,
  lag: Lag,
): Row {
  const t = ctx.tally;
  const spanS = Math.max(1e-6, (t.lastUs - t.firstUs) / 1e6);
  const expected = committed * base.n;
  const deliveriesPerSec = t.delivered / spanS;
  const row: Row = {
    ...base,
    ...usage(a, b),
    ...t.latency(ctx.acks),
    ...lag,
    deliveredMsgsPerSec: deliveriesPerSec / base.n,
    deliveriesPerSec,
    expected,
    delivered: t.delivered,
    lost: Math.max(0, expected - t.delivered),
    drainMs: t.lastUs > 0 ? Math.max(0, (t.lastUs - stopUs) / 1000) : NaN,
    unexpectedCloses: t.unexpectedCloses,
    sustained: true,
  };
  // More than 100 ms of commits waiting in WAL for the walsender: decoding is behind (or Performer stopped reading).
  if (row.unsentMeanMsgs > 0.1 * Math.max(1, row.committedPerSec)) row.saturated = row.saturated === 'none' ? 'walsender behind' : `${row.saturated}; walsender behind`;
  if (row.kind === 'open') {
    // Kept up: the rate was committed and delivered to every subscriber, and no backlog was left at the end
    // (transient stalls show in p99 and in the producers' backlog, reported apart).
    row.sustained = row.committedPerSec >= 0.97 * row.rate && row.deliveredMsgsPerSec >= 0.97 * row.rate && row.lost === 0 && !(row.drainMs > 250);
  }
  return row;
}

function resetRun(ctx: Ctx, n: number): void {
  ctx.tally.reset(n);
  ctx.acks.fill(0);
}

async function closedRow(ctx: Ctx, n: number, mode: Mode, vsn: Vsn, hooks: { onStart?: () => void; onEnd?: () => void } = {}): Promise<Row> {
  resetRun(ctx, n);
  const conns = ctx.producers.slice(0, mode === 'single' ? opts.producers : opts.batchProducers);
  const perTxn = mode === 'single' ? 1 : opts.batch;
  const send = mode === 'single' ? sendOne : sendBatch;
  const t0 = nowUs();
  const warmEnd = t0 + opts.warmupMs * 1000;
  const end = warmEnd + opts.closedMs * 1000;
  let txn = 0;
  let committed = 0;
  let committedAll = 0;
  let a: Snap | null = null;
  await ctx.lag.start();
  const startTimer = setTimeout(() => {
    a = snap(ctx);
    hooks.onStart?.();
  }, opts.warmupMs);
  await Promise.all(
    conns.map(async (p) => {
      for (let i = 0; i < 5_000_000; i++) {
        const now = nowUs();
        if (now >= end) break;
        const phase = now >= warmEnd ? PHASE_MEASURE : PHASE_WARM;
        const id = txn++;
        await send(p, phase, now, id);
        if (id < MAX_TXNS) ctx.acks[id] = nowUs();
        committedAll += perTxn;
        if (phase === PHASE_MEASURE) committed += perTxn;
      }
    }),
  );
  clearTimeout(startTimer);
  const stopUs = nowUs();
  const b = snap(ctx);
  hooks.onEnd?.();
  const lag = await ctx.lag.stop(committedAll);
  const start = a ?? b;
  await drain(ctx, committed * n);
  return finishRow(
    ctx,
    { kind: 'closed', mode, vsn, n, conns: conns.length, perTxn, rate: 0, committedPerSec: committed / Math.max(1e-6, (stopUs - warmEnd) / 1e6), maxBacklog: 0 },
    committed,
    start,
    b,
    stopUs,
    lag,
  );
}

/**
 * Open loop: `rate` messages/s as transactions of `perTxn` messages, one transaction every `perTxn * 1e6 / rate` µs
 * (issued from a 1 ms tick), stamped with its scheduled time. Issuing stops 2 s after the window at the latest, so an
 * unsustainable rate ends the row instead of stretching it.
 */
async function openRow(ctx: Ctx, n: number, rate: number, perTxn: number, vsn: Vsn): Promise<Row> {
  resetRun(ctx, n);
  const conns = ctx.producers.slice(0, opts.openConns);
  const interval = (perTxn * 1e6) / rate;
  const t0 = nowUs() + 1000;
  const warmEnd = t0 + opts.warmupMs * 1000;
  const end = warmEnd + opts.openMs * 1000;
  let committed = 0;
  let a: Snap | null = null;
  await ctx.lag.start();
  const loop = await openLoop({
    conns,
    total: Math.floor((end - t0) / interval),
    t0,
    intervalUs: interval,
    hardEndUs: end + 2_000_000,
    onTick: (now) => {
      if (a === null && now >= warmEnd) a = snap(ctx);
    },
    issue: async (p, id, sched) => {
      const phase = sched >= warmEnd ? PHASE_MEASURE : PHASE_WARM;
      await (perTxn === 1 ? sendOne(p, phase, sched, id) : sendBatch(p, phase, sched, id, perTxn));
      if (id < MAX_TXNS) ctx.acks[id] = nowUs();
      if (phase === PHASE_MEASURE) committed += perTxn;
    },
  });
  const stopUs = nowUs();
  const b = snap(ctx);
  const lag = await ctx.lag.stop(loop.issued * perTxn);
  const maxBacklog = loop.maxBehind * perTxn;
  await drain(ctx, committed * n);
  return finishRow(
    ctx,
    {
      kind: 'open',
      mode: perTxn === 1 ? 'single' : 'batch',
      vsn,
      n,
      conns: conns.length,
      perTxn,
      rate,
      committedPerSec: committed / Math.max(1e-6, (end - warmEnd) / 1e6),
      maxBacklog,
    },
    committed,
    a ?? b,
    b,
    stopUs,
    lag,
  );
}

// ---- subscribers ----

async function connectSubscribers(ctx: Ctx, n: number, vsn: Vsn): Promise<Subscriber[]> {
  const subs: Subscriber[] = [];
  await connectMany(n, 20, async () => void subs.push(await Subscriber.open({ port: ctx.port, token: ctx.token, vsn, tally: ctx.tally })));
  return subs;
}

// ---- main ----

configureReport({ quick, loadAtStart, opts });

async function main(): Promise<void> {
  const build = buildPerformer();
  console.log(`db-broadcast bench${quick ? ' (quick)' : ''}: ${machine()}; load average ${f(loadAtStart, 1)}`);
  db = await startBenchPostgres('dbb');
  const pgUrl = db.server.url;
  server = startPerformer(build, { databaseUrl: pgUrl, dataName: 'performer-bench-db-broadcast-data', waitReplication: true, env: { PERFORMER_DATA_DIR: path.join(db.dir, 'performer') } });
  const ready = await server.ready;
  console.log(`Performer up (pid ${server.pid}, port ${ready.port}); replication stream up after ${ready.replicationMs} ms`);

  const producers = await connectSessions(pgUrl, Math.max(opts.producers, opts.batchProducers, opts.openConns), (i) => `bench-producer-${i}`);
  const pgVersion = (await producers[0]!.client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  const [monitor] = await connectSessions(pgUrl, 1, () => 'bench-monitor');
  const ctx: Ctx = {
    pgPid: db.server.pid,
    quiet: null as unknown as QuietMachine,
    producers,
    producerPids: new Set(producers.map((p) => p.pid)),
    port: Number(ready.port),
    token: String(ready.token),
    tally: new Tally(SAMPLE_CAP),
    acks: new Float64Array(MAX_TXNS),
    lag: new LagSampler(monitor!.client),
  };
  // Other people's jobs run on the same cores: before a row, wait (bounded) until processes outside the bench use
  // less than 20 % of a core; the CPU used outside the bench during the row is reported anyway.
  ctx.quiet = new QuietMachine({
    measure: async () => {
      const a = snap(ctx);
      await sleep(500);
      return usage(a, snap(ctx)).otherPct;
    },
    maxOtherPct: 20,
    perWaitMs: 20_000,
    budgetMs: opts.quietBudgetMs,
    repeatBudgetMs: Infinity,
  });
  const results: Results = { rows: [], skipped: [], pgVersion, profiles: [] };
  let subs: Subscriber[] = [];
  const hb = setInterval(() => subs.forEach((s) => s.heartbeat()), 15_000);
  hb.unref();

  const withSubs = async (n: number, vsn: Vsn, body: () => Promise<void>) => {
    const started = Date.now();
    subs = await connectSubscribers(ctx, n, vsn);
    console.log(`${n} subscriber(s), vsn ${vsn}, joined in ${Date.now() - started} ms`);
    try {
      // Make sure the path is live end to end before measuring (first message after the join).
      resetRun(ctx, n);
      await sendOne(producers[0]!, PHASE_WARM, nowUs(), 0);
      await waitForCount(() => ctx.tally.warm, n, { capMs: 10_000, stallMs: 10_000, pollMs: 10 });
      await body();
    } finally {
      subs.forEach((s) => s.close());
      subs = [];
      await sleep(200);
    }
  };
  const add = (row: Row) => {
    results.rows.push(row);
    logRow(row);
  };
  // Rough cost of a row, to stay inside the budget.
  const rowMs = (ms: number) => opts.warmupMs + ms + 3000;
  const profileRows = opts.profileRows ?? [`single:${Math.min(...opts.ns)}`, `batch:${Math.max(...opts.ns)}`];
  let rowsLeft = opts.ns.length * (2 + opts.rates.length) + (opts.v1 ? 2 : 0) + (opts.profile ? profileRows.length : 0);
  /**
   * A row after waiting for a quiet machine; repeated once (keeping the quieter attempt) when processes outside the
   * bench took more than 30 % of a core during it and the time budget still covers the rows left.
   */
  const measured = async (run: () => Promise<Row>): Promise<Row> => {
    const { row, attempts } = await ctx.quiet.best(run, (r) => r.otherPct, {
      maxOtherPct: 30,
      attempts: opts.repeat ? 2 : 1,
      canRepeat: () => timeLeftMs() > rowsLeft * rowMs(Math.max(opts.closedMs, opts.openMs)) + 30_000,
    });
    rowsLeft--;
    if (attempts > 1) row.attempts = attempts;
    return row;
  };

  try {
    for (const n of opts.ns) {
      await withSubs(n, '2.0.0', async () => {
        const single = await measured(() => closedRow(ctx, n, 'single', '2.0.0'));
        add(single);
        add(await measured(() => closedRow(ctx, n, 'batch', '2.0.0')));
        for (const rate of opts.rates) {
          // One message per transaction while the closed loop showed headroom for it; otherwise the same rate in
          // transactions of 10 (or 100) messages, so the row measures the replication and fan-out path at that rate.
          const txnCeiling = single.committedPerSec;
          const perTxn = rate <= 0.7 * txnCeiling ? 1 : rate / 10 <= 0.7 * txnCeiling ? 10 : 100;
          if (timeLeftMs() < rowMs(opts.openMs) + 15_000) {
            results.skipped.push(`open loop ${f(rate)} msgs/s at N=${n} (time budget)`);
            continue;
          }
          add(await measured(() => openRow(ctx, n, rate, perTxn, '2.0.0')));
        }
      });
    }
    const nMax = Math.max(...opts.ns);
    if (opts.v1 && timeLeftMs() > rowMs(opts.closedMs) + rowMs(opts.openMs) + 25_000) {
      await withSubs(nMax, '1.0.0', async () => {
        add(await measured(() => closedRow(ctx, nMax, 'batch', '1.0.0')));
        add(await measured(() => openRow(ctx, nMax, opts.rates[0]!, 1, '1.0.0')));
      });
    }
    for (const spec of opts.profile ? profileRows : []) {
      const [modeText, nText] = spec.split(':');
      const mode: Mode = modeText === 'single' ? 'single' : 'batch';
      const pn = Number(nText ?? nMax);
      if (timeLeftMs() < rowMs(opts.closedMs) + 20_000) {
        results.skipped.push(`profile ${spec} (time budget)`);
        continue;
      }
      await withSubs(pn, '2.0.0', async () => {
        await ctx.quiet.wait();
        rowsLeft--;
        const profiler = profileWindow(server!, path.join(db!.dir, `performer-${mode}-${pn}.cpuprofile`), 500);
        const row = await closedRow(ctx, pn, mode, '2.0.0', profiler);
        const { summary, cpuMs } = await profiler.done();
        results.profiles.push({ summary, row, cpuMs });
        console.log(`\nprofile (closed loop, N=${pn}, ${row.perTxn} msgs/txn, profiler on):`);
        logRow(row);
        console.log(formatSummary(summary, 25, cpuMs));
      });
    }
  } finally {
    clearInterval(hb);
    await Promise.all([...producers, monitor!].map((p) => p.client.end().catch(() => undefined)));
    await server.stop();
  }
  if (results.skipped.length) console.log(`\nnot run: ${results.skipped.join('; ')}`);
  const text = section(results);
  console.log(`\n${text}\n`);
  if (opts.write) {
    writeResults(text);
    console.log('bench/RESULTS.md: section "Broadcast from the database" written');
  } else {
    console.log('(RESULTS.md not written: pass --write in quick mode)');
  }
  console.log(`total ${((Date.now() - runStarted) / 1000).toFixed(0)} s`);
}

runBench('db-broadcast', main, {
  hardLimitMs: opts.budgetMs + 10_000,
  cleanup: async () => {
    server?.kill();
    await db?.stop();
    db = null;
  },
});
