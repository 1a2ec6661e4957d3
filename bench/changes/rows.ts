import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import type { Child } from '../lib/child.js';
import { machineCpuSeconds, procCpuSeconds, procKernelSeconds } from '../lib/cpu.js';
import type { QuietMachine } from '../lib/quiet.js';
import type { Tally } from '../lib/tally.js';
import { nowUs, sleep, waitForCount } from '../lib/time.js';
import { pgDelta, pgLabels, pgSnap, PG_LABELS, type PgLabel } from './pgprocs.js';
import type { Produced, Producers } from './producers.js';
import type { Recvlogical } from './recv.js';
import { f, logRow, shapeText } from './report.js';
import type { Subscriber } from './subscriber.js';
import type { Kind, RecvLive, Row, Shape, Snap, Syscalls, Usage } from './types.js';

/**
 * The measured rows of the Postgres Changes bench (run.ts sets the bench up and picks the rows): live rows (the
 * producers commit while the subscribers receive), catch-up rows (Performer frozen while the rows are committed),
 * steady-rate rows, pg_recvlogical as the live consumer, and a row under strace.
 */

/** A Performer under test: this tree's, or the build of another revision (`--compare`). */
export interface System {
  label: string;
  child: Child;
  port: number;
  /** Its Postgres Changes slot (each system has its own tenant id, so its own slot). */
  slot: string;
}

/** Subscribers of one configuration (see connectSubs in run.ts). */
export interface SubSet {
  target: 'performer' | 'notify';
  system: System | null;
  n: number;
  rls: boolean;
  table: string;
  expectedFor: (id: number) => number;
  /** Mean deliveries per committed row. */
  perRow: number;
  subs: Subscriber[];
}

export interface RowsOptions {
  rows: number;
  produceCapMs: number;
  drainCapMs: number;
  stallMs: number;
  pacedMs: number;
  repeatBudgetMs: number;
}

/** What the rows share: the database, the load generator's parts and the processes whose CPU a row reads. */
export interface Bench {
  o: RowsOptions;
  admin: pg.Client;
  pgPid: number;
  producers: Producers;
  tally: Tally;
  leaks: { foreignOwner: number };
  recv: Recvlogical;
  quiet: QuietMachine;
  sampleCap: number;
  publication: string;
  /** The LISTEN/NOTIFY forwarder while its rows run. */
  peer: Child | null;
  timeLeftMs(): number;
  rowWorstMs(): number;
  /** Closes the subscribers (a row that did not drain). */
  closeSubs(): void;
}

// ---- CPU ----

export async function snap(b: Bench, system: System | null): Promise<Snap> {
  const labels = await pgLabels(b.admin);
  return {
    atUs: nowUs(),
    performer: system ? procCpuSeconds(system.child.pid) : 0,
    peer: b.peer ? procCpuSeconds(b.peer.pid) : 0,
    fanoutKernel: system ? procKernelSeconds(system.child.pid) : b.peer ? procKernelSeconds(b.peer.pid) : 0,
    gen: procCpuSeconds(process.pid),
    machine: machineCpuSeconds().busy,
    pg: pgSnap(b.pgPid, labels),
  };
}

