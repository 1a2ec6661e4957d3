import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatSummary, summarize } from '../lib/cpuprofile.js';
import { connectRoom, disconnectAll, quiet, startFleet, startSystem } from './fleet.js';
import { f0, f1, f2, f3, size } from './format.js';
import { args, opts } from './options.js';
import { closedLoop, type ClosedRow } from './rows.js';


/**
 * `--profile`: one closed-loop row (default N=1000, 100 B) for Performer and the bare peer, with two profilers on the
 * server process during the measured window only: V8's sampling profiler (JS frames; native uWS and kernel time
 * appear as idle to it) and `perf record` (everything: kernel, uWS, Node, JIT code via --perf-basic-prof).
 */
export async function profileRun(): Promise<void> {
  const n = args.number('profile-n', 1000);
  const payload = args.number('profile-payload', 100);
  const fleet = await startFleet(opts.gens);
  try {
    for (const system of ['performer', 'uws'] as const) {
      const dir = mkdtempSync(path.join(os.tmpdir(), `bench-prof-${system}-`));
      const srv = await startSystem(system, ['--perf-basic-prof-only-functions']);
      const cpuprofile = path.join(dir, `${system}.cpuprofile`);
      const perfData = path.join(dir, `${system}.perf.data`);
      let perf: ChildProcess | null = null;
      let row: ClosedRow;
      const stopped: Promise<unknown>[] = [];
      try {
        await connectRoom(fleet, srv, n);
        await quiet.wait();
        row = await closedLoop(srv, fleet, n, payload, system, {
          onStart: () => {
            stopped.push(srv.proc.call('profileStart', { intervalUs: 200 }));
            perf = spawn('perf', ['record', '-F', '999', '-g', '-p', String(srv.proc.pid), '-o', perfData], { stdio: 'ignore' });
          },
          onEnd: () => {
            stopped.push(srv.proc.call('profileStop', { file: cpuprofile }));
            const p = perf as ChildProcess | null;
            if (p?.pid) {
              stopped.push(new Promise((r) => p.once('exit', r)));
              p.kill('SIGINT');
            }
          },
        });
        await Promise.all(stopped);
      } finally {
        await disconnectAll(fleet);
        await srv.proc.stop();
      }
      console.log(
        `\n=== ${system}, closed loop N=${n} ${size(payload)} with profilers on: ${f0(row.deliveriesPerSec)} deliveries/s, ` +
          `${f3(row.cpuUsPerDelivery)} µs CPU/delivery, server ${f0(row.serverPct)}% of a core (${f2(row.serverCpuS)} s CPU in ${f2(row.windowS)} s) ===`,
      );
      const js = summarize(cpuprofile);
      const messages = row.delivered / n;
      console.log(
        `${f2(row.framesPerRead)} frames/read at the receivers; ${f0(messages)} messages: ` +
          `${f1((js.busyMs * 1000) / messages)} µs of JS per message (native calls made from JS included), ${f3((row.serverCpuS * 1e6) / row.delivered)} µs CPU per delivery`,
      );
      console.log(`\n--- V8 sampling profile (JS only; native uWS/kernel time shows as idle to V8) ---`);
      console.log(formatSummary(js, 30, row.serverCpuS * 1000));
      console.log(`\n--- perf (all CPU of the server process) ---`);
      console.log(perfReport(perfData));
      if (!args.flag('keep-profiles')) rmSync(dir, { recursive: true, force: true });
      else console.log(`profiles kept in ${dir}`);
      rmSync(`/tmp/perf-${srv.proc.pid}.map`, { force: true });
    }
  } finally {
    await Promise.all(fleet.all.map((p) => p.stop(3000)));
  }
}

function perfReport(file: string): string {
  const run = (args: string[]) => {
    const r = spawnSync('perf', ['report', '-i', file, '--stdio', '--no-children', '-g', 'none', '--percent-limit', '0.7', ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return (r.stdout ?? '')
      .split('\n')
      .filter((l) => /^\s+\d/.test(l))
      .map((l) => `  ${l.trim().replace(/\s{2,}/g, '  ')}`)
      .join('\n');
  };
  return `by shared object:\n${run(['--sort', 'dso'])}\n\nby symbol (self):\n${run(['--sort', 'dso,sym'])}`;
}
