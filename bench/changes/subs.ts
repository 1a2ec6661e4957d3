import { randomBytes, randomUUID } from 'node:crypto';
import { signHs256 } from '../../src/auth/jwt.js';
import { connectMany } from '../lib/raw-ws.js';
import { PHASE_WARM } from '../lib/stamp.js';
import { nowUs, sleep, waitForCount } from '../lib/time.js';
import { JIT_WARM_ROWS, K, OWNERS, ROOM_TOPIC } from './options.js';
import type { Bench, SubSet, System } from './rows.js';
import { Subscriber } from './subscriber.js';

/**
 * The subscribers of the Postgres Changes bench: the JWT secret every Performer of the run is given, the tokens
 * signed with it, the open subscribers (one set at a time) and their warm-up.
 */

export const jwtSecret = randomBytes(32).toString('hex');
let anonToken = '';
let subs: Subscriber[] = [];

export async function anonKey(): Promise<string> {
  anonToken ||= await signHs256({ iss: 'supabase-demo', role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, jwtSecret);
  return anonToken;
}

async function userToken(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  // A session id per subscriber, as Supabase Auth tokens carry: every subscriber has its own claims.
  return signHs256({ role: 'authenticated', sub, session_id: randomUUID(), aud: 'authenticated', iat: now, exp: now + 3 * 3600 }, jwtSecret);
}

export function closeSubs(): void {
  subs.forEach((s) => s.close());
  subs = [];
}

export function heartbeat(): void {
  subs.forEach((s) => s.heartbeat());
}

/**
 * Subscribers of `system` (null: the LISTEN/NOTIFY forwarder on `port`, rows into `notifyTable`). Without RLS every
 * subscriber uses the anon key (identical claims, as supabase-js clients that are not signed in). With RLS
 * subscriber i is user OWNERS[i % K] for i < N/2 (N = 1: OWNERS[0]) and a user who owns no row for the others, each
 * with its own token.
 */
export async function connectSubs(b: Bench, system: System | null, n: number, rls: boolean, port = system?.port ?? 0, notifyTable = 'bench_notify'): Promise<SubSet> {
  const target = system ? 'performer' : 'notify';
  const table = target === 'notify' ? notifyTable : rls ? 'bench_rls' : 'bench';
  const apikey = await anonKey();
  const perOwner = new Array<number>(K).fill(0);
  const specs: { owner: string | null; token: string }[] = [];
  for (let i = 0; i < n; i++) {
    if (!rls) {
      specs.push({ owner: null, token: apikey });
      continue;
    }
    const ownerIndex = n === 1 ? 0 : i < n / 2 ? i % K : -1;
    const sub = ownerIndex >= 0 ? OWNERS[ownerIndex]! : randomUUID();
    if (ownerIndex >= 0) perOwner[ownerIndex]!++;
    specs.push({ owner: sub, token: await userToken(sub) });
  }
  const opened: Subscriber[] = [];
  const proto = target === 'performer' ? 'performer' : 'simple';
  await connectMany(n, 20, async (i) => {
    const spec = specs[i]!;
    opened.push(await Subscriber.open({ proto, port, topic: ROOM_TOPIC, table, apikey, token: spec.token, owner: spec.owner, tally: b.tally, leaks: b.leaks }));
  });
  subs = opened;
  const expectedFor = rls ? (id: number) => perOwner[id % K]! : () => n;
  return { target, system, n, rls, table, expectedFor, perRow: rls ? perOwner.reduce((a, c) => a + c, 0) / K : n, subs: opened };
}

/** Sets whose first warm-up also warmed the JIT (per Performer process: cleared when one restarts). */
export const jitWarm = new Set<string>();

/**
 * One transaction of K rows (every owner), phase w: the path is live end to end before measuring. The first
 * warm-up of a set (with or without RLS) also commits JIT_WARM_ROWS rows in transactions of 100, unmeasured, so the
 * measured rows see optimised code and database sessions that have run the visibility check, as a long-running
 * server would, not the compiler at work (the first RLS row of a run used to be its slowest by far, in every build).
 */
export async function warmUp(b: Bench, set: SubSet): Promise<void> {
  b.tally.reset(1);
  const jitKey = `${set.system?.label ?? 'notify'}:${set.n}:${set.table}`;
  const rows = !jitWarm.has(jitKey) ? JIT_WARM_ROWS : K;
  jitWarm.add(jitKey);
  const first = b.producers.take(rows);
  for (let at = first; at < first + rows; at += 100) {
    await b.producers.insertMany(b.producers.clients[0]!, set.table, at, Math.min(100, first + rows - at), b.producers.body(PHASE_WARM, nowUs(), 0));
  }
  let expected = 0;
  for (let id = first; id < first + rows; id++) expected += set.expectedFor(id);
  const got = await waitForCount(() => b.tally.delivered, expected, { capMs: 15_000, stallMs: 15_000, pollMs: 5 });
  if (got < expected) throw new Error(`warm-up: ${got} of ${expected} deliveries after 15 s (${set.target}, N=${set.n})`);
  await sleep(50);
}
