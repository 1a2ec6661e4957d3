import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Child } from '../lib/child.js';
import { formatSummary, profileWindow } from '../lib/cpuprofile.js';
import { sleep } from '../lib/time.js';
import { args, CATCHUP_RUNS, NOTIFY_CHANNEL, opts, RECV_LIVE_PUBLICATION, RECV_LIVE_TABLE, reps, ROOM_TOPIC, rowWorstMs, timeLeftMs } from './options.js';
import { f, shapeText, withoutProfilerOverhead } from './report.js';
import { bestLiveRow, catchupRow, liveRow, pacedRow, recvLiveRow, straceRow, type Bench, type System } from './rows.js';
import { closeSubs, connectSubs, warmUp } from './subs.js';
import type { NotifyPayload, Results, Row, Shape } from './types.js';

/**
 * The sequences of rows of a Postgres Changes run, in the order run.ts calls them: LISTEN/NOTIFY and pg_recvlogical
 * before any Performer (no other slot decodes their rows), then Performer's rows, either the standard set (with
 * --compare, every build's live rows interleaved) or --scale's (issue 14).
 */

export interface Run {
  /** The bench on the main database (the first system's). */
  b: Bench;
  results: Results;
  systems: System[];
  benchOf: Map<System, Bench>;
  /** Scratch directory (profiles, strace output). */
  dir: string;
  clusterUrl: string;
}

/** The LISTEN/NOTIFY tables and triggers: the row's JSON (`bench_notify`) and Performer's data object (`bench_notify_env`). */
export async function createNotifyTables(admin: Bench['admin']): Promise<void> {
  await admin.query(`
    CREATE TABLE public.bench_notify (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
    CREATE FUNCTION public.bench_notify_fn() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('${NOTIFY_CHANNEL}', row_to_json(NEW)::text);
      RETURN NULL;
    END $$;
    CREATE TRIGGER bench_notify_trg AFTER INSERT ON public.bench_notify FOR EACH ROW EXECUTE FUNCTION public.bench_notify_fn();
    -- The same rows, notified as Performer's data object (the forwarder wraps Performer's frame around it).
    CREATE TABLE public.bench_notify_env (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
    CREATE FUNCTION public.bench_notify_env_fn() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('${NOTIFY_CHANNEL}_env',
        '{"schema":"public","table":"bench","commit_timestamp":' ||
        to_json(to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text ||
        ',"type":"INSERT","columns":[{"name":"id","type":"int8"},{"name":"owner","type":"uuid"},{"name":"body","type":"text"},{"name":"at","type":"timestamptz"}],"record":' ||
        row_to_json(NEW)::text || ',"errors":null}');
      RETURN NULL;
    END $$;
    CREATE TRIGGER bench_notify_env_trg AFTER INSERT ON public.bench_notify_env FOR EACH ROW EXECUTE FUNCTION public.bench_notify_env_fn();
  `);
}

/** Starts the LISTEN/NOTIFY forwarder for one payload kind (b.peer); returns its port and the table its rows go into. */
export async function startForwarder(b: Bench, clusterUrl: string, payload: NotifyPayload): Promise<{ port: number; table: string }> {
  const envelope = payload === 'envelope';
  const table = envelope ? 'bench_notify_env' : 'bench_notify';
  const env = { BENCH_DATABASE_URL: clusterUrl, NOTIFY_CHANNEL: envelope ? `${NOTIFY_CHANNEL}_env` : NOTIFY_CHANNEL, NOTIFY_TOPIC: ROOM_TOPIC, NOTIFY_ENVELOPE: envelope ? '1' : '0' };
  b.peer = new Child('notify-peer', 'bench/changes/notify-peer.ts', { env, plain: true });
  const port = Number((await b.peer.ready).port);
  console.log(`LISTEN/NOTIFY forwarder (${payload}) up (pid ${b.peer.pid}, port ${port})`);
  return { port, table };
}

/** LISTEN/NOTIFY rows: the row's JSON (`bare`) and/or Performer's own frame around Performer's data object (`envelope`). */
export async function notifyRows({ b, results, clusterUrl }: Run): Promise<void> {
  await createNotifyTables(b.admin);
  for (const payload of opts.notify ? opts.notifyPayloads : []) {
    const { port, table } = await startForwarder(b, clusterUrl, payload);
    for (const n of opts.ns) {
      const set = await connectSubs(b, null, n, false, port, table);
      await warmUp(b, set);
      for (const shape of opts.shapes) {
        const { resubscribe, row } = await bestLiveRow(b, set, shape, false);
        results.rows.push(row);
        if (resubscribe) await connectSubs(b, null, n, false, port, table);
      }
      if (opts.paced) results.rows.push(await pacedRow(b, set, opts.pacedRate));
      closeSubs();
    }
    await b.peer!.stop();
    b.peer = null;
  }
}

