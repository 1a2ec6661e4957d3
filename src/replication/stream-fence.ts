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
 * The StreamFence of an owner: its fencing number is claimed in the tenant database on the replication connection
 * itself (tenant migration 20), which also ends the walsender of any owner it replaces.
 */
export function streamFence(owner: OwnerFence): StreamFence {
  return {
    async claim(client: pg.Client, slot: string): Promise<void> {
      if (!owner.valid()) throw new Error('this node no longer owns the tenant');
      // A replication connection speaks the simple query protocol only: the values go in as quoted literals.
      if (!Number.isSafeInteger(owner.fence) || owner.fence < 1) throw new Error('invalid fencing number');
      await client.query(`SELECT realtime.performer_claim_stream_fence(${client.escapeLiteral(owner.tenant)}, ${owner.fence}, ${client.escapeLiteral(slot)})`);
    },
    valid: () => owner.valid(),
  };
}
