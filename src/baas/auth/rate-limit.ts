/**
 * Per-key request budgets (GoTrue's per-IP limiters): a token bucket of `limit` requests refilled evenly over
 * `windowMs`. Pure apart from the clock passed in; idle buckets are dropped so the map stays small.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Takes one request from `key`'s budget; false when it is spent. */
  take(key: string, now = Date.now()): boolean {
    const bucket = this.buckets.get(key);
    const refill = (elapsed: number) => (elapsed * this.limit) / this.windowMs;
    const tokens = bucket === undefined ? this.limit : Math.min(this.limit, bucket.tokens + refill(now - bucket.at));
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return false;
    }
    if (this.buckets.size > 100_000) this.sweep(now);
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    return true;
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) if (now - bucket.at > this.windowMs) this.buckets.delete(key);
  }
}

/** Earliest time, per address, another e-mail may go to it (GoTrue's SMTP max frequency). */
export class EmailFrequency {
  private readonly last = new Map<string, number>();

  constructor(private readonly minIntervalMs: number) {}

  /** Seconds to wait before the next e-mail to `address`, or 0 (and the send is recorded). */
  wait(address: string, now = Date.now()): number {
    const key = address.toLowerCase();
    const previous = this.last.get(key);
    if (previous !== undefined && now - previous < this.minIntervalMs) return Math.ceil((previous + this.minIntervalMs - now) / 1000);
    if (this.last.size > 100_000) this.last.clear();
    this.last.set(key, now);
    return 0;
  }
}
