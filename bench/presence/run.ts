import os from 'node:os';
import { Args } from '../lib/args.js';
import type { Child } from '../lib/child.js';
import { procCpuSeconds } from '../lib/cpu.js';
import { recreateDatabase } from '../lib/db.js';
import { runBench } from '../lib/main.js';
import { buildPerformer, startPerformer } from '../lib/performer.js';
import { f, machine, runLine, table, writeSection } from '../lib/report.js';
import { percentile } from '../lib/stats.js';
import { sleep } from '../lib/time.js';
import { BenchClient, type Counters } from './client.js';

/**
 * Presence churn bench: Performer in a child process on the machine's Postgres, raw vsn 2.0.0 clients on loopback.
 *
 *   npm run bench:presence -- [--quick]
 *
 * 1. Memory (first, on a fresh server, so earlier garbage does not blur RSS): S sockets x C channels (presence off at
 *    join; topics of K members), then every channel tracks one entry. Memory per entry = (after track - after join) /
 *    entries, RSS and V8 heap, both after full GCs in the server. Tracking also subscribes the channel to its
 *    presence topic, so the figure includes that subscription.
 * 2. Churn: rooms of M members; every member loops join (presence on) -> track -> update -> leave. Reported: presence
 *    operations per second, presence_diffs generated and delivered per second, track reply latency, server CPU.
 * The whole run is bounded in time; the section `## Presence` of bench/RESULTS.md is replaced with the figures.
 */

const args = new Args();
const quick = args.quick;

/** Other work on the machine skews the figures: the load average at the start is printed with them. */
const loadAtStart = os.loadavg()[0]!;

const P = quick
  ? { rooms: 5, members: 10, warmupMs: 1000, churnMs: 3000, sockets: 100, channels: 50, topicSize: 10, budgetMs: 90_000 }
  : { rooms: 20, members: 25, warmupMs: 2000, churnMs: 10_000, sockets: 400, channels: 100, topicSize: 10, budgetMs: 240_000 };

const DB_NAME = 'performer_bench_presence';

interface Mem {
  rss: number;
  heapUsed: number;
  entries: number;
}

let server: Child | null = null;
const mem = async (): Promise<Mem> => (await server!.call('settled')) as unknown as Mem;

function expectOk(r: { status: string; response: unknown }, what: string): void {
  if (r.status !== 'ok') throw new Error(`${what}: ${JSON.stringify(r)}`);
}

// ---- phase 1: churn ----

interface ChurnResult {
  sockets: number;
  seconds: number;
  opsPerSec: number;
  diffsGeneratedPerSec: number;
  diffsDeliveredPerSec: number;
  trackP50Ms: number;
  trackP99Ms: number;
  serverCpuPct: number;
  limitHits: number;
}

async function churn(url: string): Promise<ChurnResult> {
  const counters: Counters = { diffs: 0, states: 0, systems: 0 };
  const n = P.rooms * P.members;
  const clients = await Promise.all(Array.from({ length: n }, () => BenchClient.connect(url, counters)));
  let measuring = false;
  let stop = false;
  let ops = 0;
  let generated = 0;
  const latencies: number[] = [];

  async function member(i: number): Promise<void> {
    const c = clients[i];
    const topic = `realtime:churn-${i % P.rooms}`;
    let cycle = 0;
    while (!stop) {
      const joinRef = `j${++cycle}`;
      expectOk(await c.join(topic, joinRef, true, `user-${i}`), 'join');
      const t0 = performance.now();
      expectOk(await c.track(topic, joinRef, { user_id: i, status: 'online', cycle }), 'track');
      const t1 = performance.now();
      expectOk(await c.track(topic, joinRef, { user_id: i, status: 'away', cycle }), 'update');
      expectOk(await c.leave(topic, joinRef), 'leave');
      // join + track + update + leave; track, update and leave each make one diff.
      if (measuring) {
        ops += 4;
        generated += 3;
        latencies.push(t1 - t0);
      }
    }
  }

  let failure: unknown = null;
  const loops = clients.map((_, i) =>
    member(i).catch((err: unknown) => {
      failure ??= err;
      stop = true;
    }),
  );
  await sleep(P.warmupMs);
  const diffs0 = counters.diffs;
  const cpu0 = procCpuSeconds(server!.pid);
  const t0 = performance.now();
  measuring = true;
  await sleep(P.churnMs);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const diffs = counters.diffs - diffs0;
  const cpu = procCpuSeconds(server!.pid) - cpu0;
  stop = true;
  await Promise.all(loops);
  await Promise.all(clients.map((c) => c.close()));
  if (failure !== null) throw failure;
  latencies.sort((a, b) => a - b);
  return {
    sockets: n,
    seconds,
    opsPerSec: ops / seconds,
    diffsGeneratedPerSec: generated / seconds,
    diffsDeliveredPerSec: diffs / seconds,
    trackP50Ms: percentile(latencies, 50),
    trackP99Ms: percentile(latencies, 99),
    serverCpuPct: (cpu / seconds) * 100,
    limitHits: counters.systems,
  };
}

// ---- phase 2: memory per entry ----

interface MemResult {
  entries: number;
  channels: number;
  bytesPerChannelRss: number;
  bytesPerEntryRss: number;
  bytesPerEntryHeap: number;
  entriesAfterClose: number;
  trackSeconds: number;
}

