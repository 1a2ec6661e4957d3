import os from 'node:os';
import { runLine, writeSection } from '../lib/report.js';
import { PG_LABELS } from './pgprocs.js';
import { f, fr, ratio, shapeText, table } from './report.js';
import type { Results, Row, Shape, Usage } from './types.js';

/**
 * The `## Postgres Changes under RLS at scale` section of bench/RESULTS.md (run.ts --scale, issue 14): N=100 rows
 * with and without RLS, per RLS check variant and repetition, the steady-rate rows, and the targets judged on the
 * rows of the same repetition.
 */

const HEADING = '## Postgres Changes under RLS at scale';

/** The section written: --section="### ..." writes (or replaces) a section of that heading instead. */
const heading = () => info?.argv.find((a) => a.startsWith('--section='))?.slice('--section='.length) ?? HEADING;

export interface ScaleInfo {
  argv: readonly string[];
  loadAtStart: number;
  rows: number;
  pacedMs: number;
  pgVersion: string;
}

let info: ScaleInfo | null = null;

export function configureScaleReport(i: ScaleInfo): void {
  info = i;
}

const pgText = (u: Usage) => {
  const parts = PG_LABELS.filter((l) => u.pgBy[l] >= 1).map((l) => `${l} ${f(u.pgBy[l])}`);
  return parts.length ? `${f(u.pgPct)} (${parts.join(', ')})` : f(u.pgPct);
};
/** With --compare the rows of the other build are named after it. */
const buildOf = (r: Row) => (r.target === 'notify' || r.system === 'performer' ? '' : `${r.system}: `);
const what = (r: Row) => `${buildOf(r)}${whatRows(r)}`;
const whatRows = (r: Row) =>
  r.target === 'notify'
    ? `LISTEN/NOTIFY, ${r.notifyPayload === 'envelope' ? "Performer's frame" : 'row JSON'}`
    : r.rls
      ? `RLS, ${r.rlsCheck === 'per-viewer' ? 'one transaction per viewer (before)' : r.rlsCheck === 'serial' ? 'batched check, one batch at a time' : 'batched check'}`
      : 'no RLS';
const range = (xs: number[], fmt: (x: number) => string) => {
  const ok = xs.filter(Number.isFinite);
  if (ok.length === 0) return '-';
  const lo = Math.min(...ok);
  const hi = Math.max(...ok);
  return lo === hi ? fmt(lo) : `${fmt(lo)} – ${fmt(hi)}`;
};

