/**
 * Three Performer processes, one Postgres (wal_level=logical), a private redis-server: presence converging across
 * nodes, Postgres Changes on every node with RLS per user, and the tenant's replication surviving its owner's
 * `kill -9` and `SIGSTOP` with every committed insert delivered exactly once, never two walsenders at a time.
 */
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changesChannel, ProcessCluster, token, until, USER_1, USER_2 } from '../support/cluster-processes.js';
import { sleep } from '../support/server.js';

const NAMES = ['node-a', 'node-b', 'node-c'] as const;
type Name = (typeof NAMES)[number];

let cluster: ProcessCluster;
let sql: pg.Client;

beforeAll(async () => {
  cluster = await ProcessCluster.start('cluster_state', NAMES);
  sql = new pg.Client({ connectionString: cluster.db.url });
  sql.on('error', () => undefined);
  await sql.connect();
  await sql.query(`
    CREATE TABLE public.todos (id int PRIMARY KEY, owner uuid NOT NULL);
    ALTER TABLE public.todos ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_todos ON public.todos FOR SELECT TO authenticated USING (owner = auth.uid());
    CREATE TABLE public.events (id int PRIMARY KEY);
    ALTER PUBLICATION supabase_realtime ADD TABLE public.todos, public.events;
  `);
  cluster.pollWalsenders();
  serviceKey = await token({ role: 'service_role' });
}, 120_000);

afterAll(async () => {
  await sql?.end().catch(() => undefined);
  await cluster?.stop();
});

const node = (name: Name) => cluster.node(name);
const client = (n: ReturnType<typeof node>, claims?: Record<string, unknown>) => cluster.client(n, claims);
const ownerSeenBy = (via: ReturnType<typeof node>) => cluster.ownerSeenBy(via);
/** One supabase-js client per node for the Redis restart test, as the service role. */
const perNode = new Map<Name, SupabaseClient>();
let serviceKey = '';
const nodeClientOf = (name: Name): SupabaseClient => {
  let c = perNode.get(name);
  if (!c) {
    c = cluster.clientWithKey(node(name), serviceKey);
    perNode.set(name, c);
  }
  return c;
};
const nodeClient = nodeClientOf;

