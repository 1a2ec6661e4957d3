/**
 * Three Performer processes, one Postgres, one Redis of the test's own: unmodified supabase-js clients spread across
 * the nodes hear each other (issue 15).
 */
import { createClient, type RealtimeChannel, type SupabaseClient } from '@supabase/supabase-js';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../src/auth/jwt.js';
import { subscribed, until } from '../support/channels.js';
import { killHard, startPerformerProcess } from '../support/performer-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { freePort, PrivateRedis } from '../support/redis.js';
import { TEST_API_SECRET, TEST_SECRET } from '../support/server.js';

interface Node {
  name: string;
  port: number;
  proc: ChildProcess;
}

type Vsn = '1.0.0' | '2.0.0';
interface Got {
  event: string;
  payload: unknown;
}

describe('a cluster of three processes', () => {
  let db: TestDatabase;
  let redis: PrivateRedis;
  let dataDir: string;
  let anonKey: string;
  const nodes: Node[] = [];
  const clients: SupabaseClient[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('cluster_nodes');
    redis = await PrivateRedis.start();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'performer-cluster-'));
    anonKey = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3600 }, TEST_SECRET);
    // One after the other: the first creates the control plane and the default tenant the others find.
    for (const name of ['node-1', 'node-2', 'node-3']) {
      const port = await freePort();
      const proc = await startPerformerProcess(port, db.url, path.join(dataDir, name), {
        NODE_NAME: name,
        NODE_REGION: 'eu-west-2',
        REDIS_URL: redis.url,
        API_JWT_SECRET: TEST_API_SECRET,
        CLUSTER_HEARTBEAT_MS: '200',
        CLUSTER_MEMBER_TTL_MS: '1500',
        CONNECT_ERROR_BACKOFF_MS: '50',
        CHANNEL_ERROR_BACKOFF_MS: '50',
      });
      nodes.push({ name, port, proc });
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.removeAllChannels().catch(() => undefined)));
    for (const c of clients) c.realtime.disconnect();
    for (const n of nodes) await killHard(n.proc);
    await redis?.stop();
    await db?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const client = (node: Node, vsn: Vsn): SupabaseClient => {
    const c = createClient(`http://127.0.0.1:${node.port}`, anonKey, {
      realtime: { transport: WebSocket as never, vsn, heartbeatIntervalMs: 25_000 } as never,
      auth: { persistSession: false, autoRefreshToken: false },
    });
    clients.push(c);
    return c;
  };

  const collect = (channel: RealtimeChannel, event = '*'): Got[] => {
    const got: Got[] = [];
    channel.on('broadcast', { event }, (m: { event: string; payload: unknown }) => got.push({ event: m.event, payload: m.payload }));
    return got;
  };

  const cluster = async (node: Node): Promise<{ status: number; names: string[]; body: unknown }> => {
    const token = await signHs256({ exp: Math.floor(Date.now() / 1000) + 600 }, TEST_API_SECRET);
    const res = await fetch(`http://127.0.0.1:${node.port}/api/cluster`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { nodes: { name: string }[] };
    return { status: res.status, names: body.nodes.map((n) => n.name).sort(), body };
  };

  it('has every node list the three members through /api/cluster', async () => {
    for (const node of nodes) {
      await until(async () => (await cluster(node)).names.length === 3, 10_000, `${node.name} to see the others`);
      expect((await cluster(node)).names).toEqual(['node-1', 'node-2', 'node-3']);
    }
    const refused = await fetch(`http://127.0.0.1:${nodes[0]!.port}/api/cluster`, { headers: { authorization: `Bearer ${anonKey}` } });
    expect(refused.status).toBe(403);
  });

  it('carries broadcasts between nodes to V1 and V2 clients, once each, with self and ack', async () => {
    const sender = client(nodes[0]!, '2.0.0').channel('room-a', { config: { broadcast: { self: true, ack: true } } });
    const v1 = client(nodes[1]!, '1.0.0').channel('room-a');
    const v2 = client(nodes[2]!, '2.0.0').channel('room-a');
    const got = [sender, v1, v2].map((c) => collect(c));
    for (const c of [sender, v1, v2]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    expect(await sender.send({ type: 'broadcast', event: 'msg', payload: { n: 1, text: 'ünï' } })).toBe('ok');
    expect(await sender.send({ type: 'broadcast', event: 'end', payload: {} })).toBe('ok');
    await until(() => got.every((g) => g.some((m) => m.event === 'end')), 10_000, 'every client to get the end marker');
    for (const g of got) expect(g).toEqual([{ event: 'msg', payload: { n: 1, text: 'ünï' } }, { event: 'end', payload: {} }]);

    // From a V1 client on another node, back to all of them.
    await v1.send({ type: 'broadcast', event: 'back', payload: { from: 'v1' } });
    await until(() => got[0]!.length === 3 && got[2]!.length === 3, 10_000, 'the V1 message on the other nodes');
    expect(got[0]!.at(-1)).toEqual({ event: 'back', payload: { from: 'v1' } });
    expect(got[2]!.at(-1)).toEqual({ event: 'back', payload: { from: 'v1' } });
  });

  it('leaves out the sender of a self: false broadcast on every node, and no one else', async () => {
    const sender = client(nodes[0]!, '2.0.0').channel('room-b');
    const sameNode = client(nodes[0]!, '1.0.0').channel('room-b');
    const otherNode = client(nodes[1]!, '2.0.0').channel('room-b');
    const got = [sender, sameNode, otherNode].map((c) => collect(c));
    for (const c of [sender, sameNode, otherNode]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    await sender.send({ type: 'broadcast', event: 'msg', payload: { n: 1 } });
    const marker = client(nodes[2]!, '2.0.0').channel('room-b');
    expect(await subscribed(marker)).toBe('SUBSCRIBED');
    await marker.send({ type: 'broadcast', event: 'end', payload: {} });
    await until(() => got.every((g) => g.some((m) => m.event === 'end')), 10_000, 'the end marker');
    expect(got.map((g) => g.map((m) => m.event))).toEqual([['end'], ['msg', 'end'], ['msg', 'end']]);
  });

  it('carries a binary payload across nodes byte for byte to V2 clients, and never to V1', async () => {
    const sender = client(nodes[0]!, '2.0.0').channel('room-bin');
    const v2 = client(nodes[1]!, '2.0.0').channel('room-bin');
    const v1 = client(nodes[2]!, '1.0.0').channel('room-bin');
    const got2 = collect(v2);
    const got1 = collect(v1);
    for (const c of [sender, v2, v1]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 128, 0xc3, 0x28]);
    await sender.send({ type: 'broadcast', event: 'blob', payload: bytes.buffer });
    await sender.send({ type: 'broadcast', event: 'after', payload: { marker: true } });
    await until(() => got2.length === 2 && got1.length === 1, 10_000, 'the binary and the marker');
    expect(new Uint8Array(got2[0]!.payload as ArrayBuffer)).toEqual(bytes);
    expect(got1.map((m) => m.event)).toEqual(['after']);
  });

  it('drops a node killed with SIGKILL from the membership once its heartbeat expires', async () => {
    const victim = nodes[2]!;
    await killHard(victim.proc);
    for (const survivor of nodes.slice(0, 2)) {
      await until(async () => (await cluster(survivor)).names.length === 2, 10_000, `${survivor.name} to see the dead node leave`);
      expect((await cluster(survivor)).names).toEqual(['node-1', 'node-2']);
    }
    // The survivors still carry traffic between them.
    const a = client(nodes[0]!, '2.0.0').channel('room-after');
    const b = client(nodes[1]!, '2.0.0').channel('room-after');
    const got = collect(b);
    for (const c of [a, b]) expect(await subscribed(c)).toBe('SUBSCRIBED');
    await a.send({ type: 'broadcast', event: 'still', payload: {} });
    await until(() => got.length === 1, 10_000, 'a message between the survivors');
  });
});
