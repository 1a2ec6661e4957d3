import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { signHs256 } from '../../src/auth/jwt.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import { machineCpuSeconds, nowUs, procCpuSeconds, procMem } from '../broadcast/common.js';
import { formatSummary, summarize } from '../broadcast/cpuprofile.js';
import { pgDelta, pgLabels, pgSnap, PG_LABELS, type PgLabel } from './pgprocs.js';
import { rlsProbe } from './rls-probe.js';
import { ChildProc } from './proc.js';
import { PHASE_MEASURE, PHASE_WARM, stampText, Subscriber, Tally } from './subscriber.js';
import { buildPerformer, startFlags } from '../common/performer.js';
import { configureReport, f, logRow, machine, section, shapeText, withoutProfilerOverhead, writeResults } from './report.js';
import type { Kind, Latency, NotifyPayload, RecvLive, Results, RlsCheck, Row, Shape, Snap, Syscalls, Usage } from './types.js';
import { configureScaleReport, scaleSection, writeScaleResults } from './scale-report.js';
import { Recvlogical } from './recv.js';

/**
 * Postgres Changes end to end: INSERT committed -> walsender (pgoutput) -> Performer's changes stream -> RLS /
 * fan-out -> WebSocket subscriber, in changes per second, for 1 and 100 subscribers, with and without RLS, next to
 * two references measured in the same run on the same stream of rows:
 *  (a) pg_recvlogical (pgoutput, proto_version=1, the same publication, -f /dev/null) consuming the very changes of
 *      each Performer run from a slot created just before the run: pure decode + transfer ceiling;
 *  (b) a trigger + LISTEN/NOTIFY pipeline: AFTER INSERT trigger -> pg_notify(row_to_json(NEW)) -> one node-postgres
 *      LISTEN client -> a bare uWebSockets.js topic -> the same raw WebSocket subscribers (bench/changes/notify-peer.ts).
 *
 *   node --import tsx bench/changes/run.ts [--quick] [--write|--no-write] [--rows=20000] [--batch=100] [--n=1,100]
 *        [--profile|--no-profile] [--profile-rows=1:batch,1:single,100:batch] [--strace] [--catchup|--no-catchup]
 *        [--catchup-n=1] [--paced|--no-paced] [--paced-rate=500] [--no-notify] [--no-rls] [--produce-cap-ms=..] [--shapes=batch,single]
 *        [--drain-cap-ms=..] [--quiet-budget=s] [--repeat-budget=s] [--no-recv] [--notify-payload=bare,envelope]
 *   node --import tsx bench/changes/run.ts --scale [--repeat=3] [--rls-check=batch,per-viewer] [--profile] [--write]
 *        [--paced-rate=1000] [--paced-ms=10000] [--rows=10000] [--budget=900]
 *
 * Quick mode (< 60 s): 4,000 rows per row, no catch-up / steady-rate rows, no profiles, RESULTS.md only with --write.
 * Full mode (< 6 min): 20,000 rows, catch-up (N=1) and steady-rate rows, profiles, writes the `## Postgres Changes`
 * section of bench/RESULTS.md. --strace adds two rows with `strace -c` attached to Performer (syscalls per frame).
 * Scale mode (issue 14, ~4 min with --repeat=3): N=100 only, with and without RLS, each RLS check variant, steady
 * rate at 1,000/s for 10 s, LISTEN/NOTIFY sending Performer's own frame; no pg_recvlogical; `## Postgres Changes
 * under RLS at scale` with --write (see scaleRows).
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

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const numbers = (name: string, fallback: number[]) => option(name)?.split(',').filter(Boolean).map(Number) ?? fallback;

const quick = flag('quick');
/** Issue 14's rows only: N=100 with and without RLS, each RLS check variant, paced at 1,000/s (see --scale below). */
const scale = flag('scale');
const opts = {
  quick,
  scale,
  rows: Number(option('rows') ?? (quick ? 4000 : scale ? 10_000 : 20_000)),
  batch: Number(option('batch') ?? 100),
  ns: numbers('n', scale ? [100] : [1, 100]),
  batchConns: Number(option('batch-conns') ?? 2),
  singleConns: Number(option('single-conns') ?? 4),
  /** Production stops after this long even if not all rows went in (slow configurations). */
  produceCapMs: Number(option('produce-cap-ms') ?? (quick ? 4000 : 15_000)),
  /** Waiting for the last deliveries stops after this long (from the end of production). */
  drainCapMs: Number(option('drain-cap-ms') ?? (quick ? 4000 : 15_000)),
  /** ...or after this long without a new delivery. */
  stallMs: 3000,
  bodyLen: Number(option('body') ?? 100),
  notify: !flag('no-notify'),
  /**
   * What the LISTEN/NOTIFY pipeline sends: `bare` (the row's JSON, the cheapest forwarder) and/or `envelope`
   * (Performer's own frame and data object, built by the trigger: the same bytes per change as Performer sends).
   */
  notifyPayloads: (option('notify-payload') ?? (scale ? 'envelope' : 'bare')).split(',').filter((x): x is NotifyPayload => x === 'bare' || x === 'envelope'),
  rls: !flag('no-rls'),
  catchup: quick || scale ? flag('catchup') : !flag('no-catchup'),
  paced: quick ? flag('paced') : !flag('no-paced'),
  pacedRate: Number(option('paced-rate') ?? (scale ? 1000 : 500)),
  pacedMs: Number(option('paced-ms') ?? (scale ? 10_000 : 2000)),
  profile: quick || scale ? flag('profile') : !flag('no-profile'),
  /** pg_recvlogical rows (live reference, ceilings per row): off in --scale mode. */
  recv: !flag('no-recv') && !scale,
  /** --scale: how the RLS rows check visibility, each variant in its own Performer process (CHANGES_RLS_BATCH). */
  rlsChecks: (option('rls-check') ?? (scale ? 'batch,per-viewer' : 'batch')).split(',').filter((x): x is RlsCheck => x === 'batch' || x === 'per-viewer'),
  /** --scale: the whole sequence this many times (variants alternate which goes first), for ranges. */
  repeat: Number(option('repeat') ?? 1),
  /** Profiled rows (no RLS), `N:shape`. */
  profileRows: (option('profile-rows') ?? '1:batch,1:single,100:batch').split(',').filter(Boolean),
  write: quick || scale ? flag('write') : !flag('no-write'),
  catchupNs: numbers('catchup-n', [1]),
  budgetMs: quick ? 47_000 : scale ? Number(option('budget') ?? 900) * 1000 : 330_000,
  quietBudgetMs: Number(option('quiet-budget') ?? (quick ? 0 : 30)) * 1000,
  repeatBudgetMs: Number(option('repeat-budget') ?? (quick ? 0 : 45)) * 1000,
  strace: flag('strace'),
  /** Transaction shapes measured: `batch` (100 rows/txn), `single` (1 row/txn). */
  shapes: (option('shapes') ?? 'batch,single').split(',').filter((x): x is Shape => x === 'batch' || x === 'single'),
};

