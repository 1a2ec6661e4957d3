import { f, ratio, table } from '../lib/report.js';
import { median } from '../lib/stats.js';

/** One scenario at one N in one repetition. */
export interface ClusterRow {
  /** single, cross, split; cross@<rev>, split@<rev> with --compare. */
  scenario: string;
  /** Repetition (1-based): rows of one repetition ran next to each other and are compared as pairs. */
  rep: number;
  n: number;
  payload: number;
  /** Closed loop: deliveries per second at the subscribers, and the sender's messages per second. */
  deliveriesPerSec: number;
  msgsPerSec: number;
  lossClosed: number;
  /** CPU of every process the scenario runs on (Performer nodes, redis-server) per delivery, closed loop. */
  cpuUsPerDelivery: number;
  /** µs per delivery of each part: the nodes (S; A, B), redis, each generator and the sender. */
  partUs: Record<string, number>;
  /** The generators' and the sender's CPU per delivery (the load they carry is the same in every scenario). */
  genUsPerDelivery: number;
  /** The busiest generator (or sender) process and the busiest node, % of one core: near 100 it is saturated. */
  genMaxPct: number;
  nodeMaxPct: number;
  /** The whole machine's busy CPU during the closed-loop window, % of one core (200 = both cores). */
  busyPct: number;
  /** WebSocket frames per read at the receivers: how much the fan-out batched per socket write. */
  framesPerRead: number;
  /** Open loop at a fixed rate (the same for every scenario at this N), and its servers' CPU per delivery. */
  openRate: number;
  openCpuUsPerDelivery: number;
  openPartUs: Record<string, number>;
  /** Each server process's CPU with the subscribers connected and no traffic, % of one core. */
  idlePct: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  lossOpen: number;
  /** Node subscriptions Redis handed each broadcast to (PUBLISH replies summed / messages published); null alone. */
  redisPerBroadcast: number | null;
  nodesWithMembers: number;
  /** Busy CPU outside the bench's processes during the row, % of one core (the worse of its two loops). */
  otherPct: number;
}

const TARGET_DELIVERIES = 0.8;
/** A pair counts as quiet when outside load took under this much of a core during both rows. */
const QUIET_OTHER_PCT = 50;
const TARGET_P99 = 2;

interface ReportOpts {
  payload: number;
  window: number;
  reps: number;
  gens: number;
  load: { start: number; end: number };
}

const med = (rows: ClusterRow[], get: (r: ClusterRow) => number) => median(rows.map(get));
const list = (xs: number[], d: number) => xs.map((x) => f(x, d)).join(' / ');

/**
 * The report's markdown: medians per scenario and N (with the CPU by process), then each scenario against single
 * paired by repetition (the two rows ran next to each other), with the targets.
 */
