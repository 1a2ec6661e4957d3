/**
 * Storage events on realtime: object created / updated / moved / removed are broadcast to the private topic
 * `storage:<bucket>` when (and only when) the change commits, and each subscriber gets an event only if a SELECT on
 * storage.objects with its role and claims returns that object (for a removed one: would have returned it). No
 * policy on realtime.messages is involved. Deliveries are in order per socket, so a later event a subscriber may
 * read is the sync point that proves it got none of the earlier ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RealtimeChannel, SupabaseClient } from '@supabase/supabase-js';
import { subscribed } from '../../support/channels.js';
import { startStorageWorld, U1, U2, type StorageWorld } from './support.js';

let w: StorageWorld;
beforeAll(async () => {
  w = await startStorageWorld();
  // A sync marker for anon only: the own-folder policies (support.ts) give it nothing else.
  await w.admin.query(`create policy "anon reads shared" on storage.objects for select to anon
    using (bucket_id = 'docs' and (storage.foldername(name))[1] = 'shared')`);
  await w.svc.storage.createBucket('docs');
}, 60_000);
afterAll(async () => w?.stop());

interface Event {
  event: string;
  payload: Record<string, unknown>;
}

async function listen(client: SupabaseClient, token: string | null): Promise<{ channel: RealtimeChannel; heard: Event[] }> {
  if (token) await client.realtime.setAuth(token);
  const heard: Event[] = [];
  const channel = client.channel('storage:docs', { config: { private: true } });
  channel.on('broadcast', { event: '*' }, (m) => heard.push({ event: m.event, payload: m.payload as Record<string, unknown> }));
  expect(await subscribed(channel)).toBe('SUBSCRIBED');
  return { channel, heard };
}

async function until(cond: () => boolean, tries = 400): Promise<void> {
  for (let i = 0; i < tries && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
}

describe('storage events', () => {
  it('the owner hears the events of their folder in order; another user and anon hear none of them', async () => {
    const owner = await listen(w.u1, w.u1Token);
    const other = await listen(w.u2, w.u2Token);
    const anon = await listen(w.anon, null);
    // Database broadcasts flow once the tenant's replication stream holds its slot.
    for (let i = 0; i < 400; i++) {
      const { rows } = await w.admin.query(`select 1 from pg_replication_slots where slot_name like 'supabase_realtime_messages_replication_slot_%' and active`);
      if (rows.length > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }

    const bucket = w.u1.storage.from('docs');
    expect((await bucket.upload(`${U1}/e.txt`, 'one', { contentType: 'text/plain' })).error).toBeNull();
    // A duplicate fails and rolls back: no event for it.
    expect((await bucket.upload(`${U1}/e.txt`, 'dup', { contentType: 'text/plain' })).error).not.toBeNull();
    expect((await bucket.update(`${U1}/e.txt`, 'two', { contentType: 'text/plain' })).error).toBeNull();
    expect((await bucket.move(`${U1}/e.txt`, `${U1}/f.txt`)).error).toBeNull();
    expect((await bucket.remove([`${U1}/f.txt`])).error).toBeNull();
    // Markers, after the owner's events: one each for the other user, anon and (last) the owner.
    expect((await w.u2.storage.from('docs').upload(`${U2}/mine.txt`, 'x', { contentType: 'text/plain' })).error).toBeNull();
    expect((await w.svc.storage.from('docs').upload('shared/all.txt', 'x', { contentType: 'text/plain' })).error).toBeNull();
    expect((await bucket.upload(`${U1}/last.txt`, 'x', { contentType: 'text/plain' })).error).toBeNull();

    await until(() => owner.heard.length >= 5 && other.heard.length >= 1 && anon.heard.length >= 1);
    expect(owner.heard.map((e) => e.event)).toEqual(['ObjectCreated', 'ObjectUpdated', 'ObjectMoved', 'ObjectRemoved', 'ObjectCreated']);
    expect(owner.heard[0]!.payload).toMatchObject({ bucketId: 'docs', name: `${U1}/e.txt`, size: 3, mimetype: 'text/plain', owner: U1 });
    expect(owner.heard[2]!.payload).toMatchObject({ name: `${U1}/f.txt`, oldName: `${U1}/e.txt` });
    expect(owner.heard[3]!.payload).toMatchObject({ name: `${U1}/f.txt` });
    expect(owner.heard[4]!.payload).toMatchObject({ name: `${U1}/last.txt` });
    expect(other.heard.map((e) => [e.event, e.payload.name])).toEqual([['ObjectCreated', `${U2}/mine.txt`]]);
    expect(anon.heard.map((e) => [e.event, e.payload.name])).toEqual([['ObjectCreated', 'shared/all.txt']]);
    await w.u1.removeChannel(owner.channel);
    await w.u2.removeChannel(other.channel);
    await w.anon.removeChannel(anon.channel);
  });

  it('a new access_token changes what a subscriber receives from the next event on', async () => {
    const sub = await listen(w.u2, w.u2Token);
    await w.u2.realtime.setAuth(w.u1Token);
    // The server takes the token asynchronously: events before it may still be judged with the old claims.
    for (let i = 0; i < 40 && sub.heard.length === 0; i++) {
      expect((await w.u1.storage.from('docs').upload(`${U1}/t${i}.txt`, 'x', { contentType: 'text/plain' })).error).toBeNull();
      await until(() => sub.heard.length > 0, 10);
    }
    expect(sub.heard.length).toBeGreaterThan(0);
    expect(sub.heard.every((e) => String(e.payload.name).startsWith(`${U1}/`))).toBe(true);
    await w.u2.realtime.setAuth(w.u2Token);
    await w.u2.removeChannel(sub.channel);
  });

  it('joining needs no policy on realtime.messages, only SELECT on storage.objects', async () => {
    const { rows } = await w.admin.query(`select count(*)::int as n from pg_policies where schemaname = 'realtime' and tablename = 'messages'`);
    expect(rows[0].n).toBe(0);
    await w.admin.query('revoke select on storage.objects from anon');
    try {
      const channel = w.anon.channel('storage:docs', { config: { private: true } });
      expect(await subscribed(channel)).not.toBe('SUBSCRIBED');
      await w.anon.removeChannel(channel);
    } finally {
      await w.admin.query('grant select on storage.objects to anon');
    }
  });
});
