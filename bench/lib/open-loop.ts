import { nowUs } from './time.js';

export interface OpenLoop<C> {
  /** Connections; one item in flight on each at a time. */
  conns: readonly C[];
  /** Items to issue; item i is due at t0 + i * intervalUs (monotonic µs). */
  total: number;
  t0: number;
  intervalUs: number;
  /** No item is issued after this (an unsustainable rate ends the loop instead of stretching it). */
  hardEndUs: number;
  /** Issues item `i` on `conn`, stamped with its scheduled time (queueing in the load generator counts as latency). */
  issue(conn: C, i: number, scheduledUs: number): Promise<void>;
  /** Called on every tick with the time. */
  onTick?(now: number): void;
}

/**
 * An open loop at a fixed rate: a 1 ms tick (and every completion) issues the items that are due on the connections
 * that are free. Returns how many were issued, the most that were due but not yet issued at a tick, and whether the
 * hard end cut it short; the first failure is thrown once everything in flight has settled.
 */
export async function openLoop<C>(o: OpenLoop<C>): Promise<{ issued: number; maxBehind: number; capped: boolean }> {
  const free = [...o.conns];
  let total = o.total;
  let issued = 0;
  let inflight = 0;
  let maxBehind = 0;
  let capped = false;
  let failure: unknown = null;
  await new Promise<void>((resolve) => {
    const pump = () => {
      const now = nowUs();
      o.onTick?.(now);
      if (now >= o.hardEndUs && issued < total) {
        capped = true;
        total = issued;
      }
      const due = Math.min(total, Math.floor((now - o.t0) / o.intervalUs) + 1);
      while (issued < due && free.length > 0 && failure === null) {
        const conn = free.pop() as C;
        const i = issued++;
        inflight++;
        o.issue(conn, i, o.t0 + i * o.intervalUs).then(
          () => {
            inflight--;
            free.push(conn);
            pump();
          },
          (err: unknown) => {
            failure ??= err;
            inflight--;
            free.push(conn);
          },
        );
      }
      maxBehind = Math.max(maxBehind, due - issued);
      if ((issued >= total || failure !== null) && inflight === 0) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(pump, 1);
  });
  if (failure !== null) throw failure;
  return { issued, maxBehind, capped };
}
