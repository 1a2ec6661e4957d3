import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signHs256 } from '../../src/auth/jwt.js';
import { Args } from '../lib/args.js';
import { Child } from '../lib/child.js';
import { procCpuSeconds, procMem, resetPeakRss } from '../lib/cpu.js';
import { startBenchPostgres, type BenchPostgres } from '../lib/db.js';
import { runBench } from '../lib/main.js';
import { performerBuilds, startPerformer, type PerformerBuild } from '../lib/performer.js';
import { f, runLine, table, writeSection } from '../lib/report.js';

/**
 * Storage bench: upload and download throughput of /storage/v1 for 1 KB, 1 MB and 100 MB objects and small-object
 * requests/s, beside the floor of the same bytes copied to the same disk by bare handlers (uWebSockets.js and
 * node:http, bench/storage/floor-server.ts) in the same run. Target: >= 0.8x the uWS floor for large objects.
 *
 *   npm run bench:storage -- [--quick] [--large-only] [--reps=2] [--no-write] [--before=<rev>] [--cpu-prof=<dir>]
 *
 * `--before=<rev>` adds Performer as built at that revision, on the same Postgres (its own blob directory), as a second
 * system in the same run ("performer@<rev>"): before/after figures under the same load. `--streamed-too` adds this build
 * with STORAGE_SMALL_UPLOAD_BYTES=0 (every upload streamed). Systems run in a rotated order each rep, so none is always
 * measured right after another. `--cpu-prof=<dir>` writes V8 CPU profiles of the Performer children there (on exit).
 *
 * Besides MB/s (which swing with the machine's load), each row has the server's CPU seconds per GB moved, read from
 * /proc before and after the phase: the figure that holds up on a shared machine.
 *
 * Performer runs as `npm start` does (dist/, a child process) on an embedded Postgres; the floor in another child;
 * the client (node fetch) in this process. Every system stores into its own directory of one scratch dir. Rows are
 * run system after system, `--reps` times, best kept. Performer's peak RSS per row is read from /proc (VmHWM reset
 * before each row).
 */
const args = new Args();
const reps = args.number('reps', 2);
const SECRET = 'storage-bench-secret-with-at-least-32-characters';
const cpuProfDir = args.option('cpu-prof') ?? '';

interface Shape {
  label: string;
  size: number;
  count: number;
  concurrency: number;
}
const SHAPES: Shape[] = args.flag('large-only')
  ? [{ label: '100 MB', size: 100 * 1024 * 1024, count: 2, concurrency: 1 }]
  : args.quick
  ? [
      { label: '1 KB', size: 1024, count: 500, concurrency: 16 },
      { label: '1 MB', size: 1024 * 1024, count: 50, concurrency: 4 },
      { label: '100 MB', size: 100 * 1024 * 1024, count: 1, concurrency: 1 },
    ]
  : [
      { label: '1 KB', size: 1024, count: 3000, concurrency: 16 },
      { label: '1 MB', size: 1024 * 1024, count: 300, concurrency: 4 },
      { label: '100 MB', size: 100 * 1024 * 1024, count: 4, concurrency: 1 },
    ];

interface System {
  name: string;
  url(object: string): string;
  headers: Record<string, string>;
  pid: number | null;
}

interface Row {
  system: string;
  shape: string;
  upMBs: number;
  downMBs: number;
  upRps: number;
  downRps: number;
  peakRssMb: number | null;
  /** Server CPU seconds per GB uploaded / downloaded (NaN for the node:http floor, which shares the uWS floor's process). */
  upCpuPerGb: number;
  downCpuPerGb: number;
}

let scratch = '';
const loadAtStart = os.loadavg()[0];
let db: BenchPostgres | null = null;
let performerNames: string[] = ['performer'];
const children: Child[] = [];

