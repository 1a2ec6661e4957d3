/**
 * A tenant child of the storage module: every SWEEP_INTERVAL_MS it deletes what a crash can leave behind, temp
 * blobs older than STALE_TEMP_MS (no upload takes that long between its first byte and its commit) and resumable
 * uploads past their expiry. Requests clean up after themselves; this is for processes that died mid-request.
 */
import type { ChildSpec, RunningChild } from '../../tenants/supervisor.js';
import type { TenantRuntime } from '../../tenants/tenant.js';
import type { BlobBackend } from './blob/backend.js';
import type { ResumableUploads } from './routes/resumable.js';

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;
const FIRST_SWEEP_MS = 60 * 1000;
export const STALE_TEMP_MS = 6 * 60 * 60 * 1000;

export function storageSweeper(tenant: TenantRuntime, backend: BlobBackend, resumable: ResumableUploads): ChildSpec {
  return {
    name: 'sweeper',
    start: async (): Promise<RunningChild> => {
      const tenantId = tenant.settings.externalId;
      const sweep = async () => {
        const temps = await backend.sweep(tenantId, STALE_TEMP_MS);
        const uploads = await resumable.sweep(tenantId);
        if (temps + uploads > 0) tenant.log.info({ temps, uploads }, 'storage: swept leftovers of interrupted uploads');
      };
      const run = () => void sweep().catch((err: unknown) => tenant.log.warn({ err, error_code: 'StorageSweepFailed' }, 'storage sweep failed'));
      const first = setTimeout(run, FIRST_SWEEP_MS);
      const every = setInterval(run, SWEEP_INTERVAL_MS);
      first.unref();
      every.unref();
      return {
        exited: new Promise(() => undefined),
        stop: async () => {
          clearTimeout(first);
          clearInterval(every);
        },
      };
    },
  };
}
