import os from 'node:os';
import { compareTable } from '../lib/compare.js';
import { profileText, type ProfileSummary } from '../lib/cpuprofile.js';
import { f, machine, ratio, runLine, table, writeSection } from '../lib/report.js';
import { PG_LABELS } from './pgprocs.js';
import type { RecvLive, Results, Row, Shape, Usage } from './types.js';

/**
 * The Postgres Changes section of bench/RESULTS.md and the per-row log lines, from the figures run.ts measured.
 * run.ts calls configureReport() once with its options and the facts the text quotes.
 */
export interface ReportContext {
  opts: { batch: number; batchConns: number; singleConns: number; ns: number[]; pacedMs: number; rows: number };
  argv: readonly string[];
  loadAtStart: number;
  /** Rows owners cycle over. */
  K: number;
  RECV_RUNS: number;
  CATCHUP_RUNS: number;
  JIT_WARM_ROWS: number;
  PUBLICATION: string;
  NOTIFY_CHANNEL: string;
}

let ctx: ReportContext | null = null;

export function configureReport(context: ReportContext): void {
  ctx = context;
}

function context(): ReportContext {
  if (!ctx) throw new Error('configureReport() was not called');
  return ctx;
}


/** A rate: no decimals, except one below 100 (the slow RLS rows). */
export const fr = (v: number) => f(v, Number.isFinite(v) && Math.abs(v) < 100 ? 1 : 0);
export const shapeText = (s: Shape) => (s === 'batch' ? `${context().opts.batch} rows/txn` : '1 row/txn');
const cfgText = (r: Row) => `${r.target === 'notify' ? 'LISTEN/NOTIFY' : 'Performer'} ${r.rls ? 'RLS' : 'no RLS'} N=${r.n} ${shapeText(r.shape)}`;

function pgText(u: Usage): string {
  const parts = PG_LABELS.filter((l) => u.pgBy[l] >= 1).map((l) => `${l} ${f(u.pgBy[l])}`);
  return parts.length ? `${f(u.pgPct)} (${parts.join(', ')})` : f(u.pgPct);
}

export function logRow(r: Row): void {
  const u = r.usage;
  const recv = r.recv
    ? `; pg_recvlogical ${f(r.recv.wallMs)} ms spawn to exit = ${f(r.recv.changesPerSec)}/s, output over ${f(r.recv.dataMs, 1)} ms = ${f(r.recv.netChangesPerSec)}/s` +
      ` (walsender ${f(r.recv.walsenderCpuS * 1000)} ms CPU, ${f(r.recv.walBytes / 1e6, 1)} MB WAL${r.recv.ok ? '' : ', NOT CONFIRMED'}) -> ratio ${ratio(r.changesPerSec, r.recv.netChangesPerSec)}`
    : '';
  console.log(
    `  ${cfgText(r)} ${r.kind}${r.rate ? ` ${r.rate}/s` : ''}: ${f(r.rows)} rows in ${f(r.txns)} txns (committed ${f(r.committedPerSec)}/s${r.capped ? ', CAPPED' : ''}); ` +
      `${fr(r.changesPerSec)} changes/s, ${fr(r.deliveriesPerSec)} deliveries/s, delivered ${f(r.delivered)}/${f(r.expected)}${r.drained ? '' : ' NOT DRAINED'} over ${f(r.spanMs)} ms; ` +
      `latency p50 ${f(r.lat.p50, 1)} p99 ${f(r.lat.p99, 1)} ms (from ack ${f(r.lat.c50, 1)} / ${f(r.lat.c99, 1)}; ${f(r.lat.samples)} samples)` +
      (r.listenerPerSec ? `; at the listener ${f(r.listenerPerSec)}/s` : '') +
      (r.preSentPct !== undefined ? `; walsender had sent ${f(r.preSentPct)} % before resume` : '') +
      `; CPU % ${r.target === 'notify' ? `forwarder ${f(u.peerPct)}` : `Performer ${f(u.performerPct)}`}, Postgres ${pgText(u)}, load gen ${f(u.genPct)}, machine ${f(u.machinePct)} (other ${f(u.otherPct)}); saturated: ${u.saturated}` +
      (r.foreignOwner ? `; ${r.foreignOwner} RLS LEAKS` : '') +
      (r.unparsed ? `; ${r.unparsed} unparsed` : '') +
      recv,
  );
}


