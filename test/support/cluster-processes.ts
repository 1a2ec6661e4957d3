/**
 * Three (or more) Performer processes sharing one Postgres and a private redis-server, as the cluster tests run
 * them: each node its own process (so a test can kill -9 or SIGSTOP it), supabase-js clients per node, the owner of
 * the default tenant as /api/cluster says, and the most walsenders of one application seen streaming at once.
 */
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import WebSocket from 'ws';
import { signHs256 } from '../../src/auth/jwt.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { startPerformerProcess } from './performer-process.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';
import { PrivateRedis } from './redis.js';
import { sleep, TEST_API_SECRET, TEST_SECRET } from './server.js';

export const USER_1 = '11111111-1111-4111-8111-111111111111';
export const USER_2 = '22222222-2222-4222-8222-222222222222';

export interface ClusterNode {
  name: string;
  port: number;
  proc: ChildProcess;
  dir: string;
}

export const until = async (cond: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
};

export async function token(claims: Record<string, unknown>, secret = TEST_SECRET): Promise<string> {
  return signHs256({ exp: Math.floor(Date.now() / 1000) + 3600, ...claims }, secret);
}

export class ProcessCluster {
  readonly nodes = new Map<string, ClusterNode>();
  private readonly clients: SupabaseClient[] = [];
  /** Most walsenders of one application streaming at once (a new owner's connection claiming its fence not counted). */
  readonly maxWalsenders = new Map<string, number>();
  private polling = false;
  private poller: Promise<void> = Promise.resolve();

  private constructor(
    readonly db: TestDatabase,
    readonly redis: PrivateRedis,
    /** The Redis key prefix of this cluster. */
    readonly prefix: string,
    private readonly env: Record<string, string>,
  ) {}

  /** A database, a private Redis and one process per name; `env` adds to (or overrides) each node's settings. */
  static async start(label: string, names: readonly string[], env: Record<string, string> = {}): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(await createTestDatabase(label), await PrivateRedis.start(), `${label}-test:`, env);
    for (const name of names) await cluster.startNode(name);
    return cluster;
  }

  get running(): boolean {
    return this.polling;
  }

  async startNode(name: string, port?: number): Promise<ClusterNode> {
    const dir = await mkdtemp(path.join(os.tmpdir(), `performer-${name}-`));
    await chmod(dir, 0o755);
    const p = port ?? (await findFreePort());
    const proc = await startPerformerProcess(p, this.db.url, dir, {
      NODE_NAME: name,
      REDIS_URL: this.redis.url,
      REDIS_KEY_PREFIX: this.prefix,
      API_JWT_SECRET: TEST_API_SECRET,
      CLUSTER_HEARTBEAT_MS: '200',
      CLUSTER_MEMBER_TTL_MS: '1500',
      CLUSTER_OWNERSHIP_TTL_MS: '1500',
      CLUSTER_PRESENCE_BATCH_MS: '20',
      CHANGES_GRACE_MS: '60000',
      LOG_LEVEL: process.env.CLUSTER_TEST_LOGS ?? 'warn',
      ...this.env,
    });
    if (process.env.CLUSTER_TEST_LOGS) {
      const { createWriteStream } = await import('node:fs');
      const out = createWriteStream(`/tmp/cluster-${name}-${p}.log`);
      proc.stdout?.pipe(out);
      proc.stderr?.pipe(out);
    }
    const node = { name, port: p, proc, dir };
    this.nodes.set(name, node);
    return node;
  }

  node(name: string): ClusterNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  alive(name: string): boolean {
    const { proc } = this.node(name);
    return proc.exitCode === null && proc.signalCode === null;
  }

  async client(node: ClusterNode, claims: Record<string, unknown> = { role: 'authenticated', sub: USER_1 }): Promise<SupabaseClient> {
    return this.clientWithKey(node, await token(claims));
  }

  clientWithKey(node: ClusterNode, key: string): SupabaseClient {
    const c = createClient(`http://127.0.0.1:${node.port}`, key, {
      realtime: { transport: WebSocket as never, heartbeatIntervalMs: 1000 } as never,
      auth: { persistSession: false },
    });
    this.clients.push(c);
    return c;
  }

  /** The node that owns the default tenant's replication, as /api/cluster on `via` says. */
  async ownerSeenBy(via: ClusterNode): Promise<string | null> {
    const res = await fetch(`http://127.0.0.1:${via.port}/api/cluster`, { headers: { authorization: `Bearer ${await token({ role: 'admin' }, TEST_API_SECRET)}` } });
    const body = (await res.json()) as { nodes: { name: string; tenants: string[] }[] };
    return body.nodes.find((n) => n.tenants.includes('realtime-dev'))?.name ?? null;
  }

  /**
   * The owner as `via` reports it, waited for: a member's tenants are those of its last heartbeat, so for a moment
   * after an ownership is taken (or moved when a node joins) no member may report it yet.
   */
  async ownerReportedBy(via: ClusterNode, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const owner = await this.ownerSeenBy(via);
      if (owner !== null) return owner;
      if (Date.now() > deadline) throw new Error(`no owner of realtime-dev reported by ${via.name} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Polls pg_stat_replication until stop(). */
  pollWalsenders(): void {
    this.polling = true;
    this.poller = this.pollLoop();
  }

  private async pollLoop(): Promise<void> {
    const probe = new pg.Client({ connectionString: this.db.url });
    probe.on('error', () => undefined);
    await probe.connect();
    try {
      while (this.polling) {
        const { rows } = await probe.query<{ app: string; n: number }>(
          `SELECT r.application_name AS app, count(*)::int AS n FROM pg_stat_replication r JOIN pg_stat_activity a USING (pid)
            WHERE a.datname = current_database() AND r.state IN ('catchup', 'streaming') GROUP BY 1`,
        );
        for (const { app, n } of rows) this.maxWalsenders.set(app, Math.max(this.maxWalsenders.get(app) ?? 0, n));
        await sleep(20);
      }
    } finally {
      await probe.end().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.polling = false;
    await this.poller.catch(() => undefined);
    for (const c of this.clients) c.realtime.disconnect();
    for (const node of this.nodes.values()) {
      if (node.proc.signalCode === null && node.proc.exitCode === null) {
        node.proc.kill('SIGCONT');
        node.proc.kill('SIGKILL');
      }
      await rm(node.dir, { recursive: true, force: true });
    }
    await this.redis.stop();
    await this.db.drop();
  }
}

/**
 * A postgres_changes channel counting the ids it receives and its `Subscribed to PostgreSQL`; `onSubscribed` runs
 * when that arrives (a test marks what was committed by then). `joined` is the channel's join reply, which comes
 * before the subscription is confirmed.
 */
export function changesChannel(
  c: SupabaseClient,
  topic: string,
  table: string,
  onSubscribed: () => void = () => undefined,
): { ids: number[]; subscribed: () => number; joined: () => boolean; channel: RealtimeChannel } {
  const ids: number[] = [];
  let subscribed = 0;
  let joined = false;
  const channel = c
    .channel(topic)
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table }, (p) => ids.push((p.new as { id: number }).id))
    .on('system', {}, (m: { extension?: string; status: string }) => {
      if (m.extension === 'postgres_changes' && m.status === 'ok') {
        subscribed++;
        onSubscribed();
      }
    });
  channel.subscribe((status) => {
    if (status === 'SUBSCRIBED') joined = true;
  });
  return { ids, subscribed: () => subscribed, joined: () => joined, channel };
}