export function clusterReport(machineLine: string, opts: ReportOpts, rows: ClusterRow[]): string {
  const lines: string[] = [];
  lines.push(
    `${machineLine}; load average (1 min) ${opts.load.start.toFixed(1)} at the start, ${opts.load.end.toFixed(1)} at the end; payload ${opts.payload} B, ` +
      `closed-loop window ${opts.window}, ${opts.reps} alternated repetition(s), ${opts.gens} generator processes.`,
  );
  lines.push('');
  const groups = new Map<string, ClusterRow[]>();
  for (const r of rows) groups.set(`${r.n}|${r.scenario}`, [...(groups.get(`${r.n}|${r.scenario}`) ?? []), r]);
  lines.push(
    table(
      ['scenario', 'N', 'deliveries/s', 'server CPU µs/delivery', 'by process µs/delivery', 'generators µs/delivery', 'busiest node %', 'busiest generator %', 'machine %', 'other load %', 'frames/read', 'open rate', 'open-loop server CPU µs/delivery', 'p50 ms', 'p99 ms', 'Redis deliveries/broadcast', 'loss'],
      [...groups.values()].map((g) => {
        const r = g[0]!;
        const parts = Object.keys(r.partUs).filter((k) => !k.startsWith('gen') && k !== 'sender');
        return [
          r.scenario,
          f(r.n),
          f(med(g, (x) => x.deliveriesPerSec)),
          f(med(g, (x) => x.cpuUsPerDelivery), 3),
          parts.map((k) => `${k} ${f(med(g, (x) => x.partUs[k]!), 3)}`).join(', '),
          f(med(g, (x) => x.genUsPerDelivery), 3),
          f(med(g, (x) => x.nodeMaxPct)),
          f(med(g, (x) => x.genMaxPct)),
          f(med(g, (x) => x.busyPct)),
          f(Math.max(...g.map((x) => x.otherPct))),
          f(med(g, (x) => x.framesPerRead), 2),
          f(r.openRate),
          f(med(g, (x) => x.openCpuUsPerDelivery), 3),
          f(med(g, (x) => x.p50Ms), 2),
          f(med(g, (x) => x.p99Ms), 2),
          r.redisPerBroadcast === null ? '-' : `${f(med(g, (x) => x.redisPerBroadcast ?? NaN), 2)} (nodes with members ${r.nodesWithMembers})`,
          `${f(Math.max(...g.map((x) => x.lossClosed)))}/${f(Math.max(...g.map((x) => x.lossOpen)))}`,
        ];
      }),
    ),
  );
  lines.push('');
  lines.push(`Medians of ${opts.reps} repetition(s) above. Below, each scenario against single (and this tree against --compare's build), paired by repetition.`);
  const versus: string[][] = [];
  const names = [...new Set(rows.map((r) => r.scenario))];
  const comparisons: [string, string][] = [
    ...names.filter((x) => x !== 'single').map((x): [string, string] => [x, 'single']),
    ...names.filter((x) => x.includes('@')).map((x): [string, string] => [x.slice(0, x.indexOf('@')), x]),
  ];
  for (const n of [...new Set(rows.map((r) => r.n))]) {
    for (const [scenario, base] of comparisons) {
      const pairs: [ClusterRow, ClusterRow][] = [];
      for (const r of rows.filter((x) => x.n === n && x.scenario === scenario)) {
        const other = rows.find((x) => x.n === n && x.scenario === base && x.rep === r.rep);
        if (other) pairs.push([r, other]);
      }
      if (pairs.length === 0) continue;
      // The verdict is taken on the quiet pairs when there are any: outside load moves a row more than the code does.
      const quiet = pairs.filter(([r, s]) => r.otherPct < QUIET_OTHER_PCT && s.otherPct < QUIET_OTHER_PCT);
      const judged = quiet.length > 0 ? quiet : pairs;
      const dj = median(judged.map(([r, s]) => r.deliveriesPerSec / s.deliveriesPerSec));
      const pj = median(judged.map(([r, s]) => r.p99Ms / s.p99Ms));
      const d = pairs.map(([r, s]) => r.deliveriesPerSec / s.deliveriesPerSec);
      const p = pairs.map(([r, s]) => r.p99Ms / s.p99Ms);
      const c = pairs.map(([r, s]) => r.cpuUsPerDelivery / s.cpuUsPerDelivery);
      const o = pairs.map(([r, s]) => r.openCpuUsPerDelivery / s.openCpuUsPerDelivery);
      const all = pairs.map(([r, s]) => (r.cpuUsPerDelivery + r.genUsPerDelivery) / (s.cpuUsPerDelivery + s.genUsPerDelivery));
      const target = base === 'single';
      versus.push([
        `${scenario} vs ${base}`,
        f(n),
        `${list(d, 2)} / ${ratio(median(d), 1)}`,
        `${quiet.length} of ${pairs.length}`,
        `**${ratio(dj, 1)}**${target ? (dj >= TARGET_DELIVERIES ? ' met' : ' MISSED') : ''}`,
        `${list(p, 2)} / ${ratio(median(p), 1)}`,
        `**${ratio(pj, 1)}**${target ? (pj <= TARGET_P99 ? ' met' : ' MISSED') : ''}`,
        ratio(median(c), 1),
        ratio(median(all), 1),
        ratio(median(o), 1),
      ]);
    }
  }
  lines.push(
    `Quiet pairs: outside load under ${QUIET_OTHER_PCT} % of a core in both rows; the verdict columns take the median of the quiet pairs, or of all when none was quiet.`,
  );
  lines.push('');
  lines.push(table(['comparison', 'N', 'deliveries/s per pair / median', 'quiet pairs', `verdict (>= ${TARGET_DELIVERIES}x)`, 'p99 per pair / median', `verdict (<= ${TARGET_P99}x)`, 'server CPU/delivery', 'all CPU/delivery (with generators)', 'open-loop server CPU/delivery'], versus));
  return lines.join('\n');
}
