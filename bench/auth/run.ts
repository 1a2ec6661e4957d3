import os from 'node:os';
import { verify } from '@node-rs/bcrypt';
import { createLogger } from '../../src/observability/logger.js';
import { hashPassword } from '../../src/baas/auth/passwords.js';
import { loadConfig } from '../../src/config/index.js';
import { signHs256 } from '../../src/auth/jwt.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { procCpuSeconds } from '../lib/cpu.js';
import { startBenchPostgres, type BenchPostgres } from '../lib/db.js';
import { readPgCpu } from '../lib/pg-cpu.js';
import { runBench } from '../lib/main.js';
import { f, ratio, runLine, table, writeSection } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';

/**
 * Auth bench: password sign-ins/s against the same bcrypt library verifying alone (the floor a sign-in cannot beat:
 * one bcrypt verification at cost 10 each), refreshes/s and getUser latency, all in one run on one machine.
 *
 *   npm run bench:auth -- [--seconds=10] [--concurrency=8] [--rounds=4] [--no-write]
 *
 * Performer runs in this process on an embedded Postgres (fsync off); clients are fetch() on loopback. Both the
 * bcrypt floor and the sign-ins use the libuv pool (4 threads) on the same cores, measured alternately (ABAB) and
 * the median of the paired ratios reported, so load from elsewhere on the machine hits both alike.
 */
const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const SECONDS = arg('seconds', 10);
const CONCURRENCY = arg('concurrency', 8);
const ROUNDS = arg('rounds', 4);
const PASSWORD = 'bench-password-1';

let pgServer: BenchPostgres | null = null;
let server: RunningServer | null = null;

/** CPU seconds of this process (all threads: bcrypt's pool, the server, the clients) and of the embedded Postgres. */
function cpuNow(): number {
  const pg = pgServer ? readPgCpu(pgServer.server.pid, new Set()).byRole : { walsender: 0, producer: 0, other: 0 };
  return procCpuSeconds(process.pid) + pg.walsender + pg.producer + pg.other;
}

/** Runs `op` from `CONCURRENCY` loops for SECONDS; completed ops/s, each op's latency (ms), CPU seconds per op. */
async function loop(op: (worker: number) => Promise<void>): Promise<{ perSec: number; latencies: number[]; cpuPerOp: number }> {
  const cpu0 = cpuNow();
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      while (performance.now() < end) {
        const s = performance.now();
        await op(worker);
        latencies.push(performance.now() - s);
      }
    }),
  );
  return { perSec: latencies.length / ((performance.now() - t0) / 1000), latencies: latencies.sort((a, b) => a - b), cpuPerOp: (cpuNow() - cpu0) / latencies.length };
}