/** pg_recvlogical as the live consumer, on the same kind of rows (no Performer, no other slot yet). */
export async function recvRows({ b, results }: Run): Promise<void> {
  await b.admin.query(`
    CREATE TABLE public.${RECV_LIVE_TABLE} (id bigint PRIMARY KEY, owner uuid, body text, at timestamptz DEFAULT now());
    CREATE PUBLICATION ${RECV_LIVE_PUBLICATION} FOR TABLE public.${RECV_LIVE_TABLE};
  `);
  results.recvStartupMs = await b.recv.startupMs(RECV_LIVE_PUBLICATION);
  console.log(`pg_recvlogical start-up with nothing to decode: ${f(results.recvStartupMs)} ms (median of 3)`);
  for (const shape of opts.shapes) {
    let row = await recvLiveRow(b, shape, RECV_LIVE_TABLE, RECV_LIVE_PUBLICATION);
    // Now and then its output misses the last transaction (seen about once in five 1 row/txn runs): run it again.
    if (!row.complete) {
      console.log('  (pg_recvlogical live run incomplete: running it again)');
      row = await recvLiveRow(b, shape, RECV_LIVE_TABLE, RECV_LIVE_PUBLICATION);
    }
    results.recvLive.push(row);
  }
}

/**
 * The full run's Performer rows: every configuration and shape (with --compare every build, `reps` times, the order
 * flipping every repetition), then on this tree's Performer strace, catch-up, steady-rate and profiled rows.
 */
