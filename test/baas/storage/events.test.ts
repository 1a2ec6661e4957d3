/**
 * Storage events on realtime: object created / updated / moved / removed are broadcast to the private topic
 * `storage:<bucket>` when (and only when) the change commits; joining needs a SELECT policy on realtime.messages
 * as for every private channel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subscribed } from '../../support/channels.js';
import { startStorageWorld, U1, type StorageWorld } from './support.js';

let w: StorageWorld;
beforeAll(async () => {
  w = await startStorageWorld();
  await w.admin.query(`create policy "u1 hears docs" on realtime.messages for select to authenticated
    using (realtime.topic() = 'storage:docs' and auth.uid() = '${U1}'::uuid)`);
  await w.svc.storage.createBucket('docs');
}, 60_000);
afterAll(async () => w?.stop());

interface Event {
  event: string;
  payload: Record<string, unknown>;
}

describe('storage events', () => {
  it('a reader with the policy hears every committed change in order; a failed change sends nothing', async () => {
    await w.u1.realtime.setAuth(w.u1Token);
    const heard: Event[] = [];
    const channel = w.u1.channel('storage:docs', { config: { private: true } });
    channel.on('broadcast', { event: '*' }, (m) => heard.push({ event: m.event, payload: m.payload as Record<string, unknown> }));
    expect(await subscribed(channel)).toBe('SUBSCRIBED');
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

    for (let i = 0; i < 200 && heard.length < 4; i++) await new Promise((r) => setTimeout(r, 50));
    expect(heard.map((e) => e.event)).toEqual(['ObjectCreated', 'ObjectUpdated', 'ObjectMoved', 'ObjectRemoved']);
    expect(heard[0].payload).toMatchObject({ bucketId: 'docs', name: `${U1}/e.txt`, size: 3, mimetype: 'text/plain', owner: U1 });
    expect(heard[2].payload).toMatchObject({ name: `${U1}/f.txt`, oldName: `${U1}/e.txt` });
    await w.u1.removeChannel(channel);
  });

  it('a caller without the policy cannot join the bucket topic', async () => {
    await w.u2.realtime.setAuth(w.u2Token);
    const channel = w.u2.channel('storage:docs', { config: { private: true } });
    expect(await subscribed(channel)).not.toBe('SUBSCRIBED');
    await w.u2.removeChannel(channel);
  });
});