/**
 * The issue's target, judged like for like on N=1 without RLS (pg_recvlogical is one consumer): the catch-up rows
 * (Performer on a backlog) against pg_recvlogical on the same backlog, and the live rows against pg_recvlogical
 * consuming live while the same producers commit rows of the same shape. Live against the backlog ceiling is
 * reported beside it, with what pg_recvlogical itself reaches live against its own backlog ceiling.
 * N=100 rows carry 100 deliveries per change and are reported, not judged, against a single-consumer ceiling.
 */
function targetVerdict(live: Row[], catchup: Row[], recvLive: RecvLive[]): string[] {
  const judged = (r: Row) => r.n === 1 && !r.rls;
  const verdicts: { text: string; met: boolean }[] = [];
  for (const r of catchup.filter(judged)) {
    const x = r.changesPerSec / (r.recv?.netChangesPerSec ?? NaN);
    verdicts.push({ text: `backlog (catch-up) ${shapeText(r.shape)} ${ratio(r.changesPerSec, r.recv?.netChangesPerSec ?? NaN)} ${x >= 0.5 ? 'met' : 'missed'}`, met: x >= 0.5 });
  }
  for (const r of live.filter(judged)) {
    const ref = recvLive.find((l) => l.shape === r.shape && l.complete);
    const x = ref ? r.changesPerSec / ref.changesPerSec : NaN;
    verdicts.push({
      text: `live ${shapeText(r.shape)} ${ref ? ratio(r.changesPerSec, ref.changesPerSec) : 'no complete pg_recvlogical live run'} ${x >= 0.5 ? 'met' : 'missed'}`,
      met: x >= 0.5,
    });
  }
  if (verdicts.length === 0) return [];
  const missed = verdicts.filter((v) => !v.met).length;
  const strict = live
    .filter(judged)
    .map((r) => {
      const ref = recvLive.find((l) => l.shape === r.shape);
      const ceiling = r.recv?.netChangesPerSec ?? NaN;
      return `${shapeText(r.shape)}: Performer ${ratio(r.changesPerSec, ceiling)}${ref ? `, pg_recvlogical itself ${ratio(ref.changesPerSec, ceiling)}` : ''}`;
    });
  return [
    `**Target (issue 7): Performer >= 0.5x the pg_recvlogical ceiling without RLS** — ${missed === 0 ? 'met' : 'MISSED'} on N=1, like for like (${verdicts.length - missed} of ${verdicts.length} rows): ` +
      `${verdicts.map((v) => v.text).join('; ')}. ` +
      (strict.length ? `Live against the backlog ceiling (a decoder alone on a quiet machine, not a live consumer): ${strict.join('; ')}. ` : '') +
      'N=100 rows are not judged against a one-consumer ceiling (100 deliveries per change); see their figures above.',
  ];
}

/** pg_recvlogical as the live consumer: the reference of the live rows. */
function recvLiveSection(recvLive: RecvLive[], live: Row[]): string[] {
  if (recvLive.length === 0) return [];
  return [
    '**pg_recvlogical live** (streaming from a fresh slot while the producers commit; measured before Performer started, so its walsender was the only one;',
    'changes/s = rows / (its last output byte - first commit acknowledgement); "complete" = as many output bytes as the same rows read from a second slot afterwards):',
    '',
    table(
      ['transactions', 'committed rows/s', 'pg_recvlogical live changes/s', 'of its backlog ceiling', 'pg_recvlogical CPU %', 'Postgres CPU % (walsender, producers)', 'machine %', 'complete'],
      recvLive.map((l) => {
        const ceiling = live.find((r) => r.n === 1 && !r.rls && r.shape === l.shape)?.recv?.netChangesPerSec ?? NaN;
        return [
          shapeText(l.shape),
          f(l.committedPerSec),
          `**${f(l.changesPerSec)}**`,
          ratio(l.changesPerSec, ceiling),
          f(l.recvPct),
          `${f(l.usage.pgPct)} (${f(l.usage.pgBy['recvlogical walsender'])}, ${f(l.usage.pgBy.producers)})`,
          f(l.usage.machinePct),
          l.complete ? 'yes' : 'NO',
        ];
      }),
    ),
    '',
  ];
}

