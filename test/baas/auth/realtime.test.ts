/**
 * The realtime glue: a signed-in supabase-js client's socket uses the session's token; a refresh hands the new token
 * to the joined channels (supabase-js setAuth -> access_token), where the private channel's policies are asked
 * again; expired tokens are refused by realtime as by REST.
 */
import type { RealtimeChannel } from '@supabase/supabase-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribed, until } from '../../support/channels.js';
import { claimsOf, email, startAuthWorld, type AuthWorld } from './support.js';

let w: AuthWorld;
beforeAll(async () => {
  w = await startAuthWorld({ TENANT_MAX_JOINS_PER_SECOND: '100000' });
  await w.http('/health');
  await w.anon.from('nothing').select();
  const admin = new pg.Client({ connectionString: w.t.db.url });
  await admin.connect();
  await admin.query(`
    CREATE POLICY "own topic" ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'user:' || auth.uid()::text);
    CREATE POLICY "own topic write" ON realtime.messages FOR INSERT TO authenticated
      WITH CHECK (realtime.topic() = 'user:' || auth.uid()::text);
    CREATE POLICY "vip room" ON realtime.messages FOR SELECT TO authenticated
      USING (realtime.topic() = 'vip' AND (auth.jwt() -> 'user_metadata' ->> 'vip') = 'yes');
  `);
  await admin.end();
}, 60_000);
afterAll(async () => w?.stop());

function received(channel: RealtimeChannel): unknown[] {
  const got: unknown[] = [];
  channel.on('broadcast', { event: 'ping' }, (m) => got.push(m.payload));
  return got;
}

describe('realtime with auth sessions', () => {
  it("a signed-in client's socket joins its private channel with the session token, and keeps it across a refresh", async () => {
    const c = w.client();
    const { data } = await c.auth.signUp({ email: email('rt'), password: 'secret123' });
    const channel = c.channel(`user:${data.user!.id}`, { config: { private: true, broadcast: { self: true, ack: true } } });
    const got = received(channel);
    expect(await subscribed(channel)).toBe('SUBSCRIBED');
    const refreshed = await c.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    // supabase-js handed the new token to realtime (TOKEN_REFRESHED -> setAuth -> access_token to the channels).
    await until(() => (c.realtime as unknown as { accessTokenValue: string | null }).accessTokenValue === refreshed.data.session!.access_token, 5000, 'the new token');
    expect(await channel.send({ type: 'broadcast', event: 'ping', payload: { n: 1 } })).toBe('ok');
    await until(() => got.length === 1, 5000, 'the broadcast');
    expect(channel.state).toBe('joined');
    await c.removeAllChannels();
  });

  it("the refreshed token's claims reach the channel: losing the claim a policy needs ends it", async () => {
    const c = w.client();
    await c.auth.signUp({ email: email('vip'), password: 'secret123', options: { data: { vip: 'yes' } } });
    const channel = c.channel('vip', { config: { private: true } });
    const statuses: string[] = [];
    expect(await subscribed(channel)).toBe('SUBSCRIBED');
    channel.on('system', {}, (m: { status: string }) => statuses.push(m.status));
    await c.auth.updateUser({ data: { vip: null } });
    const refreshed = await c.auth.refreshSession();
    expect((claimsOf(refreshed.data.session!.access_token).user_metadata as Record<string, unknown>).vip).toBeUndefined();
    await until(() => channel.state !== 'joined', 5000, 'the channel to end');
    await c.removeAllChannels();
  });

  it('an expired session token is refused by realtime', async () => {
    const c = w.client();
    const { data } = await c.auth.signUp({ email: email('exp'), password: 'secret123' });
    const expired = await w.t.sign({ ...claimsOf(data.session!.access_token), exp: Math.floor(Date.now() / 1000) - 5 });
    const other = w.client();
    await other.realtime.setAuth(expired);
    const channel = other.channel(`user:${data.user!.id}`, { config: { private: true } });
    expect(await subscribed(channel)).toMatch(/^CHANNEL_ERROR: .*(expired|Token)/i);
    await other.removeAllChannels();
    await c.removeAllChannels();
  });
});
