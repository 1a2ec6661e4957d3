/**
 * Runs items through a handler strictly one at a time, in arrival order. Sync handlers run inline (no promise,
 * no microtask per item); a handler that returns a promise holds back the next item until it settles.
 * Crossing the high-water mark calls `pause` (stop reading the source) and draining to the low-water mark calls
 * `resume`, which is how an async consumer pushes back on the replication connection.
 */
export interface OrderedQueueOptions<T> {
  handle: (item: T) => void | Promise<void>;
  /** After the handler for item returned or its promise resolved. */
  done: (item: T) => void;
  /** When the handler threw or its promise rejected; the queue carries on with the next item. */
  failed: (item: T, err: unknown) => void;
  highWaterMark: number;
  lowWaterMark: number;
  pause: () => void;
  resume: () => void;
}

export class OrderedQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  private pumping = false;
  private paused = false;
  private inFlight: Promise<void> | null = null;
  private epoch = 0;

  constructor(private readonly opts: OrderedQueueOptions<T>) {}

  /** Items waiting, not counting one whose handler is running. */
  get size(): number {
    return this.items.length - this.head;
  }

  /** True while a handler's promise is pending. */
  get busy(): boolean {
    return this.inFlight !== null;
  }

  /** Nothing waiting and nothing running. */
  get idle(): boolean {
    return this.size === 0 && this.inFlight === null;
  }

  push(item: T): void {
    this.items.push(item);
    if (!this.pumping && !this.inFlight) this.pump();
    if (!this.paused && this.size >= this.opts.highWaterMark) {
      this.paused = true;
      this.opts.pause();
    }
  }

  /** Forgets waiting items (a running handler finishes); the pause state is reset with them. */
  clear(): void {
    this.epoch += 1;
    this.items = [];
    this.head = 0;
    this.paused = false;
  }

  /** Resolves when no handler is running (waiting items are not awaited). */
  async settled(): Promise<void> {
    while (this.inFlight) await this.inFlight;
  }

  private pump(): void {
    this.pumping = true;
    const epoch = this.epoch;
    try {
      while (this.head < this.items.length && epoch === this.epoch) {
        this.maybeResume();
        const item = this.items[this.head]!;
        this.items[this.head++] = undefined;
        let result: void | Promise<void>;
        try {
          result = this.opts.handle(item);
        } catch (err) {
          this.opts.failed(item, err);
          continue;
        }
        if (result && typeof (result as Promise<void>).then === 'function') {
          this.inFlight = Promise.resolve(result).then(
            () => this.opts.done(item),
            (err: unknown) => this.opts.failed(item, err),
          );
          void this.inFlight.then(() => {
            this.inFlight = null;
            this.pump();
          });
          return;
        }
        this.opts.done(item);
      }
      if (this.head === this.items.length) {
        this.items.length = 0;
        this.head = 0;
      }
      this.maybeResume();
    } finally {
      this.pumping = false;
    }
  }

  // Checked before each item too, so a run of async handlers resumes reading at the low-water mark, not at empty.
  private maybeResume(): void {
    if (this.paused && this.size <= this.opts.lowWaterMark) {
      this.paused = false;
      this.opts.resume();
    }
  }
}
