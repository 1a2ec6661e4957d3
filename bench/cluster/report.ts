import { f, ratio, table } from '../lib/report.js';

/** One scenario at one N (the median of its repetitions once merged). */
export interface ClusterRow {
  scenario: 'single' | 'cross' | 'split';
  n: number;
  payload: number;
  /** Closed loop: deliveries per second at the subscribers, and the sender's messages per second. */
  deliveriesPerSec: number;
  msgsPerSec: number;
  lossClosed: number;
  /** CPU of every process the scenario runs on (Performer nodes, redis-server) per delivery, closed loop. */
  cpuUsPerDelivery: number;
  /** Open loop at a fixed rate (the same for every scenario at this N). */
  openRate: number;
  p50Ms: number;
  p99Ms: number;
  lossOpen: number;
  /** Node subscriptions Redis handed each broadcast to (PUBLISH replies summed / messages published); null alone. */
  redisPerBroadcast: number | null;
  nodesWithMembers: number;
  /** Busy CPU outside the bench's processes during the row, % of one core (the worst loop). */
  otherPct: number;
  reps?: number;
}

const TARGET_DELIVERIES = 0.8;
const TARGET_P99 = 2;

/** The report's markdown: the rows, then cross-node against single-node at each N with the targets. */
export function clusterReport(machineLine: string, opts: { payload: number; window: number; reps: number; gens: number }, rows: ClusterRow[]): string {
  const lines: string[] = [];
  lines.push(`${machineLine}; payload ${opts.payload} B, closed-loop window ${opts.window}, ${opts.reps} alternated repetition(s), ${opts.gens} generator processes.`);
  lines.push('');
  lines.push(
    table(
      ['scenario', 'N', 'deliveries/s', 'msg/s', 'CPU µs/delivery', 'open rate', 'p50 ms', 'p99 ms', 'Redis deliveries/broadcast', 'nodes with members', 'loss', 'other load %'],
      rows.map((r) => [
        r.scenario,
        f(r.n),
        f(r.deliveriesPerSec),
        f(r.msgsPerSec),
        f(r.cpuUsPerDelivery, 3),
        f(r.openRate),
        f(r.p50Ms, 2),
        f(r.p99Ms, 2),
        r.redisPerBroadcast === null ? '-' : f(r.redisPerBroadcast, 2),
        f(r.nodesWithMembers),
        `${f(r.lossClosed)}/${f(r.lossOpen)}`,
        f(r.otherPct),
      ]),
    ),
  );
  lines.push('');
  const ns = [...new Set(rows.map((r) => r.n))];
  const versus: string[][] = [];
  for (const n of ns) {
    const single = rows.find((r) => r.n === n && r.scenario === 'single');
    for (const other of rows.filter((r) => r.n === n && r.scenario !== 'single')) {
      if (!single) continue;
      const d = other.deliveriesPerSec / single.deliveriesPerSec;
      const p = other.p99Ms / single.p99Ms;
      versus.push([
        `${other.scenario} vs single`,
        f(n),
        ratio(other.deliveriesPerSec, single.deliveriesPerSec),
        d >= TARGET_DELIVERIES ? 'met' : 'MISSED',
        ratio(other.p99Ms, single.p99Ms),
        p <= TARGET_P99 ? 'met' : 'MISSED',
        ratio(other.cpuUsPerDelivery, single.cpuUsPerDelivery),
      ]);
    }
  }
  lines.push(table(['comparison', 'N', 'deliveries/s', `>= ${TARGET_DELIVERIES}x`, 'p99', `<= ${TARGET_P99}x`, 'CPU/delivery'], versus));
  return lines.join('\n');
}
