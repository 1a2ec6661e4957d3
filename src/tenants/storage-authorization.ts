import type pg from 'pg';
import { actAs, inRolledBackTransaction, type RlsOutcome, type RlsOptions, type RlsRequest } from '../db/rls.js';

/**
 * Storage events (issue 18) are authorized by the same RLS as a read of the object: a subscriber of the private
 * topic `storage:<bucket>` gets an event only if a SELECT on storage.objects, with its role and claims, returns the
 * event's object (for a removed object: would have returned it). Joining only needs the role's SELECT privilege on
 * storage.objects; policies on realtime.messages play no part. A join-time check could not express "may read" under
 * per-folder policies, hence one check per event and subscriber.
 */

export const STORAGE_TOPIC_PREFIX = 'storage:';

/** True for the sub-topic of a bucket's storage events. */
export function isStorageTopic(subTopic: string): boolean {
  return subTopic.startsWith(STORAGE_TOPIC_PREFIX) && subTopic.length > STORAGE_TOPIC_PREFIX.length;
}

/** The object an event is about, as the event's payload (storage.performer_event_payload) carries it. */
export interface StorageEventObject {
  id: string;
  bucketId: string;
  name: string;
  owner: string | null;
  version: string | null;
  size: unknown;
  mimetype: unknown;
}

/** The object of an event payload, or null when the payload is not a storage event's. */
export function eventObject(payload: unknown): StorageEventObject | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const p = payload as Record<string, unknown>;
  if (typeof p.id !== 'string' || typeof p.bucketId !== 'string' || typeof p.name !== 'string') return null;
  return {
    id: p.id,
    bucketId: p.bucketId,
    name: p.name,
    owner: typeof p.owner === 'string' ? p.owner : null,
    version: typeof p.version === 'string' ? p.version : null,
    size: p.size ?? null,
    mimetype: p.mimetype ?? null,
  };
}

/** Join check of a `storage:<bucket>` topic: may the caller's role SELECT storage.objects at all. */
export async function checkStorageJoin(pool: pg.Pool, req: RlsRequest, opts: RlsOptions = {}): Promise<RlsOutcome<boolean>> {
  return inRolledBackTransaction(
    pool,
    async (client) => {
      if (!(await actAs(client, req, opts))) return false;
      const { rows } = await client.query<{ ok: boolean }>(
        `SELECT CASE WHEN pg_catalog.to_regclass('storage.objects') IS NULL THEN false
                     ELSE pg_catalog.has_table_privilege(current_user, 'storage.objects', 'SELECT') END AS ok`,
      );
      return rows[0]?.ok === true;
    },
    opts,
  );
}

/**
 * Which viewers may read each event's object: `[viewer][event]`. One rolled-back transaction as the pool user: per
 * event, the object is put back as the event saw it (whatever happened to it since), then selected as each viewer
 * inside a savepoint (a policy that raises denies that viewer only). Events whose object cannot be put back (its
 * bucket is gone) are visible to nobody.
 */
export async function visibleStorageEvents(
  pool: pg.Pool,
  objects: readonly StorageEventObject[],
  viewers: readonly Record<string, unknown>[],
  opts: RlsOptions = {},
): Promise<RlsOutcome<boolean[][]>> {
  return inRolledBackTransaction(
    pool,
    async (client) => {
      const out = viewers.map(() => objects.map(() => false));
      // Putting objects back fires no triggers (the app's own ones, the event trigger) where the pool user may say
      // so; everything is rolled back anyway, this only spares work and side effects outside the transaction.
      await client.query('SAVEPOINT performer_replica');
      try {
        await client.query(`SELECT pg_catalog.set_config('session_replication_role', 'replica', true)`);
        await client.query('RELEASE SAVEPOINT performer_replica');
      } catch {
        await client.query('ROLLBACK TO SAVEPOINT performer_replica');
      }
      for (let j = 0; j < objects.length; j++) {
        const o = objects[j]!;
        await client.query('SAVEPOINT performer_event');
        try {
          await client.query('DELETE FROM storage.objects WHERE id = $1::uuid OR (bucket_id = $2 AND name = $3)', [o.id, o.bucketId, o.name]);
          await client.query(
            `INSERT INTO storage.objects (id, bucket_id, name, owner, owner_id, version, metadata)
             VALUES ($1::uuid, $2, $3, CASE WHEN $4 ~* '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' THEN $4::uuid END, $4, $5,
                     pg_catalog.jsonb_build_object('size', $6::jsonb, 'mimetype', $7::jsonb))`,
            [o.id, o.bucketId, o.name, o.owner, o.version, JSON.stringify(o.size ?? null), JSON.stringify(o.mimetype ?? null)],
          );
        } catch {
          await client.query('ROLLBACK TO SAVEPOINT performer_event');
          continue;
        }
        for (let i = 0; i < viewers.length; i++) {
          await client.query('SAVEPOINT performer_viewer');
          try {
            if (await actAs(client, { topic: '', claims: viewers[i]!, headers: {} }, opts)) {
              const res = await client.query('SELECT 1 FROM storage.objects WHERE id = $1::uuid', [o.id]);
              out[i]![j] = res.rowCount === 1;
            }
          } catch {
            // No SELECT privilege, or a policy that raised: this viewer does not get the event.
          }
          // Back to the pool user, the viewer's settings undone.
          await client.query('ROLLBACK TO SAVEPOINT performer_viewer');
        }
      }
      return out;
    },
    opts,
  );
}
