import { randomUUID } from 'node:crypto';
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../support/raw-client.js';
import { sleep, startTestServer, type TestServer } from '../support/server.js';
import { subscribed, until } from '../support/channels.js';

let t: TestServer;
let db: pg.Client;
const alice = randomUUID();
const bob = randomUUID();

beforeAll(async () => {
  t = await startTestServer({ TENANT_MAX_JOINS_PER_SECOND: '100000' });
  db = new pg.Client({ connectionString: t.db.url });
  await db.connect();
  await db.query(`
    CREATE POLICY "authenticated read room:1" ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'room:1' AND extension IN ('broadcast', 'presence'));
    CREATE POLICY "authenticated write room:1" ON realtime.messages FOR INSERT TO authenticated
      WITH CHECK (realtime.topic() = 'room:1' AND extension IN ('broadcast', 'presence'));
    CREATE POLICY "read own user topic" ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'user:' || auth.uid()::text);
    CREATE POLICY "anyone authenticated reads readonly" ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'readonly');
    CREATE POLICY "only alice writes readonly" ON realtime.messages FOR INSERT TO authenticated
      WITH CHECK (realtime.topic() = 'readonly' AND auth.uid() = '${alice}'::uuid);
    CREATE POLICY "broken" ON realtime.messages FOR SELECT TO authenticated
      USING (CASE WHEN realtime.topic() = 'broken' THEN (1 / (char_length(realtime.topic()) - 6)) = 1 ELSE false END);
    CREATE POLICY "storm read" ON realtime.messages FOR SELECT TO authenticated USING (realtime.topic() LIKE 'storm:%');
    CREATE POLICY "replay read" ON realtime.messages FOR SELECT TO authenticated USING (realtime.topic() LIKE 'replay%');
  `);
});
afterAll(async () => {
  await db?.end();
  await t?.stop();
});

const exp = () => Math.floor(Date.now() / 1000) + 3600;
const userToken = (sub: string) => t.sign({ role: 'authenticated', sub, exp: exp() });

async function clientAs(sub: string | null, vsn: '1.0.0' | '2.0.0' = '2.0.0'): Promise<SupabaseClient> {
  const c = t.client({ vsn });
  if (sub) await c.realtime.setAuth(await userToken(sub));
  return c;
}

function collect(channel: RealtimeChannel, event = '*'): { event: string; payload: unknown; meta?: { id?: string; replayed?: boolean } }[] {
  const got: { event: string; payload: unknown; meta?: { id?: string; replayed?: boolean } }[] = [];
  channel.on('broadcast', { event }, (m) => got.push(m as never));
  return got;
}

describe('private channels authorized by RLS on realtime.messages', () => {
  it('admits a role its policy allows and refuses one without read', async () => {
    const member = (await clientAs(alice)).channel('room:1', { config: { private: true } });
    expect(await subscribed(member)).toBe('SUBSCRIBED');
    const anon = (await clientAs(null)).channel('room:1', { config: { private: true } });
    expect(await subscribed(anon)).toBe('CHANNEL_ERROR: Unauthorized: You do not have permissions to read from this Channel topic: room:1');
  });

  it('honours auth.uid() policies: each user reads only their own topic', async () => {
    const own = (await clientAs(alice)).channel(`user:${alice}`, { config: { private: true } });
    expect(await subscribed(own)).toBe('SUBSCRIBED');
    const other = (await clientAs(bob)).channel(`user:${alice}`, { config: { private: true } });
    expect(await subscribed(other)).toMatch(/^CHANNEL_ERROR: Unauthorized/);
  });

  it('treats a policy that raises as unauthorized', async () => {
    const c = (await clientAs(alice)).channel('broken', { config: { private: true } });
    expect(await subscribed(c)).toBe('CHANNEL_ERROR: Unauthorized: You do not have permissions to read from this Channel topic: broken');
  });

  it('drops sends of a read-only member while it still receives from a writer', async () => {
    const writer = (await clientAs(alice)).channel('readonly', { config: { private: true } });
    const reader = (await clientAs(bob)).channel('readonly', { config: { private: true, broadcast: { ack: true } } });
    const gotWriter = collect(writer);
    const gotReader = collect(reader);
    expect(await subscribed(writer)).toBe('SUBSCRIBED');
    expect(await subscribed(reader)).toBe('SUBSCRIBED');
    // No write permission: no ack either, so the client times out, as against upstream.
    expect(await reader.send({ type: 'broadcast', event: 'e', payload: { from: 'bob' } }, { timeout: 1500 } as never)).toBe('timed out');
    await writer.send({ type: 'broadcast', event: 'e', payload: { from: 'alice' } });
    await until(() => gotReader.length === 1);
    expect(gotReader[0].payload).toEqual({ from: 'alice' });
    await sleep(200);
    expect(gotWriter).toEqual([]);
  });

  it('runs a storm of 500 private joins without errors', async () => {
    const token = await userToken(alice);
    const sockets = await Promise.all(
      Array.from({ length: 10 }, () => RawClient.connect(`ws://127.0.0.1:${t.port}/socket/websocket?apikey=${token}&vsn=2.0.0`)),
    );
    const replies: Promise<unknown[]>[] = [];
    sockets.forEach((s, i) => {
      for (let j = 0; j < 50; j++) {
        const ref = `${i}-${j}`;
        s.send([ref, ref, `realtime:storm:${i}:${j}`, 'phx_join', { config: { private: true } }]);
        replies.push(s.reply(ref, 30_000));
      }
    });
    const all = await Promise.all(replies);
    expect(all.filter((r) => (r[4] as { status: string }).status !== 'ok').map((r) => r[4])).toEqual([]);
    expect(all).toHaveLength(500);
    for (const s of sockets) s.close();
  }, 60_000);
});
