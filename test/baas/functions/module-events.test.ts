/**
 * Auth and storage report their committed changes to function triggers (http/module-events.ts): real supabase-js
 * calls through HTTP, a deployed function as the receiver, deliveries read from the control database.
 */
import { createClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStorageWorld, type StorageWorld } from '../storage/support.js';
import { FunctionsAdmin, waitUntil } from './support.js';

const RECEIVER = `
export default {
  async fetch(request) {
    const event = await request.json();
    return Response.json({ id: request.headers.get('x-performer-event-id'), type: event.type });
  },
};`;

interface Delivery {
  event_id: string;
  state: string;
  payload: { kind: string; type: string; id: string; scope?: string; record: Record<string, unknown>; old_record?: Record<string, unknown> };
}

describe('auth and storage events fire function triggers', () => {
  let w: StorageWorld;
  let admin: FunctionsAdmin;

  beforeAll(async () => {
    w = await startStorageWorld();
    admin = new FunctionsAdmin(w.t);
    await admin.deploy('receiver', RECEIVER, 'application/javascript');
    const put = await admin.request(
      'PUT',
      '/functions/receiver/triggers',
      JSON.stringify([
        { type: 'auth', events: ['user.created'] },
        { type: 'storage', events: ['object.created', 'object.removed', 'object.moved'], bucket: 'inbox' },
      ]),
      { 'content-type': 'application/json' },
    );
    expect(put.status).toBe(200);
  });
  afterAll(() => w?.stop());

  const deliveries = async (kind: string) =>
    (await w.t.server.ctx.control.pool.query<Delivery>(
      `SELECT d.event_id, d.state, d.payload FROM _performer.function_deliveries d JOIN _performer.function_triggers t ON t.id = d.trigger_id
        WHERE t.kind = $1 ORDER BY d.inserted_at, d.event_id`,
      [kind],
    )).rows;

  it('a supabase-js sign-up fires the auth trigger once, with the audit row id as event id', async () => {
    const client = () => createClient(w.t.url, w.t.anonKey, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket as never } });
    const first = await client().auth.signUp({ email: 'events-one@example.com', password: 'secret-password' });
    expect(first.error).toBeNull();
    // A refused sign-up (the same address again) writes nothing and fires nothing; a second user is a second event.
    const again = await client().auth.signUp({ email: 'events-one@example.com', password: 'secret-password' });
    expect(again.error?.code).toBe('user_already_exists');
    const second = await client().auth.signUp({ email: 'events-two@example.com', password: 'secret-password' });
    expect(second.error).toBeNull();
    const rows = await waitUntil(() => deliveries('auth'), (r) => r.length >= 2 && r.every((d) => d.state === 'delivered'));
    // Recorded after each answer, so the order of the two records is not promised: compare sorted.
    const byUser = (a: Delivery, b: Delivery) => String(a.payload.record.user_id).localeCompare(String(b.payload.record.user_id));
    expect(rows.sort(byUser).map((d) => [d.payload.type, d.payload.record.user_id, d.state])).toEqual(
      [['user.created', first.data.user?.id, 'delivered'], ['user.created', second.data.user?.id, 'delivered']].sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
    );
    // The sign-up also signed the user in (AUTH_AUTOCONFIRM): user.signed_in has no trigger, so it was not recorded.
    const audit = await w.admin.query<{ id: string }>(`SELECT id::text FROM auth.audit_log_entries WHERE payload->>'action' = 'user_signedup' ORDER BY created_at`);
    expect(rows.map((d) => d.event_id).sort()).toEqual(audit.rows.map((r) => `auth:${r.id}`).sort());
  });

  it('an upload fires the storage trigger once per committed write; removal and move fire theirs', async () => {
    expect((await w.svc.storage.createBucket('inbox', { public: false })).error).toBeNull();
    expect((await w.svc.storage.createBucket('elsewhere', { public: false })).error).toBeNull();
    const up = await w.svc.storage.from('inbox').upload('a.txt', new Blob(['hello']), { contentType: 'text/plain' });
    expect(up.error).toBeNull();
    // Refused (exists, no upsert): nothing committed, no event. Another bucket: the trigger's bucket filter skips it.
    expect((await w.svc.storage.from('inbox').upload('a.txt', new Blob(['again']))).error).not.toBeNull();
    expect((await w.svc.storage.from('elsewhere').upload('b.txt', new Blob(['other']))).error).toBeNull();
    // An overwrite is object.updated, which has no trigger here.
    expect((await w.svc.storage.from('inbox').upload('a.txt', new Blob(['new bytes']), { upsert: true })).error).toBeNull();
    expect((await w.svc.storage.from('inbox').move('a.txt', 'b.txt')).error).toBeNull();
    expect((await w.svc.storage.from('inbox').remove(['b.txt'])).error).toBeNull();
    const rows = (await waitUntil(() => deliveries('storage'), (r) => r.length >= 3 && r.every((d) => d.state === 'delivered'))).sort((a, b) =>
      a.payload.type.localeCompare(b.payload.type),
    );
    expect(rows.map((d) => [d.payload.type, d.payload.scope, d.payload.record.name])).toEqual([
      ['object.created', 'inbox', 'a.txt'],
      ['object.moved', 'inbox', 'b.txt'],
      ['object.removed', 'inbox', 'b.txt'],
    ]);
    expect(rows[1].payload.old_record).toMatchObject({ bucket_id: 'inbox', name: 'a.txt' });
    // Event ids name the written and the removed version: the created one is gone, the removed one is the upsert's.
    const created = rows[0].payload.record.version as string;
    expect(rows[0].event_id).toBe(`storage:object.created:${created}`);
    expect(rows[2].event_id).toMatch(/^storage:object\.removed:[0-9a-f-]{36}$/);
    expect(rows[2].event_id).not.toContain(created);
  });
});
