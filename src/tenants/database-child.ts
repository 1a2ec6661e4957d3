import type { ChildSpec, RunningChild } from './supervisor.js';
import type { TenantRuntime } from './tenant.js';

/**
 * The tenant's database as a supervised child: connected and migrated on start, then probed; two failed probes in
 * a row drop the pool and let the supervisor reconnect with backoff.
 */
export function databaseChild(runtime: TenantRuntime, probeEveryMs: number): ChildSpec {
  return {
    name: 'database',
    async start(): Promise<RunningChild> {
      const pool = await runtime.database();
      let timer: NodeJS.Timeout | null = null;
      let stopped = false;
      const exited = new Promise<never>((_resolve, reject) => {
        let misses = 0;
        const probe = async () => {
          if (stopped) return;
          try {
            await pool.query({ text: 'SELECT 1', query_timeout: Math.max(1000, probeEveryMs) } as never);
            misses = 0;
          } catch (err) {
            misses += 1;
            if (misses >= 2) {
              await runtime.resetDatabase();
              reject(err);
              return;
            }
          }
          if (!stopped) {
            timer = setTimeout(() => void probe(), probeEveryMs);
            timer.unref();
          }
        };
        timer = setTimeout(() => void probe(), probeEveryMs);
        timer.unref();
      });
      exited.catch(() => undefined);
      return {
        exited,
        async stop() {
          stopped = true;
          if (timer) clearTimeout(timer);
        },
      };
    },
  };
}
