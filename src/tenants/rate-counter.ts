/**
 * A rolling average of events per second, as upstream's RateCounter: events are counted into the current tick,
 * and every tick the count is pushed into a bounded window whose mean is the rate.
 */
export class RateCounter {
  private current = 0;
  private readonly buckets: number[] = [];
  private sum = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Rolling average per second over the window; updated each tick. */
  avg = 0;
  /**
   * The other cluster nodes' rate for the same counter, as of the last load sync (cluster/load-sync.ts): added to
   * `rate`, so every limit check holds for the whole cluster. 0 when the node runs alone.
   */
  remote = 0;

  constructor(
    private readonly tickMs = 1000,
    private readonly windowMs = 60_000,
  ) {}

  start(): this {
    if (!this.timer) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  add(n = 1): void {
    this.current += n;
  }

  /** This node's rate plus the other nodes' (`remote`). */
  get rate(): number {
    return this.localRate + this.remote;
  }

  /** This node's rate, including the events of the tick in progress, so a burst trips a limit before the next tick. */
  get localRate(): number {
    const n = this.buckets.length;
    const perSecond = (this.current * 1000) / this.tickMs;
    return n === 0 ? perSecond : Math.max(this.avg, (this.sum + this.current) / (n + 1) * (1000 / this.tickMs));
  }

  tick(): void {
    const maxBuckets = Math.max(1, Math.round(this.windowMs / this.tickMs));
    this.buckets.push(this.current);
    this.sum += this.current;
    this.current = 0;
    while (this.buckets.length > maxBuckets) this.sum -= this.buckets.shift() as number;
    this.avg = (this.sum / this.buckets.length) * (1000 / this.tickMs);
  }
}