/** Row owners (uuid) cycle over K users: row id -> OWNERS[id % K]. */
const K = 10;
const OWNERS = Array.from({ length: K }, () => randomUUID());
const ROOM_TOPIC = 'realtime:bench';
const NOTIFY_CHANNEL = 'bench_changes';
const PUBLICATION = 'supabase_realtime';
const SAMPLE_CAP = 200_000;
const JIT_WARM_ROWS = quick ? 2000 : 5000;

const runStarted = Date.now();
const loadAtStart = os.loadavg()[0];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const timeLeftMs = () => opts.budgetMs - (Date.now() - runStarted);
/** Worst case of one closed-loop row: production cap + drain cap + the pg_recvlogical run and bookkeeping. */
const rowWorstMs = () => opts.produceCapMs + opts.drainCapMs + 4000;
const HARD_LIMIT_MS = opts.budgetMs + (quick ? 10_000 : 20_000);

// ---- processes, cleanup, watchdog ----

let pgServer: EmbeddedPostgres | null = null;
let dataDir: string | null = null;
let performer: ChildProc | null = null;
let peer: ChildProc | null = null;
let admin: pg.Client | null = null;
let subs: Subscriber[] = [];
const producers: { client: pg.Client; pid: number }[] = [];

async function cleanup(): Promise<void> {
  subs.forEach((s) => s.close());
  subs = [];
  performer?.kill();
  peer?.kill();
  await Promise.all(producers.map((p) => p.client.end().catch(() => undefined)));
  await admin?.end().catch(() => undefined);
  admin = null;
  await pgServer?.stop().catch(() => undefined);
  pgServer = null;
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = null;
}