async function main(): Promise<void> {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'performer-bench-storage-'));
  db = await startBenchPostgres('storage');
  const builds: { label: string; build: PerformerBuild; env: Record<string, string> }[] = performerBuilds(args).map((build) => ({ label: build.label, build, env: {} }));
  // The same build with every upload on the streaming path: what the one-transaction path for small bodies changes.
  if (args.flag('streamed-too')) builds.push({ label: 'performer, STORAGE_SMALL_UPLOAD_BYTES=0', build: builds[0]!.build, env: { STORAGE_SMALL_UPLOAD_BYTES: '0' } });
  const performers = builds.map(({ label, build, env }) =>
    startPerformer(build, {
      databaseUrl: db!.server.url,
      dataName: `performer-bench-storage-data-${label.replace(/[^a-z0-9]+/gi, '-')}`,
      ...(cpuProfDir ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cpuProfDir)}`] } : {}),
      env: { STORAGE_DIR: path.join(scratch, label.replace(/[^a-z0-9]+/gi, '-')), STORAGE_FILE_SIZE_LIMIT: String(200 * 1024 * 1024), JWT_SECRET: SECRET, PERFORMER_DATA_DIR: path.join(scratch, `data-${label.replace(/[^a-z0-9]+/gi, '-')}`), ...env },
    }),
  );
  children.push(...performers);
  const floorDir = path.join(scratch, 'floor');
  rmSync(floorDir, { recursive: true, force: true });
  mkdirSync(floorDir, { recursive: true });
  const floor = new Child('floor', 'bench/storage/floor-server.ts', { plain: true, env: { BENCH_FLOOR_DIR: floorDir } });
  children.push(floor);
  const readies = [];
  for (const p of performers) readies.push(await p.ready);
  const floorReady = await floor.ready;
  const key = await signHs256({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, SECRET);
  const headers = { apikey: key, authorization: `Bearer ${key}` };
  const systems: System[] = [
    { name: 'uws floor', url: (o) => `http://127.0.0.1:${floorReady.uwsPort as number}/${o}`, headers: {}, pid: floor.pid },
    { name: 'node:http floor', url: (o) => `http://127.0.0.1:${floorReady.nodePort as number}/${o}`, headers: {}, pid: null },
  ];
  for (const [i, ready] of readies.entries()) {
    const base = `http://127.0.0.1:${ready.port as number}/storage/v1`;
    // All builds share one database: one bucket each, so their object names never meet.
    const bucket = i === 0 ? 'bench' : `bench${i}`;
    const made = await fetch(`${base}/bucket`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: bucket }) });
    if (!made.ok) throw new Error(`bucket: ${made.status} ${await made.text()}`);
    systems.push({ name: builds[i]!.label, url: (o) => `${base}/object/${bucket}/${o}`, headers, pid: performers[i]!.pid });
  }
  performerNames = builds.map((b) => b.label);
  const rows: Row[] = [];
  for (const shape of SHAPES) {
    const best = new Map<string, Row>();
    for (let rep = 0; rep < reps; rep++) {
      const shift = rep % systems.length;
      for (const system of [...systems.slice(shift), ...systems.slice(0, shift)]) {
        const row = await measure(system, shape, rep);
        console.log(`${system.name} ${shape.label}: up ${f(row.upMBs, 1)} MB/s (${f(row.upRps)} req/s), down ${f(row.downMBs, 1)} MB/s (${f(row.downRps)} req/s)${row.peakRssMb !== null ? `, peak RSS ${f(row.peakRssMb)} MB` : ''}`);
        const prev = best.get(system.name);
        best.set(system.name, prev ? { ...row, upCpuPerGb: Math.min(prev.upCpuPerGb, row.upCpuPerGb), downCpuPerGb: Math.min(prev.downCpuPerGb, row.downCpuPerGb), upMBs: Math.max(prev.upMBs, row.upMBs), downMBs: Math.max(prev.downMBs, row.downMBs), upRps: Math.max(prev.upRps, row.upRps), downRps: Math.max(prev.downRps, row.downRps), peakRssMb: Math.max(prev.peakRssMb ?? 0, row.peakRssMb ?? 0) || null } : row);
      }
    }
    rows.push(...best.values());
  }
  report(rows);
}