export function usage(a: Snap, b: Snap): Usage {
  const windowS = Math.max(1e-6, (b.atUs - a.atUs) / 1e6);
  const pct = (s: number) => (100 * s) / windowS;
  const d = pgDelta(a.pg, b.pg);
  const pgBy = Object.fromEntries(PG_LABELS.map((l) => [l, pct(d[l])])) as Record<PgLabel, number>;
  const u = {
    windowS,
    performerPct: pct(b.performer - a.performer),
    peerPct: pct(b.peer - a.peer),
    fanoutKernelPct: pct(b.fanoutKernel - a.fanoutKernel),
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

// ---- the database ----

export async function lsnNow(b: Bench): Promise<string> {
  return (await b.admin.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l;
}

/** Waits (bounded) until `system`'s changes slot has confirmed `lsn`. */
async function performerConfirmed(b: Bench, system: System, lsn: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    const { rows } = await b.admin.query<{ ok: boolean | null }>(`SELECT confirmed_flush_lsn >= $2::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $1`, [system.slot, lsn]);
    if (rows[0]?.ok) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
  return false;
}

async function tableRows(b: Bench, table: string): Promise<number> {
  return (await b.admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.${table}`)).rows[0]!.n;
}

/**
 * The RLS check's cost follows the table's size (see the probe), so every RLS row starts from an empty bench_rls
 * (TRUNCATE: pgoutput sends a Truncate message, which Performer's changes engine ignores).
 */
async function resetRlsTable(b: Bench, set: SubSet): Promise<void> {
  if (!set.rls || !set.system) return;
  const lsn = await lsnNow(b);
  await b.admin.query('TRUNCATE public.bench_rls');
  await performerConfirmed(b, set.system, lsn, 10_000);
}

/** After a run that did not drain: the subscribers go (Performer then skips what is left) and the slot catches up. */
async function recover(b: Bench, set: SubSet, endLsn: string): Promise<void> {
  b.closeSubs();
  if (set.system) {
    const waitMs = Math.min(60_000, Math.max(3000, b.timeLeftMs() - 3000));
    if (!(await performerConfirmed(b, set.system, endLsn, waitMs))) console.log(`  (Performer had not caught up with the backlog after ${f(waitMs / 1000)} s)`);
  } else {
    await sleep(1000);
  }
}

// ---- measurements ----

/** Waits for `expected` deliveries, or `stallMs` without progress, or `capMs`. */
async function drain(b: Bench, expected: number, capMs: number): Promise<boolean> {
  return (await waitForCount(() => b.tally.delivered, expected, { capMs, stallMs: b.o.stallMs, pollMs: 2 })) >= expected;
}

function resetTally(b: Bench, sampleEvery: number): void {
  b.tally.reset(sampleEvery);
  b.leaks.foreignOwner = 0;
}

const sampleEvery = (b: Bench, set: SubSet) => Math.max(1, Math.ceil((b.o.rows * set.perRow) / (b.sampleCap * 0.9)));

function finish(b: Bench, set: SubSet, kind: Kind, shape: Shape, p: Produced, drained: boolean, fromUs: number, a: Snap, z: Snap): Row {
  const t = b.tally;
  const spanMs = Math.max(1e-3, (t.lastUs - fromUs) / 1000);
  // Not drained (a configuration slower than the producers): changes/s from what was delivered.
  const deliveredRows = drained ? p.rows : p.expected > 0 ? (t.delivered / p.expected) * p.rows : 0;
  return {
    target: set.target,
    system: set.system?.label ?? 'notify',
    kind,
    n: set.n,
    rls: set.rls,
    shape,
    rows: p.rows,
    txns: p.txns,
    capped: p.capped,
    drained,
    expected: p.expected,
    delivered: t.delivered,
    changesPerSec: deliveredRows / (spanMs / 1000),
    deliveriesPerSec: t.delivered / (spanMs / 1000),
    committedPerSec: p.rows / Math.max(1e-6, (p.lastCommitUs - p.startUs) / 1e6),
    spanMs,
    lat: t.latency(p.acks),
    usage: usage(a, z),
    foreignOwner: b.leaks.foreignOwner,
    unparsed: t.unparsed,
    frameBytes: t.delivered > 0 ? t.bytes / t.delivered : NaN,
    notifyPayload: set.target === 'notify' ? (set.table === 'bench_notify' ? 'bare' : 'envelope') : undefined,
  };
}

export type Hooks = { onStart?: () => void; onEnd?: () => void };

export async function liveRow(b: Bench, set: SubSet, shape: Shape, withRecv: boolean, hooks: Hooks = {}): Promise<{ row: Row; resubscribe: boolean }> {
  await b.quiet.wait();
  await resetRlsTable(b, set);
  const before = await tableRows(b, set.table);
  const startLsn = withRecv ? await b.recv.createSlots() : '';
  resetTally(b, sampleEvery(b, set));
  if (set.target === 'notify') await b.peer!.call('reset');
  const a = await snap(b, set.system);
  hooks.onStart?.();
  const p = await b.producers.produce(set.table, shape, b.o.rows, b.o.produceCapMs, set.expectedFor);
  const endLsn = await lsnNow(b);
  const drained = await drain(b, p.expected, b.o.drainCapMs);
  hooks.onEnd?.();
  const z = await snap(b, set.system);
  const row = finish(b, set, 'live', shape, p, drained, p.firstCommitUs, a, z);
  row.tableRows = before;
  if (set.target === 'notify') {
    const st = await b.peer!.call('stats');
    row.listenerPerSec = Number(st.notifications) / Math.max(1e-6, (Number(st.lastUs) - p.firstCommitUs) / 1e6);
  }
  if (!drained) await recover(b, set, endLsn);
  else if (set.system) await performerConfirmed(b, set.system, endLsn, 10_000);
  if (withRecv) row.recv = await b.recv.best(startLsn, endLsn, p.rows, b.publication);
  logRow(row);
  return { row, resubscribe: !drained };
}

/**
 * A short row is run again (once, within the run's repeat budget) when processes outside the bench took more than
 * 30 % of a core during it; the attempt with less outside load is kept.
 */
export async function bestLiveRow(b: Bench, set: SubSet, shape: Shape, withRecv: boolean): Promise<{ row: Row; resubscribe: boolean }> {
  const { row } = await b.quiet.best(() => liveRow(b, set, shape, withRecv), (r) => r.row.usage.otherPct, {
    maxOtherPct: 30,
    attempts: 2,
    canRepeat: (r) => r.row.drained && r.row.spanMs < 12_000 && b.timeLeftMs() > b.rowWorstMs() + 30_000,
  });
  return row;
}

/**
 * Catch-up: Performer frozen (SIGSTOP) while the rows are committed, then let go; changes/s = rows / (last receipt -
 * resume). pg_recvlogical then consumes the same backlog from its own slot. The walsender keeps decoding into the
 * socket buffers while Performer is frozen; how far it got is reported (preSentPct).
 */
export async function catchupRow(b: Bench, set: SubSet, shape: Shape): Promise<Row> {
  await b.quiet.wait();
  const system = set.system!;
  const startLsn = await b.recv.createSlots();
  resetTally(b, sampleEvery(b, set));
  system.child.freeze(true);
  let p: Produced;
  let endLsn: string;
  let preSentPct = NaN;
  try {
    p = await b.producers.produce(set.table, shape, b.o.rows, Math.min(b.o.produceCapMs, 20_000), set.expectedFor);
    endLsn = await lsnNow(b);
    await sleep(200);
    const { rows } = await b.admin.query<{ pct: number | null }>(
      `SELECT 100 * pg_wal_lsn_diff(r.sent_lsn, $1::pg_lsn) / nullif(pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn), 0) AS pct
         FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $3`,
      [startLsn, endLsn, system.slot],
    );
    preSentPct = Math.min(100, Math.max(0, Number(rows[0]?.pct ?? NaN)));
  } finally {
    system.child.freeze(false);
  }
  const a = await snap(b, system);
  const drained = await drain(b, p.expected, b.o.drainCapMs);
  const z = await snap(b, system);
  const row = finish(b, set, 'catchup', shape, p, drained, a.atUs, a, z);
  row.preSentPct = preSentPct;
  if (!drained) await recover(b, set, endLsn);
  else await performerConfirmed(b, system, endLsn, 10_000);
  row.recv = await b.recv.best(startLsn, endLsn, p.rows, b.publication);
  logRow(row);
  return row;
}

/** Performer's visibility calls so far (count, total ms), from its /metrics; null when it cannot be read. */
async function visibilityCalls(system: System | null): Promise<{ count: number; sumMs: number } | null> {
  if (!system) return null;
  try {
    const text = await (await fetch(`http://127.0.0.1:${system.port}/metrics`)).text();
    const read = (suffix: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`realtime_tenants_postgres_changes_authorization_check_${suffix}`))
        .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    return { count: read('count'), sumMs: read('sum') };
  } catch {
    return null;
  }
}

export async function pacedRow(b: Bench, set: SubSet, rate: number, hooks: Hooks = {}): Promise<Row> {
  await b.quiet.wait();
  await resetRlsTable(b, set);
  resetTally(b, 1);
  if (set.target === 'notify') await b.peer!.call('reset');
  const checksBefore = set.rls ? await visibilityCalls(set.system) : null;
  const a = await snap(b, set.system);
  hooks.onStart?.();
  const p = await b.producers.paced(set.table, rate, b.o.pacedMs, set.expectedFor);
  const endLsn = await lsnNow(b);
  const drained = await drain(b, p.expected, b.o.drainCapMs);
  hooks.onEnd?.();
  const z = await snap(b, set.system);
  const row = finish(b, set, 'paced', 'single', p, drained, p.firstCommitUs, a, z);
  row.rate = rate;
  const checksAfter = checksBefore ? await visibilityCalls(set.system) : null;
  if (checksBefore && checksAfter && checksAfter.count > checksBefore.count) {
    const calls = checksAfter.count - checksBefore.count;
    row.checks = { calls, meanMs: (checksAfter.sumMs - checksBefore.sumMs) / calls };
  }
  if (!drained) await recover(b, set, endLsn);
  logRow(row);
  return row;
}

/**
 * pg_recvlogical as the live consumer (before Performer runs, so its walsender is the only one): streaming from a
 * fresh slot while the producers commit the same rows in the same shape as in Performer's live rows. changes/s =
 * rows / (its last output byte - first commit acknowledgement), Performer's formula with pg_recvlogical as the
 * client. Complete when its output matches, in bytes, what a slot created at the same moment yields afterwards.
 */
export async function recvLiveRow(b: Bench, shape: Shape, table: string, publication: string): Promise<RecvLive> {
  await b.quiet.wait();
  const startLsn = await b.recv.createSlots(2);
  const live = b.recv.live(0, publication);
  let walsenderPid = 0;
  for (let i = 0; i < 500 && walsenderPid === 0; i++) {
    const { rows } = await b.admin.query<{ pid: number }>(`SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1 AND active`, [b.recv.slot(0)]);
    if (rows[0]?.pid) walsenderPid = rows[0].pid;
    else await sleep(5);
  }
  if (walsenderPid === 0) throw new Error('pg_recvlogical (live) did not start streaming');
  const a = await snap(b, null);
  const cpuA = live.cpuSeconds();
  const p = await b.producers.produce(table, shape, b.o.rows, b.o.produceCapMs, () => 1);
  // Done when its walsender has sent the WAL up to the last commit and pg_recvlogical's output has gone quiet.
  const endLsn = await lsnNow(b);
  const sentBy = Date.now() + b.o.drainCapMs;
  for (let i = 0; i < 100_000 && Date.now() < sentBy; i++) {
    const { rows } = await b.admin.query<{ ok: boolean }>('SELECT sent_lsn >= $2::pg_lsn AS ok FROM pg_stat_replication WHERE pid = $1', [walsenderPid, endLsn]);
    if (rows[0]?.ok) break;
    await sleep(5);
  }
  const settled = await live.settle(100, b.o.drainCapMs);
  const z = await snap(b, null);
  const cpuB = live.cpuSeconds();
  await live.stop();
  const check = await b.recv.run(b.recv.slot(1), startLsn, endLsn, publication);
  const spanMs = Math.max(1e-3, (live.lastUs - p.firstCommitUs) / 1000);
  const u = usage(a, z);
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

/** One no-RLS row with `strace -c -f` attached to the Performer child: its write-type syscalls per frame / transaction. */
export async function straceRow(b: Bench, set: SubSet, shape: Shape, dir: string): Promise<Syscalls | null> {
  const file = path.join(dir, `strace-${shape}.txt`);
  const tracer = spawn('strace', ['-c', '-f', '-e', 'trace=write,writev,sendto,sendmsg', '-o', file, '-p', String(set.system!.child.pid)], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => tracer.once('exit', () => r()));
  tracer.once('error', () => undefined);
  await sleep(800);
  if (tracer.exitCode !== null) return null;
  const { row } = await liveRow(b, set, shape, false);
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