/** Why the live N=1 batch row falls short of the catch-up row on the same code: CPU per change and latency. */
function liveVersusBacklog(live: Row[], catchup: Row[]): string[] {
  const l = live.find((r) => r.n === 1 && !r.rls && r.shape === 'batch');
  const c = catchup.find((r) => r.n === 1 && !r.rls && r.shape === 'batch');
  if (!l || !c) return [];
  const perChange = (r: Row) => ((r.usage.performerPct / 100) * 1e6) / Math.max(1, r.changesPerSec);
  return [
    `**Live versus backlog (N=1, ${shapeText('batch')}).** Live, Performer spent ${f(perChange(l), 1)} µs of CPU per change at ${f(l.usage.performerPct)} % CPU with a p50 of`,
    `${f(l.lat.p50, 0)} ms; on a backlog ${f(perChange(c), 1)} µs at ${f(c.usage.performerPct)} %. Live, it shares the ${os.cpus().length} cores with the producers' backends, the`,
    'walsender and the load generator: it gets less of a core and each change costs more (caches, context switches). pg_recvlogical live (above)',
    'shows the same effect on a consumer that does nothing with the changes.',
    '',
  ];
}




/** Profiler.stop's own work (the inspector serialising the profile: a native `dispatch` under node:inspector) left out. */
export function withoutProfilerOverhead(s: ProfileSummary): ProfileSummary {
  const own = s.frames.filter((x) => x.name === 'dispatch' && x.where === '');
  const ms = own.reduce((sum, x) => sum + x.selfMs, 0);
  return {
    ...s,
    busyMs: s.busyMs - ms,
    frames: s.frames.filter((x) => !own.includes(x)),
    origins: s.origins.map((o) => (o.origin === 'native (bindings, uWS)' ? { ...o, selfMs: o.selfMs - ms } : o)),
  };
}

const key = (r: { n: number; shape: Shape }) => `${r.n}|${r.shape}`;