export function scaleSection(res: Results): string {
  if (!info) throw new Error('configureScaleReport() was not called');
  const live = res.rows.filter((r) => r.kind === 'live');
  const paced = res.rows.filter((r) => r.kind === 'paced');
  const reps = [...new Set(res.rows.map((r) => r.repetition ?? 0))].filter((x) => x > 0).sort((a, b) => a - b);
  const L: string[] = [heading(), ''];
  L.push(
    runLine(`npm run bench:changes --${info.argv.filter((a) => a !== '--no-write' && a !== '--write').map((a) => ` ${a}`).join('')}`),
    `Embedded PostgreSQL ${info.pgVersion} (fsync=off). 1-minute load average at the start: ${f(info.loadAtStart, 1)} (other helpers' test runs share the ${os.cpus().length} cores; "other" = CPU used outside the bench during a row).`,
    '',
    `**Method.** As in "Postgres Changes" above, at N=100 subscribers: ${f(info.rows)} rows per closed-loop row into \`public.bench\` (no RLS, anon key)`,
    'or `public.bench_rls` (RLS, `owner = auth.uid()` for authenticated; 100 distinct users, each its own token: 50 owners, 5 per owner, and 50 who own',
    'nothing), at 100 rows/txn and 1 row/txn. **Steady rate**: 1 row per transaction at a fixed rate for',
    `${f(info.pacedMs / 1000)} s (4 connections, open loop); latency **from the producer's commit acknowledgement to the callback** (receipt at the subscriber) and`,
    'from the scheduled send time. **RLS check**: "batched" is Performer now (every viewer of a batch checked in one call of',
    '`realtime.performer_visible_keys`); "one transaction per viewer" is the same build with `CHANGES_RLS_BATCH=false`, the check before issue 14,',
    'in its own Performer process in the same run. **LISTEN/NOTIFY**: the forwarder (bench/changes/notify-peer.ts) sending Performer\'s frame around',
    'Performer\'s data object built by the trigger (the same bytes per change), to the same raw subscribers; no Performer runs during its rows.',
    'Each repetition runs every part (forwarder, each build with --compare, each RLS check), the order reversed from one repetition to the next;',
    'ratios pair rows of the same repetition. "µs CPU / change" is the fan-out process\'s CPU (Performer or the forwarder) per change.',
    '',
  );
  const rowCells = (r: Row) => [
    r.repetition ? String(r.repetition) : '-',
    what(r),
    r.kind === 'paced' ? `${f(r.rate ?? NaN)}/s` : shapeText(r.shape),
    `**${fr(r.changesPerSec)}**`,
    fr(r.deliveriesPerSec),
    f(r.frameBytes ?? NaN),
    `${f(r.delivered)} / ${f(r.expected)}${r.drained ? '' : ' (not drained)'}`,
    `${f(r.lat.c50, 1)} / ${f(r.lat.c99, 1)}`,
    `${f(r.lat.p50, 1)} / ${f(r.lat.p99, 1)}`,
    f(r.target === 'notify' ? r.usage.peerPct : r.usage.performerPct),
    `${f(cpuPerChange(r), 1)} (${f(kernelPerChange(r), 1)})`,
    pgText(r.usage),
    f(r.usage.genPct),
    `${f(r.usage.machinePct)} (${f(r.usage.otherPct)})`,
    r.usage.saturated,
  ];
  const head = ['rep', 'rows', 'transactions / rate', 'changes/s', 'deliveries/s', 'frame B', 'delivered', 'commit ack -> callback p50 / p99 ms', 'send -> callback p50 / p99 ms', 'Performer (forwarder) CPU %', 'its µs CPU / change (kernel)', 'Postgres CPU % (by process)', 'load gen %', 'machine % (other)', 'saturated'];
  L.push('**Closed loop, N=100** (as fast as the producers go):', '', table(head, live.map(rowCells)), '');
  if (paced.length) L.push(`**Steady rate, N=100** (${f(info.pacedMs / 1000)} s):`, '', table(head, paced.map(rowCells)), '');
  // Where a batch's RLS wait goes: Postgres working inside the call, or round trips (what pipelining would hide).
  const checked = paced.filter((r) => r.checks && r.rls);
  if (checked.length) {
    L.push(
      '**RLS visibility calls during the steady-rate rows** (Performer\'s /metrics; Postgres CPU of its pool connections from /proc):',
      '',
      table(
        ['rep', 'rows', 'calls/s', 'mean wall ms per call', 'Performer pool CPU %', 'Postgres CPU ms per call', 'share of the wall time'],
        checked.map((r) => {
          const perSec = r.checks!.calls / (r.spanMs / 1000);
          const cpuMs = (r.usage.pgBy['Performer pool'] / 100) * (1000 / perSec);
          return [r.repetition ? String(r.repetition) : '-', what(r), f(perSec), f(r.checks!.meanMs, 2), f(r.usage.pgBy['Performer pool']), f(cpuMs, 2), `${f((100 * cpuMs) / r.checks!.meanMs)} %`];
        }),
      ),
      '',
    );
  }

  // Targets, each judged within one repetition (same Performer build, minutes apart), for each build.
  // (From the steady-rate rows too: a run of those alone, --shapes=, judges target 2 for each build.)
  const builds = [...new Set([...live, ...paced].filter((r) => r.target === 'performer').map((r) => r.system))];
  L.push('**Targets (issue 14)**, per repetition:', '');
  for (const build of builds) {
    const name = build === 'performer' ? '' : `${build}: `;
    const perf = (rep: number, rls: boolean, shape: Shape, check = 'batch') =>
      live.find((r) => r.target === 'performer' && r.system === build && r.repetition === rep && r.rls === rls && r.shape === shape && (!rls || (r.rlsCheck ?? 'batch') === check));
    for (const shape of ['batch', 'single'] as Shape[]) {
      const ratios = reps.map((rep) => {
        const a = perf(rep, true, shape);
        const b = perf(rep, false, shape);
        return a && b ? a.changesPerSec / b.changesPerSec : NaN;
      });
      const before = reps.map((rep) => {
        const a = perf(rep, true, shape, 'per-viewer');
        const b = perf(rep, false, shape);
        return a && b ? a.changesPerSec / b.changesPerSec : NaN;
      });
      const serial = reps.map((rep) => {
        const a = perf(rep, true, shape, 'serial');
        const b = perf(rep, false, shape);
        return a && b ? a.changesPerSec / b.changesPerSec : NaN;
      });
      if (!ratios.some(Number.isFinite) && !before.some(Number.isFinite) && !serial.some(Number.isFinite)) continue;
      L.push(
        `- ${name}RLS with 100 distinct users >= 0.5x the same row without RLS, ${shapeText(shape)}: ${range(ratios, (x) => ratio(x, 1))} (${verdict(ratios, (x) => x >= 0.5)})` +
          (serial.some(Number.isFinite) ? `; one batch at a time: ${range(serial, (x) => ratio(x, 1))}` : '') +
          (before.some(Number.isFinite) ? `; one transaction per viewer: ${range(before, (x) => ratio(x, 1))}.` : '.'),
      );
    }
    const rlsPaced = paced.filter((r) => r.target === 'performer' && r.system === build && r.rls && (r.rlsCheck ?? 'batch') === 'batch');
    const p99s = rlsPaced.map((r) => (r.drained ? r.lat.c99 : Infinity));
    const perViewer = paced.filter((r) => r.system === build && r.rls && r.rlsCheck === 'per-viewer').map((r) => r.lat.c99);
    const serial = paced.filter((r) => r.system === build && r.rls && r.rlsCheck === 'serial').map((r) => r.lat.c99);
    L.push(
      `- ${name}Paced ${f(rlsPaced[0]?.rate ?? NaN)} changes/s to 100 RLS users, p99 commit -> callback <= 100 ms: ${range(p99s, (x) => `${f(x, 1)} ms`)}` +
        ` (${verdict(p99s, (x) => x <= 100)}); without RLS ${range(paced.filter((r) => r.target === 'performer' && r.system === build && !r.rls).map((r) => r.lat.c99), (x) => `${f(x, 1)} ms`)}` +
        (serial.length ? `; one batch at a time (no pipelining) ${range(serial, (x) => `${f(x, 1)} ms`)}` : '') +
        (perViewer.length ? `; one transaction per viewer ${range(perViewer, (x) => `${f(x, 1)} ms`)}.` : '.'),
    );
    // The forwarder's rows of the same repetition (minutes apart at most, see the method).
    for (const payload of ['envelope', 'bare'] as const) {
      const notify = live.filter((r) => r.target === 'notify' && r.notifyPayload === payload);
      if (notify.length === 0) continue;
      for (const shape of ['batch', 'single'] as Shape[]) {
        const pairs = reps.map((rep) => [notify.find((r) => r.shape === shape && (r.repetition ?? 1) === rep), perf(rep, false, shape)] as const);
        const ratios = pairs.map(([nt, ours]) => (nt && ours ? ours.changesPerSec / nt.changesPerSec : NaN));
        const cpu = pairs.map(([nt, ours]) => (nt && ours ? cpuPerChange(nt) / cpuPerChange(ours) : NaN));
        const user = pairs.map(([nt, ours]) => (nt && ours ? (cpuPerChange(nt) - kernelPerChange(nt)) / (cpuPerChange(ours) - kernelPerChange(ours)) : NaN));
        const kernel = pairs.map(([nt, ours]) => (nt && ours ? kernelPerChange(nt) / kernelPerChange(ours) : NaN));
        L.push(
          `- ${name}No RLS, N=100, ${shapeText(shape)}, >= 1.0x LISTEN/NOTIFY sending ${payload === 'envelope' ? "Performer's frame (the same bytes per change)" : 'the bare row JSON (fewer bytes)'}: ` +
            `${range(ratios, (x) => ratio(x, 1))}, median ${ratio(median(ratios), 1)}${payload === 'envelope' ? ` (${verdict(ratios, (x) => x >= 1)})` : ''}; ` +
            `forwarder's CPU per change / Performer's: ${range(cpu, (x) => ratio(x, 1))} (user ${range(user, (x) => ratio(x, 1))}, kernel ${range(kernel, (x) => ratio(x, 1))}).`,
        );
      }
    }
  }
  for (const p of res.profiles) {
    const pct = (ms: number) => `${f((100 * ms) / Math.max(1, p.summary.busyMs), 1)} %`;
    const top = p.summary.frames.filter((x) => x.name !== '(idle)').sort((a, b) => b.selfMs - a.selfMs).slice(0, 8);
    const native = p.summary.origins.find((o) => o.origin === 'native (bindings, uWS)')?.selfMs ?? 0;
    const ours = p.summary.origins.find((o) => o.origin === 'performer src')?.selfMs ?? 0;
    L.push(
      '',
      `**Profile: ${p.label}** (V8's sampling profiler, as \`node --cpu-prof\`, on the same kind of row: ${fr(p.row.changesPerSec)} changes/s; the samples cover ` +
        `${f(p.summary.totalMs)} ms of the main thread's time, busy ${f(p.summary.busyMs)} ms, in which the process used ${f(p.cpuMs)} ms of CPU: ` +
        `the rest it waited for a core). Native code (uWS writes, the bindings) ${pct(native)} of the busy samples, Performer's own JavaScript ${pct(ours)}. ` +
        `Self time: ${top.map((x) => `\`${x.name}\` ${x.where ? `(${x.where}) ` : ''}${pct(x.selfMs)}`).join(', ')}.`,
    );
  }
  if (res.skipped.length) L.push('', `Skipped: ${res.skipped.join('; ')}.`);
  return L.join('\n');
}

export function writeScaleResults(text: string): void {
  writeSection(heading(), text);
}

/** The fan-out process's CPU per change of a row: Performer's, or the forwarder's. */
function cpuPerChange(r: Row): number {
  const pct = r.target === 'notify' ? r.usage.peerPct : r.usage.performerPct;
  return (pct / 100) * (1e6 / r.changesPerSec);
}

/** The kernel part of {@link cpuPerChange} (socket writes on loopback include the receivers' TCP work). */
function kernelPerChange(r: Row): number {
  return (r.usage.fanoutKernelPct / 100) * (1e6 / r.changesPerSec);
}

function median(xs: number[]): number {
  const ok = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (ok.length === 0) return NaN;
  const mid = ok.length >> 1;
  return ok.length % 2 ? ok[mid]! : (ok[mid - 1]! + ok[mid]!) / 2;
}

function verdict(xs: number[], ok: (x: number) => boolean): string {
  const got = xs.filter((x) => !Number.isNaN(x));
  if (got.length === 0) return 'not measured';
  return got.every(ok) ? 'met' : got.some(ok) ? 'met in some repetitions only' : 'NOT met';
}
