import type { Logger } from '../observability/logger.js';

/** While over the rate, how often the limiter is asked again. */
const RECHECK_MS = 100;
/** A long burst paced by the limiter is logged at most this often. */
const LOG_EVERY_MS = 10_000;

/**
 * The tenant's postgres_changes limiter as the engine applies it. Upstream drops changes while its db_events limiter
 * is tripped; this holds them instead: the engine hands out nothing more and confirms nothing more until the rate
 * falls, and its stream stops reading once enough rows wait. No committed row is lost, and the slot stays behind
 * every row not yet delivered. A tenant that stays over the rate for long falls behind until the lag guard recreates
 * the slot, telling its subscribers. Broadcasts have a limiter of their own, so they cannot starve changes.
 */
export class ChangesRateGate {
  private loggedAt = 0;

  constructor(
    private readonly allow: (() => boolean) | undefined,
    private readonly log: Logger,
  ) {}

  /** Whether changes may go out now (no waiting). */
  allowsNow(): boolean {
    return !this.allow || this.allow();
  }

  /** True at once while under the rate; otherwise waits until it is (true), or until `stopped` (false). */
  async pass(waitingRows: number, stopped: () => boolean): Promise<boolean> {
    const allow = this.allow;
    if (!allow || allow()) return true;
    if (Date.now() - this.loggedAt >= LOG_EVERY_MS) {
      this.loggedAt = Date.now();
      this.log.warn({ error_code: 'ChangesRateLimited', waiting_rows: waitingRows }, 'tenant over its postgres changes rate; changes held until it falls');
    }
    while (!stopped() && !allow()) await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
    return !stopped();
  }
}
