/**
 * The large-upload path alone, for profiling: one Performer child (dist/, as the bench runs it) on an embedded
 * Postgres, `--n` uploads of `--mb` MB each, then its CPU seconds per GB. Flags for the child go after `--node=`, e.g.
 *   node --import tsx bench/storage/profile-upload.ts --n=5 --node=--cpu-prof,--cpu-prof-dir=/tmp/prof
 * `--down` downloads each object too (measured apart). The uWS floor (floor-server.ts) does the same beside it, in turn.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signHs256 } from '../../src/auth/jwt.js';
import { Args } from '../lib/args.js';
import { procCpuSeconds } from '../lib/cpu.js';
import { startBenchPostgres } from '../lib/db.js';
import { Child } from '../lib/child.js';
import { buildPerformer, startPerformer } from '../lib/performer.js';

const args = new Args();
const n = args.number('n', 5);
const mb = args.number('mb', 100);
const SECRET = 'storage-bench-secret-with-at-least-32-characters';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'performer-profile-upload-'));
const db = await startBenchPostgres('storage-profile');
const child = startPerformer(buildPerformer(), {
  databaseUrl: db.server.url,
  dataName: 'performer-profile-upload',
  execArgv: (args.option('node') ?? '').split(',').filter(Boolean),
  env: { STORAGE_DIR: path.join(scratch, 'blobs'), PERFORMER_DATA_DIR: path.join(scratch, 'data'), STORAGE_FILE_SIZE_LIMIT: String(2 * mb * 2 ** 20), JWT_SECRET: SECRET },
});
mkdirSync(path.join(scratch, 'floor'), { recursive: true });
const floor = new Child('floor', 'bench/storage/floor-server.ts', { plain: true, env: { BENCH_FLOOR_DIR: path.join(scratch, 'floor') } });
try {
  const ready = await child.ready;
  const floorPort = (await floor.ready).uwsPort as number;
  const key = await signHs256({ role: 'service_role', exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);
  const headers = { apikey: key, authorization: `Bearer ${key}` };
  const base = `http://127.0.0.1:${ready.port as number}/storage/v1`;
  const made = await fetch(`${base}/bucket`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'p' }) });
  if (!made.ok) throw new Error(`bucket: ${made.status}`);
  const body = Buffer.alloc(mb * 2 ** 20, 0x5a);
  const gb = (n * body.length) / 2 ** 30;
  const systems = [
    { name: 'performer', pid: child.pid, url: (o: string) => `${base}/object/p/${o}`, headers },
    { name: 'uws floor', pid: floor.pid, url: (o: string) => `http://127.0.0.1:${floorPort}/${o}`, headers: {} },
  ];
  const idle0 = procCpuSeconds(child.pid);
  await new Promise((r) => setTimeout(r, 5000));
  console.log(`performer idle: ${((procCpuSeconds(child.pid) - idle0) / 5).toFixed(3)} CPU s/s`);
  for (const round of [0, 1]) {
    for (const s of round === 0 ? systems : [...systems].reverse()) {
      let cpu = procCpuSeconds(s.pid);
      let t0 = Date.now();
      for (let i = 0; i < n; i++) {
        const res = await fetch(s.url(`o${round}-${i}`), { method: 'POST', headers: { ...s.headers, 'content-type': 'application/octet-stream' }, body });
        if (!res.ok) throw new Error(`upload ${res.status}: ${await res.text()}`);
      }
      let line = `${s.name} upload: ${((procCpuSeconds(s.pid) - cpu) / gb).toFixed(2)} CPU s/GB, ${((n * mb) / ((Date.now() - t0) / 1000)).toFixed(0)} MB/s`;
      if (args.flag('down')) {
        cpu = procCpuSeconds(s.pid);
        t0 = Date.now();
        for (let i = 0; i < n; i++) await (await fetch(s.url(`o${round}-${i}`), { headers: s.headers })).arrayBuffer();
        line += `; download: ${((procCpuSeconds(s.pid) - cpu) / gb).toFixed(2)} CPU s/GB, ${((n * mb) / ((Date.now() - t0) / 1000)).toFixed(0)} MB/s`;
      }
      console.log(`${line} (load ${os.loadavg()[0]!.toFixed(1)})`);
    }
  }
} finally {
  await floor.stop();
  await child.stop();
  await db.stop();
  rmSync(scratch, { recursive: true, force: true });
}
