import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { disconnectAll, drain, startFleet, type Fleet } from '../broadcast/fleet.js';
import { f0, f1, f2, f3 } from '../broadcast/format.js';
import { Args } from '../lib/args.js';
import type { Child } from '../lib/child.js';
import { recreateDatabase } from '../lib/db.js';
import { runBench } from '../lib/main.js';
import { buildPerformer, buildPerformerAt, startPerformer, type PerformerBuild } from '../lib/performer.js';
import { machine } from '../lib/report.js';
import { percentile } from '../lib/stats.js';
import { sleep } from '../lib/time.js';
import { snapshot, windowOf, WindowProfiles, type Parts, type Snapshot, type Window } from './measure.js';
import { BenchRedis } from './redis.js';
import { clusterReport, type ClusterRow } from './report.js';

/**
 * Cluster fan-out bench (issue 15): one sender, N subscribers, on one node (the single-node figure) and across two
 * nodes joined by Redis, in the same run, rows alternated so drift hits them alike.
 *
 *   npm run bench:cluster -- [--quick] [--n=100,1000] [--payload=100] [--reps=2] [--gens=2] [--out=results.json]
 *     [--open-rate=<msg/s per N>] [--compare=<rev>] [--profile[=dir]]
 *
 * Scenarios: `single` (sender and subscribers on node S, no Redis), `cross` (sender on node A, subscribers on node B),
 * `split` (sender on A, subscribers half on A, half on B). Per scenario: closed-loop deliveries/s (window of 8 in
 * flight, paced by probe subscribers beside the others), open-loop p50/p99 at one fixed rate for all scenarios (a
 * quarter of the single node's closed-loop rate), Redis deliveries per broadcast (node A's PUBLISH replies summed,
 * i.e. Redis' own count of node subscriptions it handed each message to), and server CPU per delivery (every
 * Performer process of the scenario plus redis-server), by process, next to the generators' CPU (a generator near
 * 100 % of a core, or a machine near 200 %, caps every scenario alike) and the frames per read at the receivers.
 * Ratios against single pair the rows of one repetition (adjacent in time). `--compare=<rev>` adds a second A and B
 * built from that revision (own database and key prefix, same redis-server): `cross@<rev>`, `split@<rev>`. `--profile` runs V8's profiler in every
 * node, the first generator and the sender during each closed-loop window and prints where the time goes (the
 * profiler costs CPU: figures of a profiled run are not the bench's).
 */

const args = new Args();
const quick = args.quick;
const opts = {
  ns: args.numbers('n', quick ? [100, 1000] : [100, 1000]),
  payload: args.number('payload', 100),
  reps: args.number('reps', quick ? 1 : 2),
  gens: args.number('gens', 2),
  window: args.number('window', 8),
  probes: args.number('probes', 8),
  warmupMs: quick ? 300 : 500,
  closedMs: args.number('closed-ms', quick ? 1500 : 3000),
  openMs: args.number('open-ms', quick ? 1500 : 3000),
  idleMs: args.number('idle-ms', quick ? 1000 : 2000),
  openFraction: args.number('open-fraction', 0.25),
  /** --open-rate=<msg/s>[,<msg/s>...]: one per --n (the last one for the rest). */
  openRates: args.numbers('open-rate', []),
  out: args.option('out'),
  compare: args.option('compare') ?? null,
  profile: args.option('profile') ?? (args.flag('profile') ? mkdtempSync(path.join(os.tmpdir(), 'bench-cluster-prof-')) : null),
};

/** `single`, `cross`, `split`, and with --compare=<rev> `cross@<rev>` and `split@<rev>` (that revision's A and B). */
type ScenarioName = string;

interface Node {
  name: string;
  proc: Child;
  port: number;
  token: string;
}

interface Scenario {
  name: ScenarioName;
  sender: Node;
  /** Where subscribers go, in turn. */
  subscriberNodes: Node[];
  /** Processes whose CPU the scenario costs (nodes and redis-server), by name. */
  parts: Parts;
  /** Its Performer nodes, by the same names (profiled with --profile). */
  nodes: Record<string, Child>;
  /** Node subscriptions Redis should hand each broadcast to: nodes with members of the topic (the sender's included). */
  nodesWithMembers: number;
}

let redis: BenchRedis | null = null;
const children: Child[] = [];

async function startNode(build: PerformerBuild, name: string, databaseUrl: string, env: Record<string, string>): Promise<Node> {
  const proc = startPerformer(build, { databaseUrl, dataName: `performer-bench-cluster-${name}`, env: { NODE_NAME: name, ...env } });
  children.push(proc);
  const ready = await proc.ready;
  return { name, proc, port: Number(ready.port), token: String(ready.token) };
}