/** `shape.count` uploads then as many downloads, `shape.concurrency` at a time; MB/s and requests/s of each phase. */
async function measure(system: System, shape: Shape, rep: number): Promise<Row> {
  const body = Buffer.alloc(shape.size, 0x5a);
  const names = Array.from({ length: shape.count }, (_, i) => `s${shape.size}-r${rep}-${i}`);
  const performer = system.pid !== null && system.name !== 'uws floor';
  if (performer) resetPeakRss(system.pid!);
  const cpu0 = system.pid ? procCpuSeconds(system.pid) : NaN;
  const upSeconds = await inParallel(names, shape.concurrency, async (name) => {
    const res = await fetch(system.url(name), { method: 'POST', headers: { ...system.headers, 'content-type': 'application/octet-stream' }, body });
    if (!res.ok) throw new Error(`${system.name} upload ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  });
  const cpu1 = system.pid ? procCpuSeconds(system.pid) : NaN;
  const downSeconds = await inParallel(names, shape.concurrency, async (name) => {
    const res = await fetch(system.url(name), { headers: system.headers });
    if (!res.ok || !res.body) throw new Error(`${system.name} download ${res.status}`);
    let n = 0;
    for await (const chunk of res.body) n += (chunk as Uint8Array).length;
    if (n !== shape.size) throw new Error(`${system.name} download: ${n} of ${shape.size} bytes`);
  });
  const cpu2 = system.pid ? procCpuSeconds(system.pid) : NaN;
  const bytes = shape.size * shape.count;
  const gb = bytes / 2 ** 30;
  return {
    upCpuPerGb: (cpu1 - cpu0) / gb,
    downCpuPerGb: (cpu2 - cpu1) / gb,
    system: system.name,
    shape: shape.label,
    upMBs: bytes / 2 ** 20 / upSeconds,
    downMBs: bytes / 2 ** 20 / downSeconds,
    upRps: shape.count / upSeconds,
    downRps: shape.count / downSeconds,
    peakRssMb: performer ? procMem(system.pid!).hwmKb / 1024 : null,
  };
}

async function inParallel(items: string[], concurrency: number, work: (item: string) => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function report(rows: Row[]): void {
  const floorOf = (shape: string) => rows.find((r) => r.shape === shape && r.system === 'uws floor')!;
  const lines = SHAPES.flatMap(({ label }) =>
    performerNames.map((name) => {
      const p = rows.find((r) => r.shape === label && r.system === name)!;
      const u = floorOf(label);
      const n = rows.find((r) => r.shape === label && r.system === 'node:http floor')!;
      const object = performerNames.length > 1 ? `${label} (${name})` : label;
      return [object, f(p.upMBs, 1), f(u.upMBs, 1), f(n.upMBs, 1), `${f(p.upMBs / u.upMBs, 2)}x`, f(p.downMBs, 1), f(u.downMBs, 1), f(n.downMBs, 1), `${f(p.downMBs / u.downMBs, 2)}x`, `${f(p.upRps)} / ${f(p.downRps)}`, `${f(u.upRps)} / ${f(u.downRps)}`, `${f(p.upCpuPerGb, 1)} / ${f(p.downCpuPerGb, 1)}`, `${f(u.upCpuPerGb, 1)} / ${f(u.downCpuPerGb, 1)}`, f(p.peakRssMb ?? NaN)];
    }),
  );
  const text = [
    performerNames.length > 1 ? '### Storage before/after (same run)' : '## Storage',
    '',
    `${runLine(`npm run bench:storage${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`)}`,
    `Performer (dist/, child process, embedded Postgres, file backend) vs the floor: bare uWS and node:http handlers copying the same bytes to files on the`,
    `same disk (bench/storage/floor-server.ts), all in one run; client: node fetch in the orchestrator; loopback; best of ${reps} reps per row.`,
    `Rows: ${SHAPES.map((s) => `${s.label} x ${s.count} at concurrency ${s.concurrency}`).join(', ')}. Upload = POST of a fresh object each time`,
    `(Performer: up to STORAGE_SMALL_UPLOAD_BYTES one transaction with bucket limits, RLS insert and blob write; larger: bucket limits,`,
    `RLS probe, streamed blob write, one transaction with the row); download = GET of each.`,
    `CPU s/GB: the server process's user+system CPU seconds per GB moved (/proc; best rep), less swayed by the load than MB/s.`,
    `1-minute load average at the start: ${f(loadAtStart, 1)} (other work on the same 2 cores; figures swing with it, ratios less).`,
    '',
    table(
      ['object', 'up MB/s', 'uws floor', 'node floor', 'up vs uws', 'down MB/s', 'uws floor', 'node floor', 'down vs uws', 'performer req/s up / down', 'uws floor req/s', 'performer CPU s/GB up / down', 'uws floor CPU s/GB', 'Performer peak RSS MB'],
      lines,
    ),
  ].join('\n');
  console.log(`\n${text}`);
  // A before/after run is a subsection for the storage section, put in by hand (writeSection replaces whole `##` sections).
  if (!args.flag('no-write') && performerNames.length === 1) writeSection('## Storage', text);
}

runBench('storage', main, {
  hardLimitMs: 20 * 60_000,
  cleanup: async () => {
    for (const c of children) await c.stop().catch(() => undefined);
    await db?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  },
});
