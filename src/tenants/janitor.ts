import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { dropOldMessagePartitions, ensureMessagePartitions } from './migrate.js';

/**
 * The realtime.messages janitor of one tenant (spec §4.6): keeps daily partitions for yesterday .. today+3 and
 * drops partitions that ended more than 72 h ago, so replay data does not grow without bound and inserts after
 * midnight always find their partition.
 */

export interface JanitorOptions {
  /** The tenant pool, or a getter (e.g. `() => tenant.database()`) so a tenant whose database is down is skipped. */
  pool: pg.Pool | (() => Promise<pg.Pool>);
  log: Logger;
  /** Default one hour. */
  intervalMs?: number;
  /** Default 72. */
  keepHours?: number;
  /** Delay before the first run; default intervalMs (tenant start already ensures partitions). */
  firstRunMs?: number;
}

export interface JanitorRun {
  created: number;
  dropped: number;
}

export interface Janitor {
  /** One pass now; resolves with what it did, or null when it failed (the failure is logged). */
  runOnce(): Promise<JanitorRun | null>;
  /** Stops the timer and waits for a pass in progress. */
  stop(): Promise<void>;
}

export function startJanitor(opts: JanitorOptions): Janitor {
  const intervalMs = opts.intervalMs ?? 3_600_000;
  const keepHours = opts.keepHours ?? 72;
  let stopped = false;
  let current: Promise<JanitorRun | null> | null = null;
  let timer: NodeJS.Timeout | null = null;

  const pass = async (): Promise<JanitorRun | null> => {
    try {
      const pool = typeof opts.pool === 'function' ? await opts.pool() : opts.pool;
      const created = await ensureMessagePartitions(pool);
      const dropped = await dropOldMessagePartitions(pool, keepHours);
      if (created > 0 || dropped > 0) opts.log.info({ created, dropped }, 'janitor maintained realtime.messages partitions');
      return { created, dropped };
    } catch (err) {
      opts.log.warn({ err, error_code: 'JanitorFailed' }, 'janitor could not maintain realtime.messages partitions');
      return null;
    }
  };

  // Passes never overlap: a slow database makes the next tick wait for the running pass instead of piling up.
  const runOnce = (): Promise<JanitorRun | null> => {
    current ??= pass().finally(() => {
      current = null;
    });
    return current;
  };

  const schedule = (delay: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      void runOnce().then(() => schedule(intervalMs));
    }, delay);
    timer.unref();
  };
  schedule(opts.firstRunMs ?? intervalMs);

  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await current;
    },
  };
}