async function memory(url: string): Promise<MemResult> {
  const counters: Counters = { diffs: 0, states: 0, systems: 0 };
  const groups = Math.ceil(P.sockets / P.topicSize);
  const topic = (s: number, c: number) => `realtime:mem-${c * groups + Math.floor(s / P.topicSize)}`;
  // Warm the code paths (and the tenant database) before the baseline.
  const warm = await BenchClient.connect(url, counters);
  expectOk(await warm.join('realtime:warm', 'w', true, 'w'), 'join');
  expectOk(await warm.track('realtime:warm', 'w', { w: 1 }), 'track');
  await warm.close();
  const before = await mem();
  const clients = await Promise.all(Array.from({ length: P.sockets }, () => BenchClient.connect(url, counters)));
  // Requests on one socket are pipelined; sockets run in parallel.
  await Promise.all(
    clients.map(async (c, s) => {
      const replies = await Promise.all(Array.from({ length: P.channels }, (_, ch) => c.join(topic(s, ch), `m${ch}`, false, `user-${s}-${ch}`)));
      replies.forEach((r) => expectOk(r, 'join'));
    }),
  );
  const joined = await mem();
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c, s) => {
      const replies = await Promise.all(
        Array.from({ length: P.channels }, (_, ch) =>
          c.track(topic(s, ch), `m${ch}`, { user_id: `user-${s}-${ch}`, online_at: new Date().toISOString(), status: 'online' }),
        ),
      );
      replies.forEach((r) => expectOk(r, 'track'));
    }),
  );
  const trackSeconds = (performance.now() - t0) / 1000;
  // Let the last diffs drain before measuring.
  await sleep(500);
  const tracked = await mem();
  await Promise.all(clients.map((c) => c.close()));
  await sleep(500);
  const closed = await mem();
  if (process.env.BENCH_VERBOSE) console.table({ before, joined, tracked, closed });
  const channels = P.sockets * P.channels;
  return {
    entries: tracked.entries,
    channels,
    bytesPerChannelRss: (joined.rss - before.rss) / channels,
    bytesPerEntryRss: (tracked.rss - joined.rss) / tracked.entries,
    bytesPerEntryHeap: (tracked.heapUsed - joined.heapUsed) / tracked.entries,
    entriesAfterClose: closed.entries,
    trackSeconds,
  };
}

// ---- report ----

function section(churnR: ChurnResult, memR: MemResult): string {
  return `## Presence

${runLine(`npm run bench:presence${quick ? ' -- --quick' : ''}`)}
Performer in a child process (Postgres 127.0.0.1:5432, db \`${DB_NAME}\`), raw vsn 2.0.0 clients in the parent, loopback only;
1-minute load average at the start: ${f(loadAtStart, 1)} (the load generator and the server share the ${os.cpus().length} cores).

**Churn** — ${churnR.sockets} sockets in ${P.rooms} rooms of ${P.members}; each loops join (presence on) -> track -> update -> leave; ${f(churnR.seconds, 1)} s measured after ${P.warmupMs / 1000} s warm-up.

${table(
  ['presence ops/s', 'diffs generated/s', 'diffs delivered/s', 'track reply p50 / p99', 'server CPU'],
  [[f(churnR.opsPerSec), f(churnR.diffsGeneratedPerSec), f(churnR.diffsDeliveredPerSec), `${f(churnR.trackP50Ms, 2)} / ${f(churnR.trackP99Ms, 2)} ms`, `${f(churnR.serverCpuPct)} %`]],
)}

**Memory** — ${P.sockets} sockets x ${P.channels} channels (topics of ${P.topicSize}), presence off at join, then one track per channel (${f(memR.trackSeconds, 1)} s for all).

${table(
  ['entries', 'RSS per entry', 'V8 heap per entry', 'RSS per joined channel (no presence)', 'entries after the sockets closed'],
  [[f(memR.entries), `${f(memR.bytesPerEntryRss)} B`, `${f(memR.bytesPerEntryHeap)} B`, `${f(memR.bytesPerChannelRss)} B`, f(memR.entriesAfterClose)]],
)}

Per entry = (after the tracks - after the joins) / entries, both read after full GCs and a settle pause in the server.
It covers the CRDT entry and its indexes, the tracked meta, its pending delta slot and the channel's presence-topic
subscription that the track turns on (native uWS memory: in RSS, not in the V8 heap). RSS per entry can come out below
heap per entry when the heap already had the pages committed after the joins.
${churnR.limitHits > 0 ? `\n**Invalid run:** ${churnR.limitHits} limit shutdowns seen.\n` : ''}`;
}

async function main(): Promise<void> {
  const build = buildPerformer();
  server = startPerformer(build, { databaseUrl: await recreateDatabase(DB_NAME), dataName: 'performer-bench-presence-data' });
  const { port, token } = await server.ready;
  const url = `ws://127.0.0.1:${port}/socket/websocket?apikey=${token}&vsn=2.0.0`;
  try {
    console.log(`presence bench${quick ? ' (quick)' : ''}, ${machine()}: memory with ${P.sockets} sockets x ${P.channels} channels...`);
    const memR = await memory(url);
    console.table(memR);
    console.log(`churn with ${P.rooms * P.members} sockets...`);
    const churnR = await churn(url);
    console.table(churnR);
    const text = section(churnR, memR);
    writeSection('## Presence', text);
    console.log(text);
  } finally {
    await server.stop();
  }
}

runBench('presence', main, { hardLimitMs: P.budgetMs, cleanup: async () => server?.kill() });