export function section(res: Results): string {
  // This tree's Performer, first repetition (the other rows are the --compare table's).
  const live = res.rows.filter((r) => r.kind === 'live' && (r.target === 'notify' || (r.system === 'performer' && (r.repetition ?? 1) === 1)));
  const perf = live.filter((r) => r.target === 'performer');
  const notify = new Map(live.filter((r) => r.target === 'notify').map((r) => [key(r), r]));
  const recvBy = new Map(perf.filter((r) => !r.rls && r.recv).map((r) => [key(r), r.recv!]));
  const L: string[] = [];
  L.push('## Postgres Changes', '');
  L.push(
    runLine(`npm run bench:changes${context().argv.length ? ' --' : ''}${context().argv.filter((a) => a !== '--no-write' && a !== '--write').map((a) => ` ${a}`).join('')}`),
    `Embedded PostgreSQL ${res.pgVersion} (wal_level=logical, fsync=off, synchronous_commit on), ${res.recvVersion}. Performer and the LISTEN/NOTIFY forwarder in child`,
    `processes; producers (node-postgres, prepared INSERTs) and subscribers (raw WebSocket clients) in the parent; loopback only; everything shares the ${os.cpus().length} cores.`,
    `1-minute load average at the start: ${f(context().loadAtStart, 1)} (other people's jobs on the same machine; "other" below is CPU used outside the bench during a row).`,
    '',
    `**Method.** Each row commits ${f(context().opts.rows)} rows into \`public.bench\` (no RLS) or \`public.bench_rls\` (RLS, policy \`owner = auth.uid()\` for authenticated)`,
    `as fast as the producers go: ${context().opts.batch} rows per transaction (${context().opts.batchConns} connections, \`INSERT ... SELECT generate_series\`) or 1 row per transaction`,
    `(${context().opts.singleConns} connections, autocommit). Subscribers join \`realtime:bench\` (vsn 2.0.0) with one \`postgres_changes\` INSERT binding and wait for`,
    '"Subscribed to PostgreSQL". **changes/s = committed rows / (last receipt at a subscriber - first commit acknowledgement)**; deliveries/s counts',
    `every frame at every subscriber. Latency = receipt - the transaction's send stamp (in \`body\`), so it includes INSERT + COMMIT and, in these closed`,
    `loops, the backlog. Without RLS the N subscribers use the anon key (identical claims); with RLS each has its own user token (own \`session_id\`):`,
    `N=1 is the owner of 1 row in ${context().K}; at N=100, 50 subscribers are owners (5 per owner, so a row reaches 5 of them) and 50 own nothing (see nothing).`,
    `Every RLS row starts from an empty bench_rls (TRUNCATE): Performer's RLS check costs more as the table grows (see the probe below).`,
    `Before the first row of each N and table (Performer, with and without RLS, and LISTEN/NOTIFY alike), ${f(context().JIT_WARM_ROWS)} unmeasured rows in transactions of 100 warm the JIT up.`,
    `Rows owned by someone else never arrived (sampled check of \`owner\` in delivered records${live.some((r) => r.foreignOwner > 0) ? ': LEAKS FOUND, see the log' : ': none'}).`,
    '',
    `**pg_recvlogical ceiling**: ${context().RECV_RUNS} fresh pgoutput slots are created just before each Performer row; after the row (Performer caught up and idle),`,
    `\`pg_recvlogical --start -S <slot> -f - --endpos <LSN after the last commit> --option=proto_version=1 --option=publication_names=${context().PUBLICATION}\``,
    "consumes the very same committed changes from each slot in turn, its output piped to the bench and only counted. **Ceiling = rows / (last - first",
    `byte of its output)** of the fastest run: decode + transfer, without connection set-up (spawn to exit with nothing to decode takes ${f(res.recvStartupMs)} ms).`,
    "So the ceiling decodes a backlog with the bench's own load gone (Performer idle, producers done; other people's jobs still run, see \"other %\"),",
    "while Performer is measured live, sharing the cores with the producers' backends. **pg_recvlogical live** is the like-for-like reference of",
    'the live rows: pg_recvlogical streaming while the same producers commit rows of the same shape (table and figures below).',
    '',
    `**LISTEN/NOTIFY**: \`public.bench_notify\` with \`AFTER INSERT ... FOR EACH ROW\` -> \`pg_notify('${context().NOTIFY_CHANNEL}', row_to_json(NEW)::text)\`, one`,
    'node-postgres client LISTENing in a child process that publishes each payload unchanged (the row JSON, one text frame) to a bare uWebSockets.js topic the',
    'same raw subscribers join: no RLS, no envelope, nothing per subscriber. Measured before Performer started (no replication slot, no walsender), same rows,',
    'same shapes, same N; "at the listener" is rows / (last notification received by the LISTEN client - first commit).',
    '',
  );
  const headline = (rls: boolean, n: number) => {
    const rows = perf.filter((r) => r.rls === rls && r.n === n);
    return rows
      .map((r) => {
        const nt = notify.get(key(r));
        return `${fr(r.changesPerSec)} changes/s at ${shapeText(r.shape)}${r.drained ? '' : ' (not drained)'} (${ratio(r.changesPerSec, r.recv?.netChangesPerSec ?? NaN)} of pg_recvlogical, ${nt ? ratio(r.changesPerSec, nt.changesPerSec) : '-'} of LISTEN/NOTIFY; saturated: ${r.usage.saturated})`;
      })
      .join(', ');
  };
  const hl: string[] = [];
  for (const rls of [false, true]) for (const n of context().opts.ns) if (perf.some((r) => r.rls === rls && r.n === n)) hl.push(`${rls ? 'RLS' : 'no RLS'}, N=${n}: ${headline(rls, n)}`);
  if (hl.length) {
    const at = L.findIndex((line) => line.startsWith('**Method.**'));
    L.splice(at === -1 ? L.length : at, 0, `**Headline.** ${hl.join('; ')}.`, '');
  }
  L.push('**End to end, changes per second** (Performer: commit -> callback; ratios are Performer / reference on the same rows):', '');
  L.push(
    table(
      ['table', 'N subs', 'transactions', 'Performer changes/s', 'deliveries/s', 'delivered', 'p50 / p99 ms', 'pg_recvlogical ceiling changes/s', 'vs ceiling', 'pg_recvlogical live changes/s', 'vs live', 'LISTEN/NOTIFY (no RLS) changes/s (at listener)', 'vs NOTIFY', 'Performer CPU %', 'Postgres CPU % (by process)', 'load gen %', 'machine % (other)', 'saturated'],
      perf.map((r) => {
        const nt = notify.get(key(r));
        const ceiling = r.recv?.netChangesPerSec ?? recvBy.get(key(r))?.netChangesPerSec ?? NaN;
        const recvLive = res.recvLive.find((l) => l.shape === r.shape);
        return [
          r.rls ? 'bench_rls (RLS)' : 'bench',
          f(r.n),
          shapeText(r.shape),
          `**${fr(r.changesPerSec)}**${r.drained ? '' : ' (not drained)'}`,
          fr(r.deliveriesPerSec),
          `${f(r.delivered)} / ${f(r.expected)}`,
          `${f(r.lat.p50, 0)} / ${f(r.lat.p99, 0)}`,
          f(ceiling),
          `**${ratio(r.changesPerSec, ceiling)}**`,
          recvLive ? f(recvLive.changesPerSec) : '-',
          recvLive ? `**${ratio(r.changesPerSec, recvLive.changesPerSec)}**` : '-',
          nt ? `${f(nt.changesPerSec)} (${f(nt.listenerPerSec ?? NaN)})` : '-',
          nt ? ratio(r.changesPerSec, nt.changesPerSec) : '-',
          f(r.usage.performerPct),
          pgText(r.usage),
          f(r.usage.genPct),
          `${f(r.usage.machinePct)} (${f(r.usage.otherPct)})`,
          r.usage.saturated,
        ];
      }),
    ),
    '',
  );
  L.push(...recvLiveSection(res.recvLive, perf));
  L.push(...targetVerdict(perf, res.rows.filter((r) => r.kind === 'catchup'), res.recvLive), '');
  L.push(...liveVersusBacklog(perf, res.rows.filter((r) => r.kind === 'catchup')));
  const recvRows = perf.filter((r) => r.recv);
  if (recvRows.length) {
    L.push(`**pg_recvlogical on the same changes** (${context().RECV_RUNS} runs per Performer row, one slot each, after the row):`, '');
    L.push(
      table(
        ['rows of', 'rows', 'WAL MB', 'output MB', `output ms (${context().RECV_RUNS} runs; fastest kept)`, 'ceiling changes/s', 'spawn to exit ms', 'changes/s spawn to exit', 'walsender CPU ms', 'pg_recvlogical CPU ms', 'walsender µs CPU/change', 'other % (fastest run)', 'confirmed'],
        recvRows.map((r) => [
          `${r.rls ? 'RLS' : 'no RLS'} N=${r.n} ${shapeText(r.shape)}`,
          f(r.rows),
          f(r.recv!.walBytes / 1e6, 1),
          f(r.recv!.outBytes / 1e6, 1),
          r.recv!.walls.map((w) => f(w)).join(' / '),
          `**${f(r.recv!.netChangesPerSec)}**`,
          f(r.recv!.wallMs),
          f(r.recv!.changesPerSec),
          f(r.recv!.walsenderCpuS * 1000),
          f(r.recv!.clientCpuS * 1000),
          f((r.recv!.walsenderCpuS * 1e6) / Math.max(1, r.rows), 1),
          f(r.recv!.otherPct),
          r.recv!.ok ? 'yes' : 'NO',
        ]),
      ),
      '',
    );
  }
  const nrows = live.filter((r) => r.target === 'notify');
  if (nrows.length) {
    L.push('**LISTEN/NOTIFY pipeline** (trigger -> pg_notify -> LISTEN client -> bare uWS topic -> subscribers):', '');
    L.push(
      table(
        ['N subs', 'transactions', 'committed rows/s', 'changes/s at subscribers', 'at the listener', 'deliveries/s', 'delivered', 'p50 / p99 ms', 'forwarder CPU %', 'Postgres CPU % (by process)', 'load gen %', 'machine % (other)', 'saturated'],
        nrows.map((r) => [
          f(r.n),
          shapeText(r.shape),
          f(r.committedPerSec),
          `${fr(r.changesPerSec)}${r.drained ? '' : ' (not drained)'}`,
          f(r.listenerPerSec ?? NaN),
          fr(r.deliveriesPerSec),
          `${f(r.delivered)} / ${f(r.expected)}`,
          `${f(r.lat.p50, 1)} / ${f(r.lat.p99, 1)}`,
          f(r.usage.peerPct),
          pgText(r.usage),
          f(r.usage.genPct),
          `${f(r.usage.machinePct)} (${f(r.usage.otherPct)})`,
          r.usage.saturated,
        ]),
      ),
      '',
    );
  }
  const cu = res.rows.filter((r) => r.kind === 'catchup');
  if (cu.length) {
    L.push(
      '**Catch-up** — Performer frozen (SIGSTOP) while the rows are committed, then resumed: changes/s = rows / (last receipt - resume), next to',
      "pg_recvlogical on the same backlog. The walsender keeps decoding into the socket buffers while Performer is frozen (\"pre-sent\" = share of the backlog's",
      `WAL it had sent before the resume), so this row measures mostly Performer itself on ready data. Each shape runs ${context().CATCHUP_RUNS} time(s); the table keeps`,
      "the fastest, against the fastest pg_recvlogical run over all of them (the ceiling is a fastest run too); every run's figure is in the last column:",
      '',
    );
    L.push(
      table(
        ['N subs', 'transactions', 'Performer catch-up changes/s', 'pg_recvlogical ceiling changes/s', 'ratio', 'pre-sent %', 'Performer CPU %', 'Postgres CPU %', 'Performer µs CPU/change', 'runs (changes/s)'],
        cu.map((r) => [
          f(r.n),
          shapeText(r.shape),
          `${fr(r.changesPerSec)}${r.drained ? '' : ' (not drained)'}`,
          f(r.recv?.netChangesPerSec ?? NaN),
          ratio(r.changesPerSec, r.recv?.netChangesPerSec ?? NaN),
          f(r.preSentPct ?? NaN),
          f(r.usage.performerPct),
          pgText(r.usage),
          f((r.usage.performerPct * 1e4) / Math.max(1, r.changesPerSec), 1),
          (r.catchupRuns ?? [r.changesPerSec]).map((x) => f(x)).join(' / '),
        ]),
      ),
      '',
    );
  }
  const pc = res.rows.filter((r) => r.kind === 'paced');
  if (pc.length) {
    L.push(`**Latency at a steady rate** — 1 row per transaction at a fixed rate for ${context().opts.pacedMs / 1000} s (stamped with the scheduled send time):`, '');
    L.push(
      table(
        ['pipeline', 'N subs', 'rows/s', 'delivered', 'send -> receipt p50 / p99 / max ms', 'commit ack -> receipt p50 / p99 ms', 'Performer / forwarder CPU %', 'Postgres CPU %'],
        pc.map((r) => [
          r.target === 'notify' ? 'LISTEN/NOTIFY' : `Performer${r.rls ? ' RLS' : ''}`,
          f(r.n),
          f(r.rate ?? NaN),
          `${f(r.delivered)} / ${f(r.expected)}${r.drained ? '' : ' (not drained)'}`,
          `${f(r.lat.p50, 2)} / ${f(r.lat.p99, 2)} / ${f(r.lat.max, 1)}`,
          `${f(r.lat.c50, 2)} / ${f(r.lat.c99, 2)}`,
          f(r.target === 'notify' ? r.usage.peerPct : r.usage.performerPct),
          f(r.usage.pgPct),
        ]),
      ),
      '',
    );
  }
  for (const sc of res.syscalls) {
    const sends = (sc.calls.sendto ?? 0) + (sc.calls.sendmsg ?? 0);
    const writes = (sc.calls.write ?? 0) + (sc.calls.writev ?? 0);
    L.push(
      `**Syscalls (\`strace -c -f\` on the Performer process, ${sc.label}, ${fr(sc.row.changesPerSec)} changes/s under strace):** ${f(sends)} sendto/sendmsg`,
      `(uWS, subscriber sockets) for ${f(sc.row.delivered)} frames delivered = ${f(sends / Math.max(1, sc.row.delivered), 2)} per frame; ${f(writes)} write/writev (Node sockets:`,
      `replication status updates and pool queries) for ${f(sc.row.txns)} transactions = ${f(writes / Math.max(1, sc.row.txns), 2)} per transaction.`,
      '',
    );
  }
  if (res.skipped.length) L.push(`Not run: ${res.skipped.join('; ')}.`, '');
  for (const p of res.profiles) {
    L.push(
      `**Profile: ${p.label}** — V8 sampling profiler (250 µs) in the Performer child over the row (${fr(p.row.changesPerSec)} changes/s with the profiler on;`,
      `${f(p.summary.busyMs)} ms of non-idle samples; the inspector's own Profiler.stop work is left out).`,
      ...profileText(p.summary, { origins: 7, self: 8, performer: 10 }),
      '',
    );
  }
  L.push(...findings(res));
  L.push(
    '**Caveats.** One 2-core machine for everything: producers\' backends, the walsender (while Postgres Changes runs, its stream also reads',
    'realtime.messages for the database-broadcast pipeline, whose own walsender stops), Performer, the forwarder and the clients compete, and other people\'s jobs add',
    'noise ("other"). Postgres CPU is read from /proc for the postmaster\'s children, labelled by application_name. fsync=off makes commits cheaper than',
    'on durable storage, which favours the producers and the 1-row-per-transaction shapes. Rows that did not drain within the cap report changes/s from',
    'what was delivered. The pg_recvlogical ceiling is measured on a backlog after the row; Performer is measured live, so the ratio is conservative',
    'for Performer (the catch-up rows compare both on a backlog). Latency percentiles come from a sample of the deliveries. Performer runs from',
    'its tsc build in dist/ (built at the start of the run), as `npm start` runs it.',
  );
  return L.join('\n');
}