export async function standardRows({ b, results, systems, benchOf, dir }: Run): Promise<void> {
  const main = systems[0]!;
  const rlsModes = opts.rls ? [false, true] : [false];
  const singleRates = new Map<string, number>();
  const profileReserveMs = opts.profile ? 25_000 : 0;
  const turns = (rep: number) => (rep % 2 === 0 ? systems : [...systems].reverse());
  for (const rls of rlsModes) {
    for (const n of opts.ns) {
      for (let rep = 0; rep < reps; rep++) {
        for (const system of turns(rep)) {
          const what = `${system.label} ${rls ? 'RLS' : 'no RLS'} N=${n}${reps > 1 ? ` (rep ${rep + 1})` : ''}`;
          if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
            results.skipped.push(`${what} (time budget)`);
            continue;
          }
          const started = Date.now();
          const sb = benchOf.get(system)!;
          let set = await connectSubs(sb, system, n, rls);
          console.log(`${what}: ${n} subscriber(s) subscribed in ${Date.now() - started} ms`);
          await warmUp(sb, set);
          for (const shape of opts.shapes) {
            if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
              results.skipped.push(`${what} ${shapeText(shape)} (time budget)`);
              continue;
            }
            // The pg_recvlogical ceiling once per configuration, on this tree's first repetition.
            const { row, resubscribe } = await bestLiveRow(sb, set, shape, opts.recv && system === main && rep === 0);
            if (reps > 1) row.repetition = rep + 1;
            results.rows.push(row);
            if (shape === 'single' && system === main && rep === 0) singleRates.set(`${rls}|${n}`, row.changesPerSec);
            if (resubscribe && shape === 'batch') {
              set = await connectSubs(sb, system, n, rls);
              await warmUp(sb, set);
            }
          }
          closeSubs();
          await sleep(200);
        }
      }
    }
  }

  // ---- syscalls per frame / transaction (opt-in: strace slows the process it traces) ----
  if (opts.strace && timeLeftMs() <= 30_000 + profileReserveMs) results.skipped.push('strace rows (time budget)');
  if (opts.strace && timeLeftMs() > 30_000 + profileReserveMs) {
    const set = await connectSubs(b, main, 1, false);
    await warmUp(b, set);
    for (const shape of opts.shapes) {
      const r = await straceRow(b, set, shape, dir);
      if (r) results.syscalls.push(r);
      else results.skipped.push(`strace ${shapeText(shape)} (strace not usable here)`);
    }
    closeSubs();
  }

  // Catch-up (no RLS) and steady-rate latency rows.
  for (const rls of rlsModes) {
    for (const n of opts.ns) {
      const doCatchup = opts.catchup && !rls && opts.catchupNs.includes(n);
      if (!doCatchup && !opts.paced) continue;
      if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
        results.skipped.push(`catch-up / steady-rate rows for ${rls ? 'RLS' : 'no RLS'} N=${n} (time budget)`);
        continue;
      }
      let set = await connectSubs(b, main, n, rls);
      await warmUp(b, set);
      for (const shape of doCatchup ? opts.shapes : []) {
        if (timeLeftMs() < rowWorstMs() + profileReserveMs) {
          results.skipped.push(`catch-up N=${n} ${shapeText(shape)} (time budget)`);
          continue;
        }
        // Best of CATCHUP_RUNS against the best pg_recvlogical run of them all: the ceiling is a fastest run too.
        const runs: Row[] = [];
        for (let i = 0; i < CATCHUP_RUNS && timeLeftMs() > rowWorstMs() + profileReserveMs; i++) {
          const row = await catchupRow(b, set, shape);
          runs.push(row);
          if (!row.drained) {
            set = await connectSubs(b, main, n, rls);
            await warmUp(b, set);
            break;
          }
        }
        if (runs.length === 0) continue;
        const best = runs.reduce((x, y) => (y.changesPerSec > x.changesPerSec ? y : x));
        const ceiling = runs.map((r) => r.recv).reduce((x, y) => ((y?.netChangesPerSec ?? 0) > (x?.netChangesPerSec ?? 0) ? y : x));
        results.rows.push({ ...best, recv: ceiling, catchupRuns: runs.map((r) => r.changesPerSec) });
      }
      if (opts.paced && timeLeftMs() > opts.pacedMs + opts.drainCapMs + 5000 + profileReserveMs) {
        const measured = singleRates.get(`${rls}|${n}`) ?? NaN;
        const rate = Math.max(20, Math.min(opts.pacedRate, Math.floor(0.5 * (Number.isFinite(measured) ? measured : opts.pacedRate))));
        results.rows.push(await pacedRow(b, set, rate));
      } else if (opts.paced) results.skipped.push(`steady-rate row ${rls ? 'RLS' : 'no RLS'} N=${n} (time budget)`);
      closeSubs();
      await sleep(200);
    }
  }

  // ---- profiles: no-RLS rows again, with V8's sampling profiler in the Performer child ----
  const target = results.rows.filter((r) => r.kind === 'live' && r.system === main.label && !r.rls);
  const missed = target.some((r) => r.recv && r.changesPerSec < 0.5 * r.recv.netChangesPerSec);
  if (opts.profile || (missed && !args.flag('no-profile'))) {
    for (const spec of opts.profileRows) {
      const [nText, shapeName] = spec.split(':');
      const shape: Shape = shapeName === 'single' ? 'single' : 'batch';
      if (timeLeftMs() < Math.min(rowWorstMs(), 20_000)) {
        results.skipped.push(`profile N=${nText} ${shapeText(shape)} (time budget)`);
        continue;
      }
      await profiledRow({ b, results, systems, benchOf, dir, clusterUrl: '' }, Number(nText), shape, 25);
    }
  } else {
    results.skipped.push('profiles (target met; pass --profile)');
  }
}

/** A no-RLS live row on this tree's Performer with V8's sampling profiler on during it. */
export async function profiledRow({ b, results, systems, dir }: Run, n: number, shape: Shape, top: number): Promise<void> {
  const main = systems[0]!;
  const set = await connectSubs(b, main, n, false);
  await warmUp(b, set);
  const file = path.join(dir, `performer-${n}-${shape}.cpuprofile`);
  const profiler = profileWindow(main.child, file, 250);
  const { row } = await liveRow(b, set, shape, false, profiler);
  closeSubs();
  const { summary: raw, cpuMs } = await profiler.done();
  const summary = withoutProfilerOverhead(raw);
  const label = `no RLS, N=${n}, ${shapeText(shape)}`;
  results.profiles.push({ label, summary, row, cpuMs });
  console.log(`\nprofile (${label}, profiler on):`);
  console.log(formatSummary(summary, top, cpuMs));
  if (process.env.BENCH_KEEP_PROFILES) writeFileSync(path.join(process.env.BENCH_KEEP_PROFILES, path.basename(file)), readFileSync(file));
  await sleep(200);
}