describe('a cluster of three nodes', () => {
  const presence = new Map<Name, RealtimeChannel>();
  const keys = (ch: RealtimeChannel) => Object.keys(ch.presenceState()).sort();

  it('converges on one presence list on every node', async () => {
    for (const name of NAMES) {
      const c = await client(node(name));
      const ch = c.channel('lobby', { config: { presence: { key: `user-on-${name}` } } }).on('presence', { event: 'sync' }, () => undefined);
      ch.subscribe((status) => {
        if (status === 'SUBSCRIBED') void ch.track({ node: name });
      });
      presence.set(name, ch);
    }
    const all = NAMES.map((n) => `user-on-${n}`);
    for (const name of NAMES) await until(() => JSON.stringify(keys(presence.get(name)!)) === JSON.stringify(all), `${name} to see every member`);
  }, 60_000);

  it('delivers Postgres Changes on every node, each subscriber the rows its RLS lets it see', async () => {
    const one = changesChannel(await client(node('node-a'), { role: 'authenticated', sub: USER_1 }), 'todos-a', 'todos');
    const two = changesChannel(await client(node('node-b'), { role: 'authenticated', sub: USER_2 }), 'todos-b', 'todos');
    const oneAgain = changesChannel(await client(node('node-c'), { role: 'authenticated', sub: USER_1 }), 'todos-c', 'todos');
    await until(() => one.subscribed() === 1 && two.subscribed() === 1 && oneAgain.subscribed() === 1, 'three subscriptions');
    for (let id = 1; id <= 6; id++) await sql.query('INSERT INTO public.todos VALUES ($1, $2)', [id, id % 2 === 1 ? USER_1 : USER_2]);
    await until(() => one.ids.length === 3 && two.ids.length === 3 && oneAgain.ids.length === 3, 'every row to its users');
    await sleep(300);
    expect(one.ids).toEqual([1, 3, 5]);
    expect(oneAgain.ids).toEqual([1, 3, 5]);
    expect(two.ids).toEqual([2, 4, 6]);
  }, 60_000);

  it("survives its owner's kill -9 and SIGSTOP: every insert committed after subscribing arrives exactly once", async () => {
    const watchers = new Map<Name, ReturnType<typeof changesChannel>>();
    for (const name of NAMES) watchers.set(name, changesChannel(await client(node(name), { role: 'service_role' }), `events-${name}`, 'events'));
    await until(() => [...watchers.values()].every((w) => w.subscribed() === 1), 'subscriptions on every node');
    const owner = (await cluster.ownerReportedBy(node('node-a'))) as Name;
    expect(NAMES).toContain(owner);
    const survivors = NAMES.filter((n) => n !== owner);

    const committed: number[] = [];
    let next = 1;
    let writing = true;
    const deadline = Date.now() + 120_000;
    const writer = (async () => {
      while (writing && cluster.running && Date.now() < deadline) {
        // The test failed and the database is going away: stop writing.
        if (!(await sql.query('INSERT INTO public.events VALUES ($1)', [next]).then(() => true, () => false))) return;
        committed.push(next++);
        await sleep(15);
      }
    })();
    await until(() => committed.length >= 30, 'inserts before the kill');
    node(owner).proc.kill('SIGKILL');
    // The owner's presence member leaves the others' lists.
    for (const name of survivors) {
      const ch = presence.get(name);
      if (ch) await until(() => !keys(ch).includes(`user-on-${owner}`), `${owner}'s presence to leave ${name}`);
    }
    await until(async () => {
      const now = await ownerSeenBy(node(survivors[0]!));
      return now !== null && now !== owner;
    }, 'another node to take over', 15_000);
    const second = (await ownerSeenBy(node(survivors[0]!))) as Name;
    const metrics = await (await fetch(`http://127.0.0.1:${node(second).port}/metrics`)).text();
    expect(metrics).toMatch(/performer_cluster_ownership_changes_total\{tenant="realtime-dev",event="acquired"\} [1-9]/);
    const last = survivors.find((n) => n !== second)!;
    const mark = committed.length;
    await until(() => committed.length >= mark + 30, 'inserts after the takeover');

    // The new owner is paused past its lease: the last node takes over; what it gets stays exactly-once.
    node(second).proc.kill('SIGSTOP');
    await until(async () => (await ownerSeenBy(node(last))) === last, `${last} to take over from the paused owner`, 15_000);
    const mark2 = committed.length;
    await until(() => committed.length >= mark2 + 30, 'inserts after the second takeover');
    node(second).proc.kill('SIGCONT');
    // It is the preferred owner of the two again: ownership moves back to it, the last node stopping first.
    await until(async () => (await ownerSeenBy(node(last))) === second, `ownership to move back to ${second}`, 15_000);
    const mark3 = committed.length;
    await until(() => committed.length >= mark3 + 30, 'inserts after the move back');
    writing = false;
    await writer;
    const lastWatcher = watchers.get(last)!;
    const dump = async () => {
      if (!process.env.CLUSTER_TEST_LOGS) return;
      const { writeFileSync } = await import('node:fs');
      writeFileSync('/tmp/cst-data.json', JSON.stringify({ owner, second, last, mark, mark2, watchers: Object.fromEntries([...watchers].map(([n, w]) => [n, { ids: w.ids, subscribed: w.subscribed() }])), committed }));
    };
    await until(() => lastWatcher.ids.length >= committed.length, `${last} to receive every insert`, 30_000).catch(async (err: unknown) => {
      await dump();
      throw err;
    });
    await sleep(1000);
    await dump();
    expect(lastWatcher.ids).toEqual(committed);
    // The paused node's client may have given up on its socket and rejoined: it got nothing twice before that.
    const paused = watchers.get(second)!;
    if (paused.subscribed() === 1) expect(paused.ids).toEqual(committed.slice(0, paused.ids.length));
    expect(cluster.maxWalsenders.get('performer_postgres_changes')).toBe(1);
    for (const [app, n] of cluster.maxWalsenders) expect([app, n]).toEqual([app, 1]);
  }, 180_000);

  it('keeps presence and Postgres Changes through a Redis restart', async () => {
    const live = NAMES.filter((n) => cluster.alive(n));
    const [x, y] = live as [Name, Name];
    const watchers = [x, y].map((name) => changesChannel(nodeClient(name), `outage-${name}`, 'events'));
    await until(() => watchers.every((w) => w.subscribed() === 1), 'subscriptions before the outage');
    const lobby = (name: Name, key: string, c: SupabaseClient = nodeClientOf(name)) => {
      const ch = c.channel('lobby-2', { config: { presence: { key } } }).on('presence', { event: 'sync' }, () => undefined);
      ch.subscribe((status) => {
        if (status === 'SUBSCRIBED') void ch.track({ key });
      });
      return ch;
    };
    const onX = lobby(x, 'before-x');
    const onY = lobby(y, 'before-y');
    await until(() => keys(onX).length === 2 && keys(onY).length === 2, 'presence before the outage');

    const committed: number[] = [];
    const insert = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const id = 100_000 + committed.length;
        await sql.query('INSERT INTO public.events VALUES ($1)', [id]);
        committed.push(id);
      }
    };
    await insert(10);
    await cluster.redis.halt();
    await insert(10);
    // Tracked while Redis is away: its delta is lost, and a snapshot brings it over afterwards.
    const during = lobby(x, 'during-outage', await client(node(x), { role: 'service_role' }));
    await until(() => keys(during).includes('during-outage'), 'a local track during the outage');
    // Longer than a lease: the owner lets go of the tenant's streams.
    await sleep(2500);
    await insert(10);
    await cluster.redis.resume();
    await insert(10);
    for (const w of watchers) await until(() => w.ids.length >= committed.length, 'every insert after the outage', 30_000);
    await sleep(1000);
    for (const w of watchers) expect(w.ids).toEqual(committed);
    const all = ['before-x', 'before-y', 'during-outage'];
    for (const ch of [onX, onY]) await until(() => JSON.stringify(keys(ch)) === JSON.stringify(all), 'one presence list on both nodes after the outage', 30_000);
  }, 120_000);
});