/** A counter of node A's /metrics (0 when absent). */
async function metric(node: Node, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

async function redisCounters(node: Node): Promise<{ out: number; receivers: number }> {
  return {
    out: await metric(node, 'performer_cluster_messages_relayed_total', '{direction="out"}'),
    receivers: await metric(node, 'performer_cluster_redis_receivers_total'),
  };
}

/** N subscribers: N-P in the generators (spread over the scenario's nodes), P probes in the sender process. */
async function connect(fleet: Fleet, s: Scenario, n: number): Promise<void> {
  const p = Math.max(1, Math.min(opts.probes, Math.floor(n / 20)));
  const plan: { gen: Child; node: Node; first: number; count: number }[] = [];
  let first = 0;
  const parts = fleet.gens.length * s.subscriberNodes.length;
  for (let i = 0; i < parts; i++) {
    const count = Math.floor((n - p) / parts) + (i < (n - p) % parts ? 1 : 0);
    plan.push({ gen: fleet.gens[i % fleet.gens.length]!, node: s.subscriberNodes[i % s.subscriberNodes.length]!, first, count });
    first += count;
  }
  for (const x of plan) {
    if (x.count === 0) continue;
    await x.gen.call('connect', { tag: s.name, target: 'performer', port: x.node.port, token: x.node.token, first: x.first, count: x.count, concurrency: 50 }, 300_000);
  }
  await fleet.sender.call('sender', {
    tag: s.name,
    target: 'performer',
    port: s.sender.port,
    token: s.sender.token,
    probes: p,
    firstProbeIndex: n - p,
    probePorts: s.subscriberNodes.map((node) => node.port),
  });
  // Let every node's Redis subscription settle (joins are answered after it, but the last one may still be in flight).
  await sleep(300);
}

interface LoopResult {
  sent: number;
  durationS: number;
  delivered: number;
  spanS: number;
  window: Window;
  framesPerRead: number;
  samples: number[];
  redisPerBroadcast: number | null;
  profile: string | null;
}

async function loop(fleet: Fleet, s: Scenario, n: number, kind: 'closed' | 'open', extra: Record<string, unknown>, sampleMod: number, rep: number): Promise<LoopResult> {
  await Promise.all(fleet.all.map((p) => p.call('reset', { sampleMod, sampleCap: sampleMod > 0 ? 200_000 : 0 })));
  const countersNode = s.name === 'single' ? null : s.sender;
  const before = countersNode ? await redisCounters(countersNode) : null;
  const parts: Parts = { ...s.parts, sender: [fleet.sender.pid], bench: [process.pid] };
  for (const [i, g] of fleet.gens.entries()) parts[`gen${i}`] = [g.pid];
  const profiles =
    opts.profile !== null && kind === 'closed' ? new WindowProfiles(opts.profile, `${s.name}-n${n}-rep${rep}`, { ...s.nodes, gen0: fleet.gens[0]!, sender: fleet.sender }) : null;
  let start: Snapshot | null = null;
  let end: Snapshot | null = null;
  const offStart = fleet.sender.on('measure-start', () => {
    start = snapshot(parts);
    profiles?.start();
  });
  const offEnd = fleet.sender.on('measure-end', () => {
    end = snapshot(parts);
    profiles?.stop();
  });
  const reply = await fleet.sender.call(kind, { tag: s.name, payloadBytes: opts.payload, warmupMs: opts.warmupMs, ...extra }, 120_000);
  offStart();
  offEnd();
  if (start === null || end === null) throw new Error(`${s.name}: no measured window`);
  const sent = Number(reply.sentMeasured);
  const stats = await drain(fleet, sent * n);
  const after = countersNode ? await redisCounters(countersNode) : null;
  let samples: number[] = [];
  if (sampleMod > 0) samples = (await Promise.all(fleet.all.map((p) => p.call('samples')))).flatMap((r) => r.samples as number[]).sort((a, b) => a - b);
  const out = before && after ? after.out - before.out : 0;
  return {
    sent,
    durationS: Number(reply.sendDurationUs) / 1e6,
    delivered: stats.delivered,
    spanS: Math.max(1e-6, (stats.lastUs - stats.firstUs) / 1e6),
    window: windowOf(start, end),
    framesPerRead: stats.frames / Math.max(1, stats.reads),
    samples,
    redisPerBroadcast: before && after && out > 0 ? (after.receivers - before.receivers) / out : null,
    profile: profiles ? await profiles.report(sent) : null,
  };
}

/** The CPU figures of a closed-loop window, per delivery and in % of one core. */
function cpuFigures(s: Scenario, w: Window, delivered: number): Pick<ClusterRow, 'partUs' | 'cpuUsPerDelivery' | 'genUsPerDelivery' | 'genMaxPct' | 'nodeMaxPct' | 'busyPct' | 'otherPct'> {
  const per = (cpuS: number) => (cpuS * 1e6) / Math.max(1, delivered);
  const pct = (cpuS: number) => (100 * cpuS) / w.seconds;
  const servers = Object.keys(s.parts);
  const gens = Object.keys(w.cpuS).filter((k) => k.startsWith('gen') || k === 'sender');
  const partUs: Record<string, number> = {};
  for (const k of [...servers, ...gens]) partUs[k] = per(w.cpuS[k]!);
  const sum = (ks: string[], of: Record<string, number>) => ks.reduce((a, k) => a + of[k]!, 0);
  return {
    partUs,
    cpuUsPerDelivery: per(sum(servers, w.cpuS)),
    genUsPerDelivery: per(sum(gens, w.cpuS)),
    genMaxPct: Math.max(...gens.map((k) => pct(w.cpuS[k]!))),
    nodeMaxPct: Math.max(...servers.filter((k) => k !== 'redis').map((k) => pct(w.cpuS[k]!))),
    busyPct: w.busyPct,
    otherPct: w.otherPct,
  };
}

async function row(fleet: Fleet, s: Scenario, n: number, openRate: number | null, rep: number): Promise<{ row: ClusterRow; closedMsgsPerSec: number }> {
  await connect(fleet, s, n);
  try {
    // The nodes' own background (heartbeats, membership, limits sync, presence ticks) with no traffic: at a low
    // open-loop rate it is a visible share of the CPU per delivery.
    const idleParts = { ...s.parts };
    const idleStart = snapshot(idleParts);
    await sleep(opts.idleMs);
    const idle = windowOf(idleStart, snapshot(idleParts));
    const idlePct: Record<string, number> = {};
    for (const k of Object.keys(idleParts)) idlePct[k] = (100 * idle.cpuS[k]!) / idle.seconds;
    const closed = await loop(fleet, s, n, 'closed', { window: opts.window, durationMs: opts.closedMs }, 0, rep);
    if (closed.profile) console.log(closed.profile);
    const closedMsgsPerSec = closed.sent / closed.durationS;
    const rate = openRate ?? Math.max(1, Math.floor(closedMsgsPerSec * opts.openFraction));
    const sampleMod = Math.max(1, Math.round((rate * (opts.openMs / 1000) * n) / 100_000));
    const open = await loop(fleet, s, n, 'open', { rate, durationMs: opts.openMs }, sampleMod, rep);
    const openCpu = cpuFigures(s, open.window, open.delivered);
    const result: ClusterRow = {
      scenario: s.name,
      rep,
      n,
      payload: opts.payload,
      deliveriesPerSec: closed.delivered / closed.spanS,
      msgsPerSec: closedMsgsPerSec,
      lossClosed: Math.max(0, closed.sent * n - closed.delivered),
      ...cpuFigures(s, closed.window, closed.delivered),
      openCpuUsPerDelivery: openCpu.cpuUsPerDelivery,
      openPartUs: openCpu.partUs,
      idlePct,
      framesPerRead: closed.framesPerRead,
      openRate: rate,
      p50Ms: percentile(open.samples, 50) / 1000,
      p99Ms: percentile(open.samples, 99) / 1000,
      lossOpen: Math.max(0, open.sent * n - open.delivered),
      redisPerBroadcast: closed.redisPerBroadcast,
      nodesWithMembers: s.nodesWithMembers,
    };
    result.otherPct = Math.max(result.otherPct, open.window.otherPct);
    return { row: result, closedMsgsPerSec };
  } finally {
    await disconnectAll(fleet, s.name);
  }
}

const log = (r: ClusterRow) =>
  console.log(
    `${r.scenario.padEnd(6)} N=${r.n} rep ${r.rep}: ${f0(r.deliveriesPerSec)} deliveries/s (${f0(r.msgsPerSec)} msg/s), ${f3(r.cpuUsPerDelivery)} µs CPU/delivery ` +
      `(${Object.entries(r.partUs).map(([k, v]) => `${k} ${f3(v)}`).join(', ')}), busiest node ${f0(r.nodeMaxPct)}%, busiest generator ${f0(r.genMaxPct)}%, ` +
      `machine ${f0(r.busyPct)}%, ${f2(r.framesPerRead)} frames/read, ` +
      `idle ${Object.entries(r.idlePct).map(([k, v]) => `${k} ${f1(v)}%`).join(', ')}, open @${r.openRate}/s ${f3(r.openCpuUsPerDelivery)} µs CPU/delivery (${Object.entries(r.openPartUs).map(([k, v]) => `${k} ${f3(v)}`).join(', ')}) p50 ${f2(r.p50Ms)} ms p99 ${f2(r.p99Ms)} ms, Redis/broadcast ${r.redisPerBroadcast === null ? '-' : f2(r.redisPerBroadcast)} ` +
      `(nodes with members ${r.nodesWithMembers}), loss ${r.lossClosed}/${r.lossOpen}, other load ${f0(r.otherPct)}%`,
  );

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadStart = os.loadavg()[0]!;
  console.log(`cluster bench: ${machine()}, load average ${loadStart.toFixed(1)}`);
  if (opts.profile) mkdirSync(opts.profile, { recursive: true });
  redis = await BenchRedis.start();
  const clusterDb = await recreateDatabase('performer_bench_cluster');
  const singleDb = await recreateDatabase('performer_bench_cluster_single');
  const prefix = `bench-${process.pid}:`;
  const build = buildPerformer();
  const single = await startNode(build, 'bench-single', singleDb, {});
  const a = await startNode(build, 'bench-a', clusterDb, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix });
  const b = await startNode(build, 'bench-b', clusterDb, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix });
  const redisPid = redis.pid;
  const scenarios: Record<ScenarioName, Scenario> = {
    single: { name: 'single', sender: single, subscriberNodes: [single], parts: { S: [single.proc.pid] }, nodes: { S: single.proc }, nodesWithMembers: 1 },
    cross: { name: 'cross', sender: a, subscriberNodes: [b], parts: { A: [a.proc.pid], B: [b.proc.pid], redis: [redisPid] }, nodes: { A: a.proc, B: b.proc }, nodesWithMembers: 2 },
    split: { name: 'split', sender: a, subscriberNodes: [a, b], parts: { A: [a.proc.pid], B: [b.proc.pid], redis: [redisPid] }, nodes: { A: a.proc, B: b.proc }, nodesWithMembers: 2 },
  };
  if (opts.compare) {
    const cmpBuild = buildPerformerAt(opts.compare);
    const cmpDb = await recreateDatabase('performer_bench_cluster_cmp');
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `${prefix}cmp:` };
    const ca = await startNode(cmpBuild, 'bench-a-cmp', cmpDb, env);
    const cb = await startNode(cmpBuild, 'bench-b-cmp', cmpDb, env);
    const parts = { A: [ca.proc.pid], B: [cb.proc.pid], redis: [redisPid] };
    const cross = `cross@${opts.compare}`;
    const split = `split@${opts.compare}`;
    scenarios[cross] = { name: cross, sender: ca, subscriberNodes: [cb], parts, nodes: { A: ca.proc, B: cb.proc }, nodesWithMembers: 2 };
    scenarios[split] = { name: split, sender: ca, subscriberNodes: [ca, cb], parts, nodes: { A: ca.proc, B: cb.proc }, nodesWithMembers: 2 };
  }
  const names = Object.keys(scenarios);
  const fleet = await startFleet(opts.gens);
  const rows: ClusterRow[] = [];
  try {
    for (const [i, n] of opts.ns.entries()) {
      // The open-loop rate of every scenario at this N: --open-rate, else a quarter of the single node's first
      // closed-loop rate (on a loaded machine that first row may be slow: give --open-rate for comparable runs).
      let openRate: number | null = opts.openRates[Math.min(i, opts.openRates.length - 1)] ?? null;
      for (let rep = 0; rep < opts.reps; rep++) {
        const order = rep % 2 === 0 ? names : [...names].reverse();
        const ordered = openRate === null ? ['single', ...order.filter((x) => x !== 'single')] : order;
        for (const name of ordered) {
          const r = await row(fleet, scenarios[name]!, n, openRate, rep + 1);
          if (openRate === null) openRate = Math.max(1, Math.floor(r.closedMsgsPerSec * opts.openFraction));
          log(r.row);
          rows.push(r.row);
        }
      }
    }
  } finally {
    await Promise.all(fleet.all.map((p) => p.stop(3000)));
  }
  const load = { start: loadStart, end: os.loadavg()[0]! };
  const report = clusterReport(machine(), { ...opts, load }, rows);
  console.log(`\n${report}\n\ntotal ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (opts.profile) console.log(`profiles in ${opts.profile}`);
  if (opts.out) writeFileSync(opts.out, JSON.stringify({ machine: machine(), opts, load, rows }, null, 2));
}

runBench('cluster', main, {
  hardLimitMs: 3600_000,
  cleanup: async () => {
    for (const c of children) c.kill();
    redis?.stop();
  },
});
