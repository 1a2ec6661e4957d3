import type pg from 'pg';
import type { StreamFence } from './stream-types.js';

/** What a stream run by a cluster owner is guarded with: its tenant, its fencing number, and its lease's validity. */
export interface OwnerFence {
  tenant: string;
  fence: number;
  /** False once the lease may have lapsed (the owner's own clock says so; a paused process wakes up with it false). */
  valid(): boolean;
}

/** Error text of a claim refused because a newer owner holds the slot (the HINT of the migration's function). */
export function isFencedError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { hint?: unknown }).hint === 'performer_fenced';
}

/**
 * A tenant's streams an owner runs, each fenced on its own: both claim the owner's number, and a claim ends the
 * walsender of whoever claimed the same stream before, so they must not share a row.
 */
export type OwnedStream = 'changes' | 'broadcast';

/** The row of realtime.performer_stream_fences a stream claims (the changes stream's is the tenant's id, as before). */
export function fenceKey(tenant: string, stream: OwnedStream): string {
  // Tenant ids are [a-z0-9_-]: a key with a slash is no tenant's.
  return stream === 'changes' ? tenant : `${tenant}/${stream}`;
}

/**
 * The StreamFence of an owner: its fencing number is claimed in the tenant database on the replication connection
 * itself (tenant migration 20), which also ends the walsender of any owner it replaces and of whatever holds the
 * slot (a temporary slot of a paused owner included, which its end drops).
 */
export function streamFence(owner: OwnerFence, stream: OwnedStream = 'changes'): StreamFence {
  const key = fenceKey(owner.tenant, stream);
  return {
    held: { key, fence: owner.fence },
    async claim(client: pg.ClientBase, slot: string): Promise<void> {
      if (!owner.valid()) throw new Error('this node no longer owns the tenant');
      // A replication connection speaks the simple query protocol only: the values go in as quoted literals.
      if (!Number.isSafeInteger(owner.fence) || owner.fence < 1) throw new Error('invalid fencing number');
      await client.query(`SELECT realtime.performer_claim_stream_fence(${client.escapeLiteral(key)}, ${owner.fence}, ${client.escapeLiteral(slot)})`);
    },
    valid: () => owner.valid(),
  };
}
