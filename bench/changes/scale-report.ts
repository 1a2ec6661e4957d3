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
const what = (r: Row) =>
  r.target === 'notify'
    ? `LISTEN/NOTIFY, ${r.notifyPayload === 'envelope' ? "Performer's frame" : 'row JSON'}`
    : r.rls
      ? `RLS, ${r.rlsCheck === 'per-viewer' ? 'one transaction per viewer (before)' : 'batched check'}`
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
  const L: string[] = [HEADING, ''];
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
    'in its own Performer process in the same run. Each repetition runs every variant; the variants alternate which goes first.',
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
    pgText(r.usage),
    f(r.usage.genPct),
    `${f(r.usage.machinePct)} (${f(r.usage.otherPct)})`,
    r.usage.saturated,
  ];
  const head = ['rep', 'rows', 'transactions / rate', 'changes/s', 'deliveries/s', 'frame B', 'delivered', 'commit ack -> callback p50 / p99 ms', 'send -> callback p50 / p99 ms', 'Performer (forwarder) CPU %', 'Postgres CPU % (by process)', 'load gen %', 'machine % (other)', 'saturated'];
  L.push('**Closed loop, N=100** (as fast as the producers go):', '', table(head, live.map(rowCells)), '');
  if (paced.length) L.push(`**Steady rate, N=100** (${f(info.pacedMs / 1000)} s):`, '', table(head, paced.map(rowCells)), '');

  // Targets, each judged within one repetition (same Performer build, minutes apart).
  const perf = (rep: number, rls: boolean, shape: Shape, check = 'batch') =>
    live.find((r) => r.target === 'performer' && r.repetition === rep && r.rls === rls && r.shape === shape && (!rls || (r.rlsCheck ?? 'batch') === check));
  L.push('**Targets (issue 14)**, per repetition:', '');
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
    const met = ratios.filter(Number.isFinite);
    L.push(
      `- RLS with 100 distinct users >= 0.5x the same row without RLS, ${shapeText(shape)}: ${range(ratios, (x) => ratio(x, 1))}` +
        ` (${met.length === 0 ? 'not measured' : met.every((x) => x >= 0.5) ? 'met' : met.some((x) => x >= 0.5) ? 'met in some repetitions only' : 'NOT met'});` +
        ` one transaction per viewer: ${range(before, (x) => ratio(x, 1))}.`,
    );
  }
  const rlsPaced = paced.filter((r) => r.target === 'performer' && r.rls && (r.rlsCheck ?? 'batch') === 'batch');
  const p99s = rlsPaced.map((r) => r.lat.c99);
  const allDelivered = rlsPaced.every((r) => r.drained);
  L.push(
    `- Paced ${f(rlsPaced[0]?.rate ?? NaN)} changes/s to 100 RLS users, p99 commit -> callback <= 100 ms: ${range(p99s, (x) => `${f(x, 1)} ms`)}` +
      ` (${p99s.length === 0 ? 'not measured' : p99s.every((x) => x <= 100) && allDelivered ? 'met' : p99s.some((x) => x <= 100) ? 'met in some repetitions only' : 'NOT met'});` +
      ` without RLS ${range(paced.filter((r) => r.target === 'performer' && !r.rls).map((r) => r.lat.c99), (x) => `${f(x, 1)} ms`)};` +
      ` one transaction per viewer ${range(paced.filter((r) => r.rls && r.rlsCheck === 'per-viewer').map((r) => r.lat.c99), (x) => `${f(x, 1)} ms`)}.`,
  );
  // LISTEN/NOTIFY runs before Performer starts (no walsender decoding then); repetition k is paired with k.
  for (const payload of ['envelope', 'bare'] as const) {
    const notify = live.filter((r) => r.target === 'notify' && r.notifyPayload === payload);
    if (notify.length === 0) continue;
    for (const shape of ['batch', 'single'] as Shape[]) {
      const ratios = reps.map((rep) => {
        const nt = notify.find((r) => r.shape === shape && (r.repetition ?? 1) === rep);
        const ours = live.find((r) => r.target === 'performer' && !r.rls && r.shape === shape && r.repetition === rep);
        return nt && ours ? ours.changesPerSec / nt.changesPerSec : NaN;
      });
      const met = ratios.filter(Number.isFinite);
      L.push(
        `- No RLS, N=100, ${shapeText(shape)}, >= 1.0x LISTEN/NOTIFY sending ${payload === 'envelope' ? "Performer's frame (the same bytes per change)" : 'the bare row JSON (fewer bytes)'}: ` +
          `${range(ratios, (x) => ratio(x, 1))}${payload === 'envelope' ? ` (${met.length === 0 ? 'not measured' : met.every((x) => x >= 1) ? 'met' : met.some((x) => x >= 1) ? 'met in some repetitions only' : 'NOT met'})` : ''}.`,
      );
    }
  }
  for (const p of res.profiles) {
    const pct = (ms: number) => `${f((100 * ms) / Math.max(1, p.summary.busyMs), 1)} %`;
    const top = p.summary.frames.filter((x) => x.name !== '(idle)').sort((a, b) => b.selfMs - a.selfMs).slice(0, 6);
    L.push(
      '',
      `**Profile** (${p.label}, again with V8's sampling profiler in Performer: ${fr(p.row.changesPerSec)} changes/s; the samples cover ` +
        `${f(p.summary.totalMs)} ms of the main thread's time, busy ${f(p.summary.busyMs)} ms, in which the process used ${f(p.cpuMs)} ms of CPU: ` +
        `the rest it waited for a core). Self time of the busy samples: ${top.map((x) => `\`${x.name}\` ${x.where ? `(${x.where}) ` : ''}${pct(x.selfMs)}`).join(', ')}.`,
    );
    const publish = p.summary.frames.filter((x) => x.name === 'publish').reduce((a, x) => a + x.selfMs, 0);
    const ours = p.summary.origins.find((o) => o.origin === 'performer src')?.selfMs ?? NaN;
    L.push(
      `So at N=100 and 100 rows/txn Performer's time goes to uWS \`publish\` (${pct(publish)}: each frame written into 100 sockets), the call the`,
      `LISTEN/NOTIFY forwarder makes once per change with the same bytes; decoding, matching, the RLS layer and the payloads together take`,
      `${pct(ours)}. Where the forwarder wins, it is because the JSON is built in the producers' backends and the forwarder only publishes,`,
      'while Performer does both in one process; and the rows of the two pipelines ran minutes apart under different outside load (see "other").',
    );
  }
  if (res.skipped.length) L.push('', `Skipped: ${res.skipped.join('; ')}.`);
  return L.join('\n');
}

export function writeScaleResults(text: string): void {
  writeSection(HEADING, text);
}
