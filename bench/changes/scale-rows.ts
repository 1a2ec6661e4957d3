import path from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { formatSummary, profileWindow } from '../lib/cpuprofile.js';
import { sleep } from '../lib/time.js';
import { opts, rowWorstMs, timeLeftMs } from './options.js';
import { withoutProfilerOverhead } from './report.js';
import { liveRow, pacedRow, type SubSet, type System } from './rows.js';
import { createNotifyTables, startForwarder, type Run } from './sequences.js';
import { closeSubs, connectSubs, warmUp } from './subs.js';
import { checkOf, relaunch } from './systems.js';
import type { RlsCheck, Row, Shape } from './types.js';

/**
 * --scale (issue 14): N=100 rows without RLS and under RLS (100 distinct users), at both transaction shapes, and
 * steady-rate rows at --paced-rate (1,000/s) for --paced-ms (10 s), for each RLS check variant (Performer restarted
 * with CHANGES_RLS_BATCH=false for `per-viewer`, the check before issue 14) and, with --compare, for each build; and
 * the LISTEN/NOTIFY forwarder sending Performer's frame, on the same rows. Every repetition runs every part, the
 * order reversed from one repetition to the next, so each ratio is taken between rows minutes apart at most.
 * While the forwarder's rows run no Performer runs (its walsender would decode their rows too); each Performer
 * starts again after them (a cold JIT, warmed up before its rows).
 */

type Part = { kind: 'notify' } | { kind: 'performer'; system: System; check: RlsCheck };

const n = 100;

export async function scaleRows(run: Run): Promise<void> {
  const { b, results, systems, benchOf } = run;
  const parts: Part[] = [];
  if (opts.notify) parts.push({ kind: 'notify' });
  // Another build (--compare) runs the variants it knows: `serial` is this tree's pipelining switched off.
  for (const [i, system] of systems.entries()) for (const check of opts.rlsChecks) if (i === 0 || check !== 'serial') parts.push({ kind: 'performer', system, check });
  let forwarder: { port: number; table: string } | null = null;
  if (opts.notify) {
    await createNotifyTables(b.admin);
    forwarder = await startForwarder(b, run.clusterUrl, 'envelope');
  }
  for (let rep = 0; rep < opts.repeat; rep++) {
    for (const part of rep % 2 === 0 ? parts : [...parts].reverse()) {
      if (timeLeftMs() < rowWorstMs() + opts.pacedMs + 10_000) {
        results.skipped.push(`repetition ${rep + 1}, ${part.kind === 'notify' ? 'LISTEN/NOTIFY' : `${part.system.label} RLS check ${part.check}`} (time budget)`);
        continue;
      }
      if (part.kind === 'notify') {
        // No walsender of a Performer decodes the forwarder's rows meanwhile.
        for (const s of systems) await s.child.stop();
        const { port, table } = forwarder!;
        await measure(run, b, () => connectSubs(b, null, n, false, port, table), rep, (row) => row, rep === 0);
        closeSubs();
        await sleep(200);
        continue;
      }
      const { system, check } = part;
      if (system.child.exited || check !== checkOf(system)) await relaunch(system, check);
      const sb = benchOf.get(system)!;
      // Rows without RLS run with the batched variant only (the flag does not change them).
      const withoutRls = check === (opts.rlsChecks.includes('batch') ? 'batch' : opts.rlsChecks[0]);
      for (const rls of opts.rls ? (withoutRls ? [false, true] : [true]) : [false]) {
        await measure(run, sb, () => connectSubs(sb, system, n, rls), rep, (row) => ((row.rlsCheck = check), row), true);
        closeSubs();
        await sleep(200);
      }
    }
  }
  // --profile: the no-RLS N=100 row at 100 rows/txn again, with V8's sampling profiler in Performer and then in the
  // forwarder on the same rows: where each spends its time.
  if (opts.profile && timeLeftMs() > 2 * rowWorstMs()) {
    const main = systems[0]!;
    if (main.child.exited || checkOf(main) !== 'batch') await relaunch(main, 'batch');
    await profiled(run, 'performer', main);
    if (forwarder) {
      for (const s of systems) await s.child.stop();
      await profiled(run, 'forwarder', null, forwarder);
    }
  }
  await b.peer?.stop();
  b.peer = null;
}

/**
 * The closed-loop rows of both shapes and, when `paced`, the steady-rate row, on subscribers `open` connects (with
 * --profile-paced, an RLS steady-rate row runs with V8's sampling profiler in Performer).
 */
async function measure(run: Run, b: Run['b'], open: () => Promise<SubSet>, rep: number, tag: (row: Row) => Row, paced: boolean): Promise<void> {
  const out = run.results.rows;
  let set = await open();
  await warmUp(b, set);
  for (const shape of opts.shapes) {
    const { row } = await liveRow(b, set, shape, false);
    row.repetition = rep + 1;
    out.push(tag(row));
    if (!row.drained) {
      set = await open();
      await warmUp(b, set);
    }
  }
  if (paced && opts.paced) {
    const system = set.system;
    const file = path.join(run.dir, `performer-paced-rls-${rep + 1}-${system?.label.replace(/[^a-z0-9]+/gi, '-')}.cpuprofile`);
    const profiler = opts.profilePaced && set.rls && system ? profileWindow(system.child, file, 250) : null;
    const row = await pacedRow(b, set, opts.pacedRate, profiler ?? {});
    row.repetition = rep + 1;
    out.push(tag(row));
    if (profiler && system) {
      const { summary: raw, cpuMs } = await profiler.done();
      const summary = withoutProfilerOverhead(raw);
      const label = `${system.label}, RLS (${row.rlsCheck ?? 'batch'}), paced ${opts.pacedRate}/s, repetition ${rep + 1}`;
      run.results.profiles.push({ label, summary, row, cpuMs });
      console.log(`\nprofile (${label}, profiler on):`);
      console.log(formatSummary(summary, 25, cpuMs));
      if (process.env.BENCH_KEEP_PROFILES) writeFileSync(path.join(process.env.BENCH_KEEP_PROFILES, path.basename(file)), readFileSync(file));
    }
  }
}

/** A no-RLS N=100 row at 100 rows/txn with V8's sampling profiler in Performer (`system`) or in the forwarder. */
async function profiled(run: Run, who: 'performer' | 'forwarder', system: System | null, forwarder?: { port: number; table: string }): Promise<void> {
  const { b, results, dir } = run;
  const set = system ? await connectSubs(b, system, n, false) : await connectSubs(b, null, n, false, forwarder!.port, forwarder!.table);
  await warmUp(b, set);
  const shape: Shape = 'batch';
  const child = system ? system.child : b.peer!;
  const file = path.join(dir, `${who}-${n}-${shape}.cpuprofile`);
  const profiler = profileWindow(child, file, 250);
  const { row } = await liveRow(b, set, shape, false, profiler);
  closeSubs();
  const { summary: raw, cpuMs } = await profiler.done();
  const summary = withoutProfilerOverhead(raw);
  const label = `${who === 'performer' ? 'Performer' : 'LISTEN/NOTIFY forwarder'}, no RLS, N=${n}, 100 rows/txn`;
  results.profiles.push({ label, summary, row, cpuMs });
  console.log(`\nprofile (${label}, profiler on):`);
  console.log(formatSummary(summary, 15, cpuMs));
  if (process.env.BENCH_KEEP_PROFILES) writeFileSync(path.join(process.env.BENCH_KEEP_PROFILES, path.basename(file)), readFileSync(file));
  await sleep(200);
}