/** Explanations the numbers call for (hot spots named by the profiles, where per-transaction cost went). */
function findings(res: Results): string[] {
  const out: string[] = [];
  const live = res.rows.filter((r) => r.kind === 'live' && r.target === 'performer' && !r.rls);
  const batch1 = live.find((r) => r.n === 1 && r.shape === 'batch');
  const single1 = live.find((r) => r.n === 1 && r.shape === 'single');
  const usPer = (r: Row) => (r.usage.performerPct * 1e4) / Math.max(1, r.changesPerSec);
  if (batch1 && single1) {
    out.push(
      `**Where the time goes.** N=1 without RLS: ${f(batch1.changesPerSec)} changes/s at ${context().opts.batch} rows/txn with Performer at ${f(batch1.usage.performerPct)} % CPU`,
      `(${f(usPer(batch1), 1)} µs of Performer CPU per change; saturated: ${batch1.usage.saturated}) vs ${f(single1.changesPerSec)} changes/s at 1 row/txn`,
      `(${f(usPer(single1), 1)} µs/change, Performer ${f(single1.usage.performerPct)} %, Postgres ${f(single1.usage.pgPct)} %, saturated: ${single1.usage.saturated}).`,
      `pg_recvlogical's walsender needs ${f(((batch1.recv?.walsenderCpuS ?? NaN) * 1e6) / batch1.rows, 1)} µs (100 rows/txn) and ${f(((single1.recv?.walsenderCpuS ?? NaN) * 1e6) / single1.rows, 1)} µs (1 row/txn) of CPU per change.`,
    );
    const msgs = single1.usage.pgBy['messages walsender'];
    const chg = single1.usage.pgBy['changes walsender'];
    if (msgs >= 5) {
      out.push(
        `At 1 row/txn Postgres spends ${f(chg)} % of a core in the changes walsender and another ${f(msgs)} % in the walsender of Performer's database-broadcast`,
        'stream (src/replication/db-broadcast.ts: a second, temporary slot over supabase_realtime_messages_publication), which decodes the same WAL only to',
        'find no realtime.messages rows in it; on 2 cores that CPU comes out of the producers and Performer.',
      );
    }
    out.push('');
  }
  const hot: string[] = [];
  // Largest share each hot spot takes in any profile (fraction of Performer JS time), and in which profile.
  const peak = { wsSend: 0, wsSendAt: '', gc: 0, status: 0 };
  for (const p of res.profiles) {
    const s = p.summary;
    const frac = (ms: number) => ms / Math.max(1, s.busyMs);
    const share = (ms: number) => `${f(100 * frac(ms), 1)} %`;
    const self = (name: string, native: boolean) => s.frames.filter((x) => x.name === name && (native ? x.where === '' : x.origin === 'performer src')).reduce((m, x) => m + x.selfMs, 0);
    const incl = (name: string) => s.frames.filter((x) => x.name === name && x.origin === 'performer src').reduce((m, x) => Math.max(m, x.totalMs), 0);
    const gcMs = s.origins.find((o) => o.origin === '(garbage collector)')?.selfMs ?? 0;
    if (frac(self('send', true)) > peak.wsSend) {
      peak.wsSend = frac(self('send', true));
      peak.wsSendAt = p.label;
    }
    peak.gc = Math.max(peak.gc, frac(gcMs));
    peak.status = Math.max(peak.status, frac(incl('sendStatus')));
    hot.push(
      `"${p.label}": uWS \`send\` (native) ${share(self('send', true))} self, \`frameFor\` ${share(incl('frameFor'))} incl., \`dispatch\` ${share(self('dispatch', false))} self, ` +
        `\`buildPreparedChangeData\` ${share(incl('buildPreparedChangeData'))} incl., \`renderTuple\` ${share(incl('renderTuple'))} incl., \`sendStatus\` ${share(incl('sendStatus'))} incl., ` +
        `garbage collector ${share(gcMs)}`,
    );
  }
  if (hot.length) {
    out.push(`**Hot spots (from the profiles; % of Performer JS time):** ${hot.join('; ')}`, '');
    let i = 1;
    if (peak.wsSend >= 0.1) {
      out.push(
        `${i++}. uWS \`send\` takes ${f(100 * peak.wsSend)} % in "${peak.wsSendAt}": every subscriber gets its frames by its own \`ws.send\` calls (one JS -> C++`,
        '   call per frame, corked into one write per socket per loop turn). Subscribers whose events are identical already share one uWS publish per',
        '   frame and serializer (src/replication/changes-groups.ts); what is left is the one call per frame a lone subscriber needs.',
      );
    }
    if (peak.gc >= 0.15) {
      out.push(
        `${i++}. The garbage collector takes up to ${f(100 * peak.gc)} %: each row is decoded into column objects, rendered into strings and joined into a`,
        '   frame; the strings die young but the rows of a batch survive a scavenge or two. Next: render straight from the pgoutput buffer.',
      );
    }
    if (peak.status >= 0.05) {
      out.push(
        `${i++}. \`sendStatus\` (a standby status update on the replication socket) takes up to ${f(100 * peak.status)} % at one row per transaction: it is sent`,
        "   once per loop turn that confirmed something, which under a live load of small transactions is about once per commit.",
      );
    }
    out.push('');
  }
  const pr = res.probe;
  if (pr && pr.seqRowsPerCheck < 0.5 * pr.bigRows) {
    out.push(
      `**RLS visibility check** (run.ts \`rlsProbe\`, one key, median of 7): ${f(pr.bigMs, 2)} ms on ${f(pr.bigRows)} rows, ${f(pr.smallMs, 2)} ms on ${f(pr.smallRows)} rows`,
      `(${f(pr.seqRowsPerCheck)} rows read by sequential scan, ${f(pr.idxScansPerCheck, 1)} index scans per check); a primary-key lookup in the same transaction: ${f(pr.pkLookupMs, 2)} ms.`,
      '',
    );
  } else if (pr) {
    out.push(
      `**RLS: the visibility check scans the table.** Probe (run.ts \`rlsProbe\`: tables shaped like bench_rls with the same policy, one key, median of 7):`,
      `\`checkVisibility\` takes ${f(pr.bigMs, 2)} ms on ${f(pr.bigRows)} rows vs ${f(pr.smallMs, 2)} ms on ${f(pr.smallRows)} rows; the same rolled-back transaction`,
      `with a plain primary-key lookup (\`WHERE id = ANY($1::bigint[])\`) takes ${f(pr.pkLookupMs, 2)} ms on ${f(pr.bigRows)} rows. pg_stat_user_tables over the`,
      `checks on ${f(pr.bigRows)} rows: ${f(pr.seqRowsPerCheck)} rows read by sequential scan and ${f(pr.idxScansPerCheck, 1)} index scans per check (one key asked).`,
      "The check's query (src/replication/visibility.ts, `jsonb_array_elements(...) WHERE EXISTS (SELECT 1 FROM table t WHERE t.pk = (k.v ->> i)::type)`)",
      'gets a hash join over a sequential scan of the whole table, with the policy (`owner = auth.uid()`) evaluated on every row (EXPLAIN ANALYZE by hand',
      'on 20,000 rows showed exactly that plan), because the planner assumes 100 rows from the set-returning function. Its cost grows with the table,',
      'once per (table, distinct claims) per transaction: with 100 subscribers holding 100 distinct tokens that is',
      '100 such scans per transaction on a pool of 10 connections, which is what the RLS rows above measure (Postgres "Performer pool" CPU). Fix: look',
      'the keys up through the primary key — `SELECT pk FROM table WHERE pk = ANY($1::type[])` (composite keys: `(a, b) IN (SELECT * FROM unnest($1, $2))`)',
      'and map rows back to positions in JS; and consider sharing one check between subscribers whose claims differ only in fields the policies do not read.',
      '',
    );
  }
  return out;
}