const watchdog = setTimeout(() => {
  console.error(`changes bench: over its ${Math.round(HARD_LIMIT_MS / 1000)} s hard limit, aborting`);
  void cleanup().finally(() => process.exit(2));
}, HARD_LIMIT_MS);
watchdog.unref();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`changes bench: ${sig}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---- CPU ----


async function snap(): Promise<Snap> {
  const labels = await pgLabels(admin as pg.Client);
  return {
    atUs: nowUs(),
    performer: performer ? procCpuSeconds(performer.pid) : 0,
    peer: peer ? procCpuSeconds(peer.pid) : 0,
    gen: procCpuSeconds(process.pid),
    machine: machineCpuSeconds().busy,
    pg: pgSnap((pgServer as EmbeddedPostgres).pid, labels),
  };
}


function usage(a: Snap, b: Snap): Usage {
  const windowS = Math.max(1e-6, (b.atUs - a.atUs) / 1e6);
  const pct = (s: number) => (100 * s) / windowS;
  const d = pgDelta(a.pg, b.pg);
  const pgBy = Object.fromEntries(PG_LABELS.map((l) => [l, pct(d[l])])) as Record<PgLabel, number>;
  const u = {
    windowS,
    performerPct: pct(b.performer - a.performer),
    peerPct: pct(b.peer - a.peer),
    pgPct: pct(d.total),
    pgBy,
    genPct: pct(b.gen - a.gen),
    machinePct: pct(b.machine - a.machine),
  };
  const otherPct = u.machinePct - u.performerPct - u.peerPct - u.pgPct - u.genPct;
  const sat: string[] = [];
  if (u.performerPct >= 85) sat.push('Performer');
  if (u.peerPct >= 85) sat.push('forwarder');
  if (pgBy['changes walsender'] >= 85) sat.push('changes walsender');
  if (pgBy.listener >= 85) sat.push('listener backend');
  if (u.genPct >= 85) sat.push('load generator');
  if (u.machinePct >= 185) sat.push(`${os.cpus().length} cores`);
  return { ...u, otherPct, saturated: sat.join(' + ') || 'none' };
}

let quietSpentMs = 0;

/** Waits (bounded per call and per run) until processes outside the bench use less than 25 % of a core. */
async function waitQuiet(): Promise<void> {
  if (opts.quietBudgetMs <= 0) return;
  const started = Date.now();
  const deadline = started + Math.min(15_000, Math.max(0, opts.quietBudgetMs - quietSpentMs));
  let other = NaN;
  for (let i = 0; i < 60; i++) {
    const a = await snap();
    await sleep(500);
    other = usage(a, await snap()).otherPct;
    if (other <= 25 || Date.now() >= deadline) break;
  }
  const waited = Date.now() - started;
  quietSpentMs += Math.max(0, waited - 600);
  if (waited > 1500) console.log(`  (waited ${(waited / 1000).toFixed(1)} s for outside load; now ${f(other)} % of a core)`);
}

// ---- producers ----


interface Produced {
  rows: number;
  txns: number;
  expected: number;
  startUs: number;
  firstCommitUs: number;
  lastCommitUs: number;
  acks: Float64Array;
  capped: boolean;
}

let nextId = 1;

function body(phase: number, sendUs: number, txn: number): string {
  const s = stampText(phase, sendUs, txn);
  return s + 'x'.repeat(Math.max(0, opts.bodyLen - s.length));
}

function insertOne(c: pg.Client, table: string, id: number, text: string): Promise<unknown> {
  return c.query({ name: `one_${table}`, text: `INSERT INTO public.${table} (id, owner, body) VALUES ($1, $2, $3)`, values: [id, OWNERS[id % K], text] });
}

function insertMany(c: pg.Client, table: string, firstId: number, count: number, text: string): Promise<unknown> {
  return c.query({
    name: `many_${table}`,
    text:
      `INSERT INTO public.${table} (id, owner, body) SELECT g, ($2::uuid[])[1 + (g % ${K})::int], $3 ` +
      'FROM generate_series($1::bigint, $1::bigint + $4::int - 1) g',
    values: [firstId, OWNERS, text, count],
  });
}

/** Closed loop: `rows` rows as fast as the connections go (bounded by `capMs`), `perTxn` rows per transaction. */
async function produce(table: string, shape: Shape, rows: number, capMs: number, expectedFor: (id: number) => number): Promise<Produced> {
  const perTxn = shape === 'batch' ? opts.batch : 1;
  const conns = producers.slice(0, shape === 'batch' ? opts.batchConns : opts.singleConns).map((p) => p.client);
  const maxTxns = Math.ceil(rows / perTxn) + 1;
  const out: Produced = { rows: 0, txns: 0, expected: 0, startUs: nowUs(), firstCommitUs: 0, lastCommitUs: 0, acks: new Float64Array(maxTxns), capped: false };
  const deadline = out.startUs + capMs * 1000;
  let issued = 0;
  let txn = 0;
  await Promise.all(
    conns.map(async (c) => {
      for (let i = 0; i < maxTxns; i++) {
        if (issued >= rows) break;
        if (nowUs() >= deadline) {
          out.capped = true;
          break;
        }
        const n = Math.min(perTxn, rows - issued);
        issued += n;
        const first = nextId;
        nextId += n;
        const t = txn++;
        const sendUs = nowUs();
        const text = body(PHASE_MEASURE, sendUs, t);
        await (n === 1 ? insertOne(c, table, first, text) : insertMany(c, table, first, n, text));
        const ack = nowUs();
        out.acks[t] = ack;
        if (out.firstCommitUs === 0 || ack < out.firstCommitUs) out.firstCommitUs = ack;
        if (ack > out.lastCommitUs) out.lastCommitUs = ack;
        out.rows += n;
        out.txns++;
        for (let id = first; id < first + n; id++) out.expected += expectedFor(id);
      }
    }),
  );
  return out;
}

/**
 * Open loop for latency: one row per transaction at `rate`/s for `ms`, stamped with its scheduled time (queueing in
 * the load generator counts), from a 1 ms tick. Issuing stops 2 s after the window at the latest.
 */
async function paced(table: string, rate: number, ms: number, expectedFor: (id: number) => number): Promise<Produced> {
  const conns = producers.slice(0, opts.singleConns).map((p) => p.client);
  const free = [...conns];
  const interval = 1e6 / rate;
  const t0 = nowUs() + 1000;
  const total = Math.floor((ms * 1000) / interval);
  const hardEnd = t0 + ms * 1000 + 2_000_000;
  const out: Produced = { rows: 0, txns: 0, expected: 0, startUs: t0, firstCommitUs: 0, lastCommitUs: 0, acks: new Float64Array(total + 1), capped: false };
  let issued = 0;
  let inflight = 0;
  let failure: unknown = null;
  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = nowUs();
      if (now >= hardEnd && issued < total) {
        out.capped = true;
        issued = total;
      }
      const due = Math.min(total, Math.floor((now - t0) / interval) + 1);
      while (issued < due && free.length > 0 && failure === null) {
        const c = free.pop() as pg.Client;
        const t = issued++;
        const id = nextId++;
        inflight++;
        insertOne(c, table, id, body(PHASE_MEASURE, t0 + t * interval, t)).then(
          () => {
            const ack = nowUs();
            out.acks[t] = ack;
            if (out.firstCommitUs === 0) out.firstCommitUs = ack;
            out.lastCommitUs = ack;
            out.rows++;
            out.txns++;
            out.expected += expectedFor(id);
            inflight--;
            free.push(c);
          },
          (err: unknown) => {
            failure ??= err;
            inflight--;
            free.push(c);
          },
        );
      }
      if ((issued >= total || failure !== null) && inflight === 0) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(pump, 1);
  });
  if (failure !== null) throw failure;
  return out;
}

// ---- subscribers ----

interface SubSet {
  target: 'performer' | 'notify';
  n: number;
  rls: boolean;
  table: string;
  /** Subscribers per owner index (RLS) — how many deliveries a row of that owner makes. */
  perOwner: number[];
  expectedFor: (id: number) => number;
  /** Mean deliveries per committed row. */
  perRow: number;
}

let anonToken = '';
let jwtSecret = '';

async function userToken(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // A session id per subscriber, as Supabase Auth tokens carry: every subscriber has its own claims.
  return signHs256({ role: 'authenticated', sub, session_id: randomUUID(), aud: 'authenticated', iat: now, exp: now + 3 * 3600 }, jwtSecret);
}

/**
 * Performer subscribers. Without RLS every subscriber uses the anon key (identical claims, as supabase-js clients
 * that are not signed in). With RLS subscriber i is user OWNERS[i % K] for i < N/2 (N = 1: OWNERS[0]) and a user who
 * owns no row for the others, each with its own token.
 */
/** The table the LISTEN/NOTIFY rows go into: its trigger decides what the forwarder sends. */
let notifyTable = 'bench_notify';

async function connectSubs(target: 'performer' | 'notify', n: number, rls: boolean, port: number): Promise<SubSet> {
  const table = target === 'notify' ? notifyTable : rls ? 'bench_rls' : 'bench';
  const tally = TALLY;
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
  let next = 0;
  const opened: Subscriber[] = [];
  const worker = async () => {
    while (next < specs.length) {
      const spec = specs[next++]!;
      opened.push(
        await openWithRetry({
          proto: target === 'performer' ? 'performer' : 'simple',
          port,
          topic: ROOM_TOPIC,
          table,
          apikey: anonToken,
          token: spec.token,
          owner: spec.owner,
          tally,
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(20, n) }, worker));
  subs = opened;
  const expectedFor = rls ? (id: number) => perOwner[id % K]! : () => n;
  return { target, n, rls, table, perOwner, expectedFor, perRow: rls ? perOwner.reduce((a, b) => a + b, 0) / K : n };
}

/** Opens a subscriber, trying again (twice at most) when the attempt fails; the failures are logged. */
async function openWithRetry(o: Parameters<typeof Subscriber.open>[0]): Promise<Subscriber> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await Subscriber.open(o);
    } catch (err) {
      if (attempt >= 3) throw err;
      console.log(`  (subscriber attempt ${attempt} failed: ${(err as Error).message}; retrying)`);
      await sleep(200);
    }
  }
}

function closeSubs(): void {
  subs.forEach((s) => s.close());
  subs = [];
}

const TALLY = new Tally(SAMPLE_CAP);

/** Sets whose first warm-up also warmed the JIT (per Performer process: reset when it restarts). */
const jitWarm = new Set<string>();

/**
 * One transaction of K rows (every owner), phase w: the path is live end to end before measuring. The first
 * warm-up of a no-RLS set also commits JIT_WARM_ROWS rows in transactions of 100, unmeasured, so the measured rows
 * see optimised code as a long-running server would, not the compiler at work.
 */
async function warmUp(set: SubSet): Promise<void> {
  TALLY.reset(1);
  const first = nextId;
  const jitKey = `${set.target}:${set.n}:${set.table}`;
  const rows = !set.rls && !jitWarm.has(jitKey) ? JIT_WARM_ROWS : K;
  jitWarm.add(jitKey);
  nextId += rows;
  for (let at = first; at < first + rows; at += 100) {
    await insertMany(producers[0]!.client, set.table, at, Math.min(100, first + rows - at), body(PHASE_WARM, nowUs(), 0));
  }
  let expected = 0;
  for (let id = first; id < first + rows; id++) expected += set.expectedFor(id);
  const deadline = Date.now() + 15_000;
  while (TALLY.delivered < expected && Date.now() < deadline) await sleep(5);
  if (TALLY.delivered < expected) throw new Error(`warm-up: ${TALLY.delivered} of ${expected} deliveries after 15 s (${set.target}, N=${set.n})`);
  await sleep(50);
}

/** Waits for `expected` deliveries, or `stallMs` without progress, or `capMs`; polled every 2 ms. */
async function drain(expected: number, capMs: number): Promise<boolean> {
  const deadline = Date.now() + capMs;
  let last = TALLY.delivered;
  let lastAt = Date.now();
  for (let i = 0; i < 1_000_000 && TALLY.delivered < expected; i++) {
    if (Date.now() >= deadline) return false;
    await sleep(2);
    if (TALLY.delivered !== last) {
      last = TALLY.delivered;
      lastAt = Date.now();
    } else if (Date.now() - lastAt > opts.stallMs) return false;
  }
  return TALLY.delivered >= expected;
}

// ---- Performer's slot ----

async function lsnNow(): Promise<string> {
  return (await (admin as pg.Client).query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
}

/** Waits (bounded) until Performer's changes slot has confirmed `lsn`. */
async function performerConfirmed(lsn: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    const { rows } = await (admin as pg.Client).query<{ ok: boolean | null }>(
      `SELECT bool_and(confirmed_flush_lsn >= $1::pg_lsn) AS ok FROM pg_replication_slots WHERE slot_name LIKE 'performer_cdc_%'`,
      [lsn],
    );
    if (rows[0]?.ok) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return false;
}

// ---- pg_recvlogical ----

/** pg_recvlogical runs per row (one slot each, all created before the row): the fastest is the ceiling. */
const RECV_RUNS = quick ? 1 : 3;
/** Catch-up repetitions per shape (the fastest is kept, as the ceiling keeps its fastest run). */
const CATCHUP_RUNS = quick ? 1 : 3;
let recv: Recvlogical | null = null;
let recvVersion = '';
let recvStartupMs = NaN;

const RECV_LIVE_TABLE = 'bench_recv';
const RECV_LIVE_PUBLICATION = 'bench_recv_live';

/**
 * pg_recvlogical as the live consumer (before Performer runs, so its walsender is the only one): streaming from a
 * fresh slot while the producers commit the same rows in the same shape as in Performer's live rows. changes/s =
 * rows / (its last output byte - first commit acknowledgement), Performer's formula with pg_recvlogical as the
 * client. Complete when its output matches, in bytes, what a slot created at the same moment yields afterwards.
 */
async function recvLiveRow(shape: Shape): Promise<RecvLive> {
  await waitQuiet();
  const rl = recv as Recvlogical;
  const startLsn = await rl.createSlots(2);
  const db = admin as pg.Client;
  const live = rl.live(0, RECV_LIVE_PUBLICATION);
  let walsenderPid = 0;
  for (let i = 0; i < 500 && walsenderPid === 0; i++) {
    const { rows } = await db.query<{ pid: number }>(`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1 AND active`, [rl.slot(0)]);
    if (rows[0]?.pid) walsenderPid = rows[0].pid;
    else await sleep(5);
  }
  if (walsenderPid === 0) throw new Error('pg_recvlogical (live) did not start streaming');
  const a = await snap();
  const cpuA = live.cpuSeconds();
  const p = await produce(RECV_LIVE_TABLE, shape, opts.rows, opts.produceCapMs, () => 1);
  // Done when its walsender has sent the WAL up to the last commit and pg_recvlogical's output has gone quiet.
  const endLsn = await lsnNow();
  const sentBy = Date.now() + opts.drainCapMs;
  for (let i = 0; i < 100_000 && Date.now() < sentBy; i++) {
    const { rows } = await db.query<{ ok: boolean }>('SELECT sent_lsn >= $2::pg_lsn AS ok FROM pg_stat_replication WHERE pid = $1', [walsenderPid, endLsn]);
    if (rows[0]?.ok) break;
    await sleep(5);
  }
  const settled = await live.settle(100, opts.drainCapMs);
  const b = await snap();
  const cpuB = live.cpuSeconds();
  await live.stop();
  const check = await rl.run(rl.slot(1), startLsn, endLsn, RECV_LIVE_PUBLICATION);
  const spanMs = Math.max(1e-3, (live.lastUs - p.firstCommitUs) / 1000);
  const u = usage(a, b);
  const row: RecvLive = {
    shape,
    rows: p.rows,
    txns: p.txns,
    committedPerSec: p.rows / Math.max(1e-6, (p.lastCommitUs - p.startUs) / 1e6),
    changesPerSec: p.rows / (spanMs / 1000),
    spanMs,
    // The quiet window after the last byte (settle) is not part of the row.
    recvPct: (100 * (cpuB - cpuA)) / Math.max(1e-6, u.windowS - 0.1),
    usage: u,
    complete: settled && check.ok && live.outBytes === check.outBytes,
    outBytes: live.outBytes,
    checkBytes: check.outBytes,
  };
  console.log(
    `  pg_recvlogical no RLS N=1 ${shapeText(shape)} live: ${f(row.rows)} rows in ${f(row.txns)} txns (committed ${f(row.committedPerSec)}/s); ` +
      `${f(row.changesPerSec)} changes/s over ${f(spanMs)} ms; output ${f(row.outBytes)} B (backlog of the same rows ${f(row.checkBytes)} B${row.complete ? '' : ', INCOMPLETE'}); ` +
      `CPU % pg_recvlogical ${f(row.recvPct)}, Postgres ${f(u.pgPct)} (walsender ${f(u.pgBy['recvlogical walsender'])}, producers ${f(u.pgBy.producers)}), machine ${f(u.machinePct)} (other ${f(u.otherPct - row.recvPct)})`,
  );
  return row;
}

// ---- measurements ----


function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function latency(acks: Float64Array): Latency {
  const n = TALLY.nSamples;
  const send = new Float64Array(n);
  const fromAck: number[] = [];
  for (let i = 0; i < n; i++) {
    send[i] = (TALLY.recvUs[i]! - TALLY.sendUs[i]!) / 1000;
    const t = TALLY.txn[i]!;
    const ack = t < acks.length ? acks[t]! : 0;
    if (ack > 0) fromAck.push((TALLY.recvUs[i]! - ack) / 1000);
  }
  send.sort();
  const ack = Float64Array.from(fromAck).sort();
  return { samples: n, p50: percentile(send, 50), p99: percentile(send, 99), max: n ? send[n - 1]! : NaN, c50: percentile(ack, 50), c99: percentile(ack, 99) };
}



function sampleEvery(expectedDeliveries: number): number {
  return Math.max(1, Math.ceil(expectedDeliveries / (SAMPLE_CAP * 0.9)));
}

function finish(set: SubSet, kind: Kind, shape: Shape, p: Produced, drained: boolean, fromUs: number, a: Snap, b: Snap): Row {
  const spanMs = Math.max(1e-3, (TALLY.lastUs - fromUs) / 1000);
  // Not drained (a configuration slower than the producers): changes/s from what was delivered.
  const deliveredRows = drained ? p.rows : p.expected > 0 ? (TALLY.delivered / p.expected) * p.rows : 0;
  return {
    target: set.target,
    kind,
    n: set.n,
    rls: set.rls,
    shape,
    rows: p.rows,
    txns: p.txns,
    capped: p.capped,
    drained,
    expected: p.expected,
    delivered: TALLY.delivered,
    changesPerSec: deliveredRows / (spanMs / 1000),
    deliveriesPerSec: TALLY.delivered / (spanMs / 1000),
    committedPerSec: p.rows / Math.max(1e-6, (p.lastCommitUs - p.startUs) / 1e6),
    spanMs,
    lat: latency(p.acks),
    usage: usage(a, b),
    foreignOwner: TALLY.foreignOwner,
    unparsed: TALLY.unparsed,
    frameBytes: TALLY.delivered > 0 ? TALLY.bytes / TALLY.delivered : NaN,
    notifyPayload: set.target === 'notify' ? (notifyTable === 'bench_notify' ? 'bare' : 'envelope') : undefined,
  };
}

/** After a run that did not drain: the subscribers go (Performer then skips what is left) and the slot catches up. */
async function recover(set: SubSet, endLsn: string): Promise<void> {
  closeSubs();
  if (set.target === 'performer') {
    const waitMs = Math.min(60_000, Math.max(3000, timeLeftMs() - 3000));
    const ok = await performerConfirmed(endLsn, waitMs);
    if (!ok) console.log(`  (Performer had not caught up with the backlog after ${f(waitMs / 1000)} s)`);
  } else {
    await sleep(1000);
  }
}

async function tableRows(table: string): Promise<number> {
  return (await (admin as pg.Client).query<{ n: number }>(`SELECT count(*)::int AS n FROM public.${table}`)).rows[0]!.n;
}

/**
 * The RLS check's cost follows the table's size (see the probe), so every RLS row starts from an empty bench_rls
 * (TRUNCATE: pgoutput sends a Truncate message, which Performer's changes engine ignores).
 */
async function resetRlsTable(set: SubSet): Promise<void> {
  if (!set.rls) return;
  const lsn = await lsnNow();
  await (admin as pg.Client).query('TRUNCATE public.bench_rls');
  await performerConfirmed(lsn, 10_000);
}

async function liveRow(set: SubSet, shape: Shape, port: number, withRecv: boolean, hooks: { onStart?: () => void; onEnd?: () => void } = {}): Promise<{ row: Row; resubscribe: boolean }> {
  await waitQuiet();
  await resetRlsTable(set);
  const before = await tableRows(set.table);
  const startLsn = withRecv ? await (recv as Recvlogical).createSlots() : '';
  TALLY.reset(sampleEvery(opts.rows * set.perRow));
  if (set.target === 'notify') await (peer as ChildProc).call('reset');
  const a = await snap();
  hooks.onStart?.();
  const p = await produce(set.table, shape, opts.rows, opts.produceCapMs, set.expectedFor);
  const endLsn = await lsnNow();
  const drained = await drain(p.expected, opts.drainCapMs);
  hooks.onEnd?.();
  const b = await snap();
  const row = finish(set, 'live', shape, p, drained, p.firstCommitUs, a, b);
  row.tableRows = before;
  if (set.target === 'notify') {
    const st = await (peer as ChildProc).call('stats');
    row.listenerPerSec = Number(st.notifications) / Math.max(1e-6, (Number(st.lastUs) - p.firstCommitUs) / 1e6);
  }
  if (!drained) await recover(set, endLsn);
  else if (set.target === 'performer') await performerConfirmed(endLsn, 10_000);
  if (withRecv) row.recv = await (recv as Recvlogical).best(startLsn, endLsn, p.rows, PUBLICATION);
  logRow(row);
  return { row, resubscribe: !drained };
}

let repeatSpentMs = 0;

/**
 * A short row is run again (once, within a per-run budget) when processes outside the bench took more than 30 % of
 * a core during it; the attempt with less outside load is kept.
 */
async function bestLiveRow(set: SubSet, shape: Shape, port: number, withRecv: boolean): Promise<{ row: Row; resubscribe: boolean }> {
  const first = await liveRow(set, shape, port, withRecv);
  const short = first.row.drained && first.row.spanMs < 12_000;
  if (!short || first.row.usage.otherPct <= 30 || repeatSpentMs >= opts.repeatBudgetMs || timeLeftMs() < rowWorstMs() + 30_000) return first;
  const t0 = Date.now();
  console.log(`  (outside load ${f(first.row.usage.otherPct)} % of a core during that row: running it again)`);
  const second = await liveRow(set, shape, port, withRecv);
  repeatSpentMs += Date.now() - t0;
  return second.row.usage.otherPct < first.row.usage.otherPct ? second : first;
}


/**
 * Catch-up: Performer frozen (SIGSTOP) while the rows are committed, then let go; changes/s = rows / (last receipt -
 * resume). pg_recvlogical then consumes the same backlog from its own slot. The walsender keeps decoding into the
 * socket buffers while Performer is frozen; how far it got is reported (preSentPct).
 */
async function catchupRow(set: SubSet, shape: Shape): Promise<Row> {
  await waitQuiet();
  const srv = performer as ChildProc;
  const startLsn = await (recv as Recvlogical).createSlots();
  TALLY.reset(sampleEvery(opts.rows * set.perRow));
  srv.freeze(true);
  let p: Produced;
  let endLsn: string;
  let preSentPct = NaN;
  try {
    p = await produce(set.table, shape, opts.rows, Math.min(opts.produceCapMs, 20_000), set.expectedFor);
    endLsn = await lsnNow();
    await sleep(200);
    const { rows } = await (admin as pg.Client).query<{ pct: number | null }>(
      `SELECT 100 * pg_wal_lsn_diff(sent_lsn, $1::pg_lsn) / nullif(pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn), 0) AS pct
         FROM pg_stat_replication WHERE application_name = 'performer_postgres_changes'`,
      [startLsn, endLsn],
    );
    preSentPct = Math.min(100, Math.max(0, Number(rows[0]?.pct ?? NaN)));
  } finally {
    srv.freeze(false);
  }
  const a = await snap();
  const resumeUs = a.atUs;
  const drained = await drain(p.expected, opts.drainCapMs);
  const b = await snap();
  const row = finish(set, 'catchup', shape, p, drained, resumeUs, a, b);
  row.preSentPct = preSentPct;
  if (!drained) await recover(set, endLsn);
  else await performerConfirmed(endLsn, 10_000);
  row.recv = await (recv as Recvlogical).best(startLsn, endLsn, p.rows, PUBLICATION);
  logRow(row);
  return row;
}

async function pacedRow(set: SubSet, rate: number): Promise<Row> {
  await waitQuiet();
  await resetRlsTable(set);
  TALLY.reset(1);
  if (set.target === 'notify') await (peer as ChildProc).call('reset');
  const a = await snap();
  const p = await paced(set.table, rate, opts.pacedMs, set.expectedFor);
  const endLsn = await lsnNow();
  const drained = await drain(p.expected, opts.drainCapMs);
  const b = await snap();
  const row = finish(set, 'paced', 'single', p, drained, p.firstCommitUs, a, b);
  row.rate = rate;
  if (!drained) await recover(set, endLsn);
  logRow(row);
  return row;
}

// ---- syscalls (--strace) ----


/** One no-RLS row with `strace -c -f` attached to the Performer child: its write-type syscalls per frame / transaction. */
async function straceRow(set: SubSet, shape: Shape, port: number): Promise<Syscalls | null> {
  const srv = performer as ChildProc;
  const file = path.join(dataDir as string, `strace-${shape}.txt`);
  const tracer = spawn('strace', ['-c', '-f', '-e', 'trace=write,writev,sendto,sendmsg', '-o', file, '-p', String(srv.pid)], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => tracer.once('exit', () => r()));
  tracer.once('error', () => undefined);
  await sleep(800);
  if (tracer.exitCode !== null) return null;
  const { row } = await liveRow(set, shape, port, false);
  tracer.kill('SIGINT');
  const timer = setTimeout(() => tracer.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
  const calls: Record<string, number> = {};
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
      if (m && m[2] !== 'total') calls[m[2]!] = Number(m[1]);
    }
  } catch {
    return null;
  }
  console.log(`  strace (${shapeText(shape)}): ${Object.entries(calls).map(([k, v]) => `${k} ${f(v)}`).join(', ')} for ${f(row.delivered)} frames in ${f(row.txns)} transactions`);
  return { label: `no RLS, N=${set.n}, ${shapeText(shape)}`, row, calls };
}

/** The full run's Performer rows: every configuration and shape, then catch-up, steady-rate, strace and profiles. */
async function standardRows(port: number, results: Results): Promise<void> {
  // Main rows first (every configuration, both shapes), then the extras while the budget lasts.
  const rlsModes = opts.rls ? [false, true] : [false];
  const singleRates = new Map<string, number>();
  const profileReserveMs = opts.profile ? 25_000 : 0;
  for (const rls of rlsModes) {
    for (const n of opts.ns) {
      if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
        results.skipped.push(`Performer ${rls ? 'RLS' : 'no RLS'} N=${n} (time budget)`);
        continue;
      }
      const started = Date.now();
      let set = await connectSubs('performer', n, rls, port);
      console.log(`${n} Performer subscriber(s), ${rls ? 'RLS' : 'no RLS'}, subscribed in ${Date.now() - started} ms`);
      await warmUp(set);
      for (const shape of opts.shapes) {
        if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
          results.skipped.push(`Performer ${rls ? 'RLS' : 'no RLS'} N=${n} ${shapeText(shape)} (time budget)`);
          continue;
        }
        const { row, resubscribe } = await bestLiveRow(set, shape, port, true);
        results.rows.push(row);
        if (shape === 'single') singleRates.set(`${rls}|${n}`, row.changesPerSec);
        if (resubscribe && shape === 'batch') {
          set = await connectSubs('performer', n, rls, port);
          await warmUp(set);
        }
      }
      closeSubs();
      await sleep(200);
    }
  }

  // ---- syscalls per frame / transaction (opt-in: strace slows the process it traces) ----
  if (opts.strace && timeLeftMs() <= 30_000 + profileReserveMs) results.skipped.push('strace rows (time budget)');
  if (opts.strace && timeLeftMs() > 30_000 + profileReserveMs) {
    const set = await connectSubs('performer', 1, false, port);
    await warmUp(set);
    for (const shape of opts.shapes) {
      const r = await straceRow(set, shape, port);
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
      let set = await connectSubs('performer', n, rls, port);
      await warmUp(set);
      for (const shape of doCatchup ? opts.shapes : []) {
        if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
          results.skipped.push(`catch-up N=${n} ${shapeText(shape)} (time budget)`);
          continue;
        }
        // Best of CATCHUP_RUNS against the best pg_recvlogical run of them all: the ceiling is a fastest run too.
        const runs: Row[] = [];
        for (let i = 0; i < CATCHUP_RUNS && timeLeftMs() > rowWorstMs() + profileReserveMs; i++) {
          const row = await catchupRow(set, shape);
          runs.push(row);
          if (!row.drained) {
            set = await connectSubs('performer', n, rls, port);
            await warmUp(set);
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
        results.rows.push(await pacedRow(set, rate));
      } else if (opts.paced) results.skipped.push(`steady-rate row ${rls ? 'RLS' : 'no RLS'} N=${n} (time budget)`);
      closeSubs();
      await sleep(200);
    }
  }

  // ---- profiles: no-RLS rows again, with V8's sampling profiler in the Performer child ----
  const target = results.rows.filter((r) => r.kind === 'live' && r.target === 'performer' && !r.rls);
  const missed = target.some((r) => r.recv && r.changesPerSec < 0.5 * r.recv.netChangesPerSec);
  if (opts.profile || missed) {
    for (const spec of opts.profileRows) {
      const [nText, shapeName] = spec.split(':');
      const n = Number(nText);
      const shape: Shape = shapeName === 'single' ? 'single' : 'batch';
      if (timeLeftMs() < Math.min(rowWorstMs(), 20_000)) {
        results.skipped.push(`profile N=${n} ${shapeText(shape)} (time budget)`);
        continue;
      }
      const set = await connectSubs('performer', n, false, port);
      await warmUp(set);
      const file = path.join(dataDir as string, `performer-${n}-${shape}.cpuprofile`);
      let cpuA = 0;
      let cpuB = 0;
      const calls: Promise<unknown>[] = [];
      const srv = performer as ChildProc;
      const { row } = await liveRow(set, shape, port, false, {
        onStart: () => {
          cpuA = procCpuSeconds(srv.pid);
          calls.push(srv.call('profileStart', { intervalUs: 250 }));
        },
        onEnd: () => {
          cpuB = procCpuSeconds(srv.pid);
          calls.push(srv.call('profileStop', { file }));
        },
      });
      closeSubs();
      await Promise.all(calls);
      const summary = withoutProfilerOverhead(summarize(file));
      const label = `no RLS, N=${n}, ${shapeText(shape)}`;
      results.profiles.push({ label, summary, row, cpuMs: (cpuB - cpuA) * 1000 });
      console.log(`\nprofile (${label}, profiler on):`);
      console.log(formatSummary(summary, 25, (cpuB - cpuA) * 1000));
      if (process.env.BENCH_KEEP_PROFILES) writeFileSync(path.join(process.env.BENCH_KEEP_PROFILES, path.basename(file)), readFileSync(file));
      await sleep(200);
    }
  } else {
    results.skipped.push('profiles (target met; pass --profile)');
  }
}

/** How the running Performer checks RLS (its CHANGES_RLS_BATCH). */
let performerCheck: RlsCheck = 'batch';

/** Starts Performer (stopping the running one first) with the given RLS check; returns its port. */
async function startPerformer(check: RlsCheck): Promise<number> {
  if (performer) {
    await performer.stop();
    performer = null;
    jitWarm.clear();
  }
  const t1 = Date.now();
  performer = new ChildProc('performer', 'server.ts', {
    BENCH_DATABASE_URL: (pgServer as EmbeddedPostgres).url,
    BENCH_JWT_SECRET: jwtSecret,
    BENCH_DATA_DIR: path.join(dataDir as string, 'performer'),
    BENCH_CHANGES_RLS_BATCH: check === 'batch' ? 'true' : 'false',
  }, startFlags());
  const port = Number((await performer.ready).port);
  performerCheck = check;
  console.log(`Performer (RLS check: ${check}) up in ${Date.now() - t1} ms (pid ${performer.pid}, port ${port})`);
  return port;
}

/**
 * --scale (issue 14): N=100 rows without RLS and under RLS (100 distinct users), at both transaction shapes, and
 * steady-rate rows at --paced-rate (1,000/s) for --paced-ms (10 s), for each RLS check variant (Performer restarted
 * with CHANGES_RLS_BATCH=false for `per-viewer`, the check before issue 14), all --repeat times in one run; the
 * variants alternate which runs first. Rows without RLS run with the batched variant only (the flag does not
 * change them).
 */
async function scaleRows(firstPort: number, results: Results): Promise<void> {
  let port = firstPort;
  const n = 100;
  for (let rep = 0; rep < opts.repeat; rep++) {
    const order = rep % 2 === 0 ? opts.rlsChecks : [...opts.rlsChecks].reverse();
    for (const check of order) {
      if (timeLeftMs() < rowWorstMs() + opts.pacedMs + 10_000) {
        results.skipped.push(`repetition ${rep + 1}, RLS check ${check} (time budget)`);
        continue;
      }
      if (check !== performerCheck) port = await startPerformer(check);
      const withoutRls = check === (opts.rlsChecks.includes('batch') ? 'batch' : opts.rlsChecks[0]);
      for (const rls of opts.rls ? (withoutRls ? [false, true] : [true]) : [false]) {
        let set = await connectSubs('performer', n, rls, port);
        await warmUp(set);
        for (const shape of opts.shapes) {
          const { row } = await liveRow(set, shape, port, false);
          row.rlsCheck = check;
          row.repetition = rep + 1;
          results.rows.push(row);
          if (!row.drained) {
            set = await connectSubs('performer', n, rls, port);
            await warmUp(set);
          }
        }
        if (opts.paced) {
          const row = await pacedRow(set, opts.pacedRate);
          row.rlsCheck = check;
          row.repetition = rep + 1;
          results.rows.push(row);
        }
        closeSubs();
        await sleep(200);
      }
    }
  }
  // --profile: the no-RLS N=100 row at 100 rows/txn again, with V8's sampling profiler in Performer (why it loses
  // to LISTEN/NOTIFY there, if it does).
  if (opts.profile && timeLeftMs() > rowWorstMs()) {
    if (performerCheck !== 'batch') port = await startPerformer('batch');
    const set = await connectSubs('performer', n, false, port);
    await warmUp(set);
    const file = path.join(dataDir as string, 'performer-scale.cpuprofile');
    const srv = performer as ChildProc;
    let cpuA = 0;
    let cpuB = 0;
    const calls: Promise<unknown>[] = [];
    const { row } = await liveRow(set, 'batch', port, false, {
      onStart: () => {
        cpuA = procCpuSeconds(srv.pid);
        calls.push(srv.call('profileStart', { intervalUs: 250 }));
      },
      onEnd: () => {
        cpuB = procCpuSeconds(srv.pid);
        calls.push(srv.call('profileStop', { file }));
      },
    });
    closeSubs();
    await Promise.all(calls);
    const summary = withoutProfilerOverhead(summarize(file));
    results.profiles.push({ label: `no RLS, N=${n}, ${shapeText('batch')}`, summary, row, cpuMs: (cpuB - cpuA) * 1000 });
    console.log(formatSummary(summary, 15, (cpuB - cpuA) * 1000));
  }
}

// ---- main ----

configureReport({
  opts,
  argv,
  repoRoot,
  loadAtStart,
  K,
  RECV_RUNS,
  CATCHUP_RUNS,
  JIT_WARM_ROWS,
  PUBLICATION,
  NOTIFY_CHANNEL,
  recvVersion: () => recvVersion,
  recvStartupMs: () => recvStartupMs,
});

async function main(): Promise<void> {
  console.log(`changes bench${quick ? ' (quick)' : ''}: ${machine()}; load average ${f(loadAtStart, 1)}`);
  const recvBin = Recvlogical.findBinary(repoRoot);
  recvVersion = await new Promise<string>((resolve) => {
    const c = spawn(recvBin, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', () => resolve(out.trim() || 'pg_recvlogical'));
  });
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'performer-bench-changes-'));
  chmodSync(dataDir, 0o755);
  const t0 = Date.now();
  pgServer = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'pg'), ephemeral: true });
  console.log(`embedded Postgres up in ${Date.now() - t0} ms (pid ${pgServer.pid}, port ${pgServer.port}); ${recvVersion} at ${recvBin}`);
  admin = new pg.Client({ connectionString: pgServer.url, application_name: 'bench_admin' });
  await admin.connect();
  recv = new Recvlogical({ admin, databaseUrl: pgServer.url, snap, usage }, recvBin, RECV_RUNS);
  const pgVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  for (let i = 0; i < Math.max(opts.batchConns, opts.singleConns); i++) {
    const client = new pg.Client({ connectionString: pgServer.url, application_name: 'bench_producer' });
    client.on('error', () => undefined);
    await client.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    producers.push({ client, pid: rows[0]!.pid });
  }
  const results: Results = { rows: [], skipped: [], pgVersion, profiles: [], syscalls: [], recvLive: [] };
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
      -- The same rows, notified as Performer's data object (the forwarder wraps Performer's frame around it).
      CREATE TABLE public.bench_notify_env (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
      CREATE FUNCTION public.bench_notify_env_fn() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('${NOTIFY_CHANNEL}_env',
          '{"schema":"public","table":"bench","commit_timestamp":' ||
          to_json(to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text ||
          ',"type":"INSERT","columns":[{"name":"id","type":"int8"},{"name":"owner","type":"uuid"},{"name":"body","type":"text"},{"name":"at","type":"timestamptz"}],"record":' ||
          row_to_json(NEW)::text || ',"errors":null}');
        RETURN NULL;
      END $$;
      CREATE TRIGGER bench_notify_env_trg AFTER INSERT ON public.bench_notify_env FOR EACH ROW EXECUTE FUNCTION public.bench_notify_env_fn();
    `);
    for (const payload of opts.notify ? opts.notifyPayloads : []) {
      const envelope = payload === 'envelope';
      notifyTable = envelope ? 'bench_notify_env' : 'bench_notify';
      peer = new ChildProc('notify-peer', 'notify-peer.ts', {
        BENCH_DATABASE_URL: pgServer.url,
        NOTIFY_CHANNEL: envelope ? `${NOTIFY_CHANNEL}_env` : NOTIFY_CHANNEL,
        NOTIFY_TOPIC: ROOM_TOPIC,
        NOTIFY_ENVELOPE: envelope ? '1' : '0',
      });
      const ready = await peer.ready;
      const port = Number(ready.port);
      console.log(`LISTEN/NOTIFY forwarder (${payload}) up (pid ${peer.pid}, port ${port})`);
      for (const n of opts.ns) {
        const set = await connectSubs('notify', n, false, port);
        await warmUp(set);
        // --scale: as many repetitions as Performer's rows, for ranges.
        for (let rep = 0; rep < (opts.scale ? opts.repeat : 1); rep++) {
          for (const shape of opts.shapes) {
            const { row, resubscribe } = await bestLiveRow(set, shape, port, false);
            if (opts.scale) row.repetition = rep + 1;
            results.rows.push(row);
            if (resubscribe) await connectSubs('notify', n, false, port);
          }
        }
        if (opts.paced) results.rows.push(await pacedRow(set, opts.pacedRate));
        closeSubs();
      }
      await peer.stop();
      peer = null;
    }

    // ---- pg_recvlogical as the live consumer, on the same kind of rows (no Performer, no other slot yet) ----
    await admin.query(`
      CREATE TABLE public.${RECV_LIVE_TABLE} (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
      CREATE PUBLICATION ${RECV_LIVE_PUBLICATION} FOR TABLE public.${RECV_LIVE_TABLE};
    `);
    if (opts.recv) recvStartupMs = await (recv as Recvlogical).startupMs(RECV_LIVE_PUBLICATION);
    if (opts.recv) console.log(`pg_recvlogical start-up with nothing to decode: ${f(recvStartupMs)} ms (median of 3)`);
    for (const shape of opts.recv ? opts.shapes : []) {
      let row = await recvLiveRow(shape);
      // Now and then its output misses the last transaction (seen about once in five 1 row/txn runs): run it again.
      if (!row.complete) {
        console.log('  (pg_recvlogical live run incomplete: running it again)');
        row = await recvLiveRow(shape);
      }
      results.recvLive.push(row);
    }

    // ---- Performer ----
    buildPerformer();
    jwtSecret = randomBytes(32).toString('hex');
    anonToken = await signHs256({ iss: 'supabase-demo', role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, jwtSecret);
    const port = await startPerformer(opts.rlsChecks[0] ?? 'batch');
    await admin.query(`
      CREATE TABLE public.bench (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
      CREATE TABLE public.bench_rls (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
      ALTER TABLE public.bench_rls ENABLE ROW LEVEL SECURITY;
      CREATE POLICY own_rows ON public.bench_rls FOR SELECT TO authenticated USING (owner = auth.uid());
      GRANT SELECT ON public.bench, public.bench_rls TO anon, authenticated;
      ALTER PUBLICATION ${PUBLICATION} ADD TABLE public.bench, public.bench_rls;
    `);
    if (opts.scale) await scaleRows(port, results);
    else await standardRows(port, results);

    // ---- the RLS visibility check on its own, at two table sizes ----
    if (opts.rls && !opts.scale && timeLeftMs() > 5000) results.probe = await rlsProbe(admin, pgServer.url, OWNERS);
    console.log(`Performer RSS at the end: ${f(procMem((performer as ChildProc).pid).rssKb / 1024)} MB`);
  } finally {
    clearInterval(hb);
    closeSubs();
    await peer?.stop();
    await performer?.stop();
    await cleanup();
  }
  configureScaleReport({ argv, loadAtStart, rows: opts.rows, pacedMs: opts.pacedMs, pgVersion: results.pgVersion });
  const text = opts.scale ? scaleSection(results) : section(results);
  console.log(`\n${text}\n`);
  if (opts.write) {
    if (opts.scale) writeScaleResults(repoRoot, text);
    else writeResults(text);
    console.log(`bench/RESULTS.md: section "${opts.scale ? 'Postgres Changes under RLS at scale' : 'Postgres Changes'}" written`);
  } else {
    console.log(`(RESULTS.md not written: ${quick ? 'pass --write in quick mode' : '--no-write'})`);
  }
  console.log(`total ${((Date.now() - runStarted) / 1000).toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    void cleanup().finally(() => process.exit(1));
  },
);