async function main(): Promise<void> {
  const loadAtStart = os.loadavg()[0];
  pgServer = await startBenchPostgres('auth');
  const url = pgServer.server.url;
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', DATABASE_URL: url, LOG_LEVEL: 'silent', DB_ENC_KEY: 'performer-bench-encryption-key-not-a-secret',
    JWT_SECRET: 'bench-secret-with-at-least-32-characters-long!', API_JWT_SECRET: 'bench-management-secret-with-32-characters!!',
    TENANT_MAX_EVENTS_PER_SECOND: '1000000000', AUTH_RATE_LIMIT_TOKEN: '1000000000', AUTH_RATE_LIMIT_OTP: '1000000000', DB_POOL_SIZE: '10',
  });
  server = await startServer(config, { databaseUrl: url, log: createLogger('silent') });
  const base = `http://127.0.0.1:${server.port}/auth/v1`;
  const anon = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3600 }, config.jwtSecret);
  const post = async (path: string, body: unknown, token?: string) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { apikey: anon, 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { access_token: string; refresh_token: string };
  };
  const email = 'bench@example.com';
  await post('/signup', { email, password: PASSWORD });
  const hash = await hashPassword(PASSWORD);

  const floors: number[] = [];
  const signIns: number[] = [];
  const floorCpu: number[] = [];
  const signInCpu: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const floor = await loop(async () => {
      if (!(await verify(PASSWORD, hash))) throw new Error('verify failed');
    });
    floors.push(floor.perSec);
    floorCpu.push(floor.cpuPerOp);
    console.log(`bcrypt verify alone (cost 10): ${f(floor.perSec, 1)}/s, ${f(floor.cpuPerOp * 1000, 1)} ms CPU each`);
    const signIn = await loop(async () => {
      await post('/token?grant_type=password', { email, password: PASSWORD });
    });
    signIns.push(signIn.perSec);
    signInCpu.push(signIn.cpuPerOp);
    console.log(`password sign-ins: ${f(signIn.perSec, 1)}/s, ${f(signIn.cpuPerOp * 1000, 1)} ms CPU each (p50 ${f(percentile(signIn.latencies, 50), 1)} ms, p99 ${f(percentile(signIn.latencies, 99), 1)} ms)`);
  }
  // Each round pairs a floor with the sign-ins right after it: the median of the paired ratios is robust to load from
  // elsewhere drifting during the run.
  const ratios = floors.map((fl, i) => signIns[i] / fl);
  const floor = median(floors);
  const signIn = median(signIns);
  const pairedRatio = median(ratios);
  // CPU per operation does not depend on what else runs on the machine: its ratio is the throughput ratio of a
  // dedicated machine where both are CPU-bound (the bench's own fetch clients are counted against the sign-ins).
  const cpuRatio = median(floorCpu) / median(signInCpu);

  // Each loop refreshes its own session's chain (rotation: every refresh revokes one token and issues its child).
  const chains = await Promise.all(Array.from({ length: CONCURRENCY }, () => post('/token?grant_type=password', { email, password: PASSWORD })));
  const tokens = chains.map((c) => c.refresh_token);
  const refresh = await loop(async (worker) => {
    tokens[worker] = (await post('/token?grant_type=refresh_token', { refresh_token: tokens[worker] })).refresh_token;
  });
  console.log(`refreshes: ${f(refresh.perSec, 0)}/s (p50 ${f(percentile(refresh.latencies, 50), 1)} ms, p99 ${f(percentile(refresh.latencies, 99), 1)} ms)`);

  const access = chains[0].access_token;
  const getUser = await loop(async () => {
    const res = await fetch(`${base}/user`, { headers: { apikey: anon, authorization: `Bearer ${access}` } });
    if (res.status !== 200) throw new Error(`/user: ${res.status}`);
    await res.arrayBuffer();
  });
  console.log(`getUser: ${f(getUser.perSec, 0)}/s, p50 ${f(percentile(getUser.latencies, 50), 2)} ms, p99 ${f(percentile(getUser.latencies, 99), 2)} ms`);

  const text = [
    '## Auth',
    '',
    runLine(`npm run bench:auth -- --seconds=${SECONDS} --concurrency=${CONCURRENCY} --rounds=${ROUNDS}`),
    `Performer in the bench process on an embedded Postgres (fsync off), ${CONCURRENCY} concurrent fetch() loops on loopback, ${SECONDS} s per row;`,
    `bcrypt is @node-rs/bcrypt at cost 10 on the libuv pool (4 threads) in both rows; floor and sign-ins measured alternately ${ROUNDS} times (medians shown).`,
    `1-minute load average at the start: ${f(loadAtStart, 1)} (other work on the same 2 cores: absolute figures are low and noisy, the ratio is what the run compares).`,
    '',
    table(
      ['measure', 'result', 'against the floor'],
      [
        ['bcrypt verify alone (floor)', `${f(floor, 1)}/s`, '1.00x'],
        ['password sign-ins (POST /token?grant_type=password)', `${f(signIn, 1)}/s`, `${f(pairedRatio, 2)}x (median of the rounds' ratios; medians' ratio ${ratio(signIn, floor)})`],
        ['CPU per op: verify alone / sign-in (this process + Postgres)', `${f(median(floorCpu) * 1000, 1)} / ${f(median(signInCpu) * 1000, 1)} ms`, `${f(cpuRatio, 2)}x`],
        ['refreshes (POST /token?grant_type=refresh_token, rotation)', `${f(refresh.perSec, 0)}/s, ${f(refresh.cpuPerOp * 1000, 2)} ms CPU each`, ''],
        ['getUser (GET /user): p50 / p99', `${f(percentile(getUser.latencies, 50), 2)} / ${f(percentile(getUser.latencies, 99), 2)} ms at ${f(getUser.perSec, 0)}/s`, ''],
      ],
    ),
    '',
    `Target: sign-ins >= 0.9x the floor (a sign-in is one bcrypt verification plus a session, a refresh token, an audit row and`,
    'a signed token). Rounds: floor ' + floors.map((v) => f(v, 1)).join(' / ') + ', sign-ins ' + signIns.map((v) => f(v, 1)).join(' / ') + ', ratios ' + ratios.map((v) => f(v, 2)).join(' / ') + '.',
  ].join('\n');
  if (!process.argv.includes('--no-write')) writeSection('## Auth', text);
  console.log(`\n${text}`);
}

runBench('auth', main, {
  hardLimitMs: 10 * 60_000,
  cleanup: async () => {
    await server?.stop().catch(() => undefined);
    await pgServer?.stop();
  },
});