const HEADING = '## Postgres Changes';

/** Replaces this bench's section of RESULTS.md (others' sections are left as they are), or appends it. */
export function writeResults(text: string): void {
  writeSection(HEADING, text);
}

/** `--compare`: this tree's Performer against the other revision's, live rows, every repetition. */
export function compareSection(res: Results, labels: string[]): string {
  const live = res.rows.filter((r) => r.kind === 'live' && r.target === 'performer');
  // A row that did not drain reports what was delivered, over a window with a stall in it: not comparable.
  const rows = live.filter((r) => r.drained);
  const left = live.filter((r) => !r.drained).map((r) => `${r.system} N=${r.n} ${shapeText(r.shape)}`);
  return [
    `**Before / after** (${labels.join(' vs ')}; live rows, interleaved; median (min-max, repetitions)${left.length ? `; left out, not drained: ${left.join(', ')}` : ''}):`,
    '',
    compareTable(rows, {
      config: (r) => `${r.rls ? 'RLS' : 'no RLS'} N=${r.n} ${shapeText(r.shape)}`,
      system: (r) => r.system,
      after: labels[0]!,
      before: labels[1]!,
      measures: [
        { name: 'changes/s', of: (r) => r.changesPerSec, digits: 0 },
        { name: 'Performer µs CPU/change', of: (r) => (r.usage.performerPct * 1e4) / Math.max(1, r.changesPerSec), digits: 1 },
        { name: 'latency p50 ms', of: (r) => r.lat.p50, digits: 1 },
        { name: 'outside load, % of a core', of: (r) => r.usage.otherPct, digits: 0, context: true },
      ],
    }),
  ].join('\n');
}

export { f, machine, ratio, table };
