/**
 * A tenant child of the storage module that collects what a crashed process leaves behind, soon after start-up and
 * then every SWEEP_INTERVAL_MS (sooner while a pass had more to do than its bound). Requests clean up after
 * themselves; a process killed mid-upload cannot, and leaves
 *  - a temp blob (a temp file, an unfinished S3 multipart upload) when it died while writing, collected once nothing
 *    wrote to it for STALE_TEMP_MS;
 *  - a published blob whose row never committed, when it died between publishing and COMMIT (or failed to remove
 *    a replaced or deleted object's blob after its COMMIT), collected when no row names it and it was last written
 *    ORPHAN_AGE_MS ago. Blobs are named by fresh UUIDs and only ever gain a row in the transaction that wrote them,
 *    so an old blob no committed row names never will be, unless its writer is still in that transaction: this
 *    process's writes are skipped outright (the backend's in-flight set), another process's by the age bound, far
 *    beyond the time between a blob's last byte and its COMMIT.
 * Each pass looks at most BLOBS_PER_PASS blobs, resuming after the last one the previous pass saw; and resumable
 * uploads past their expiry.
 */
import type pg from 'pg';
import type { ChildSpec, RunningChild } from '../../tenants/supervisor.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import type { BlobBackend } from './blob/backend.js';
import type { ResumableUploads } from './routes/resumable.js';

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;
/** After start-up, once the tenant's own start (database, migrations) had its turn. */
const FIRST_SWEEP_MS = 5 * 1000;
/** The next pass when the last one stopped at its bound. */
const CONTINUE_SWEEP_MS = 30 * 1000;
export const STALE_TEMP_MS = 6 * 60 * 60 * 1000;
export const ORPHAN_AGE_MS = 60 * 60 * 1000;
const BLOBS_PER_PASS = 1000;
const TEMPS_PER_PASS = 1000;

export interface SweepOptions {
  /** The clock (epoch ms); tests move it forward instead of waiting. */
  now: number;
  blobsPerPass?: number;
}

export interface SweepResult {
  temps: number;
  orphans: number;
  /** Where the next pass resumes the walk over blobs; null: from the first (this pass reached the last). */
  cursor: string | null;
  /** Whether a bound cut the pass short. */
  more: boolean;
}

/** One bounded pass over `tenant`'s blobs on `backend`, judging them by the rows of `pool`'s storage.objects. */
export async function sweepLeftovers(backend: BlobBackend, tenant: string, pool: Pick<pg.Pool, 'query'>, cursor: string | null, o: SweepOptions): Promise<SweepResult> {
  const limit = o.blobsPerPass ?? BLOBS_PER_PASS;
  const temps = await backend.sweepTemps(tenant, o.now - STALE_TEMP_MS, TEMPS_PER_PASS);
  const blobs = await backend.list(tenant, cursor, limit);
  const old = blobs.filter((b) => b.modifiedMs < o.now - ORPHAN_AGE_MS).map((b) => b.key);
  let orphans: string[] = [];
  if (old.length > 0) {
    // As the pool's user, which owns storage.objects and so sees every row (RLS does not apply to the owner).
    const { rows } = await pool.query<{ version: string }>('SELECT version FROM storage.objects WHERE version = ANY($1::text[])', [old]);
    const named = new Set(rows.map((r) => r.version));
    orphans = old.filter((key) => !named.has(key));
    await backend.remove(tenant, orphans);
  }
  const full = blobs.length >= limit;
  return { temps, orphans: orphans.length, cursor: full ? blobs[blobs.length - 1]!.key : null, more: full || temps >= TEMPS_PER_PASS };
}

export function storageSweeper(tenant: TenantRuntime, backend: BlobBackend, resumable: ResumableUploads): ChildSpec {
  return {
    name: 'sweeper',
    start: async (): Promise<RunningChild> => {
      const tenantId = tenant.settings.externalId;
      let cursor: string | null = null;
      let timer: NodeJS.Timeout | null = null;
      let stopped = false;
      const sweep = async (): Promise<boolean> => {
        const pass = await sweepLeftovers(backend, tenantId, await tenant.database(), cursor, { now: Date.now() });
        cursor = pass.cursor;
        const uploads = await resumable.sweep(tenantId);
        if (pass.temps + pass.orphans + uploads > 0) {
          tenant.log.info({ temps: pass.temps, orphans: pass.orphans, uploads }, 'storage: swept leftovers of interrupted uploads');
        }
        return pass.more;
      };
      const run = (): void => {
        sweep().then(
          (more) => schedule(more ? CONTINUE_SWEEP_MS : SWEEP_INTERVAL_MS),
          (err: unknown) => {
            tenant.log.warn({ err, error_code: 'StorageSweepFailed' }, 'storage sweep failed');
            schedule(SWEEP_INTERVAL_MS);
          },
        );
      };
      const schedule = (ms: number): void => {
        if (stopped) return;
        timer = setTimeout(run, ms);
        timer.unref();
      };
      schedule(FIRST_SWEEP_MS);
      return {
        exited: new Promise(() => undefined),
        stop: async () => {
          stopped = true;
          if (timer) clearTimeout(timer);
        },
      };
    },
  };
}
