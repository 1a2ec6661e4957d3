import type { ChangesSubscriber } from './changes-subscribers.js';

/** Queued frames (all subscribers) that make a write happen before the end of the loop turn. */
const FLUSH_EVERY_ITEMS = 256;

/**
 * When a changes engine's queued frames leave and its confirmed position is reported. Once per loop turn: the
 * frames of every commit handled in it leave in one write per socket, then one status update confirms them all. A
 * crash can only fall in the short gap between the two, so a restart neither loses nor, but for that gap, repeats
 * what subscribers got.
 */
export class FrameFlusher {
  private soon: NodeJS.Immediate | null = null;
  private readonly unflushed = new Set<ChangesSubscriber>();
  private items = 0;
  private statusDue = false;

  /**
   * sendStatus: the stream's standby status update with the position acknowledged so far (see ClusterAck). owns: in
   * a cluster, whether this node still owns the tenant.
   */
  constructor(
    private readonly sendStatus: () => void,
    private readonly owns: () => boolean = () => true,
  ) {}

  /** Subscribers got `queued` frames: they leave at the end of this loop turn, or now past a bound. */
  written(touched: Iterable<ChangesSubscriber>, queued: number): void {
    let any = false;
    for (const sub of touched) {
      this.unflushed.add(sub);
      any = true;
    }
    if (any) this.schedule();
    // One loop turn can read megabytes of backlog: past a bound, frames leave now rather than pile up in the heap.
    this.items += queued;
    if (this.items >= FLUSH_EVERY_ITEMS) this.flushFrames();
  }

  /** A position was acknowledged: reported after this turn's frames left. */
  confirmed(): void {
    this.statusDue = true;
    this.schedule();
  }

  flushFrames(): void {
    // Frames of commits a newer owner will hand out again from the confirmed position must not leave here too.
    if (!this.owns()) {
      this.unflushed.clear();
      this.items = 0;
      return;
    }
    for (const sub of this.unflushed) sub.flush();
    this.unflushed.clear();
    this.items = 0;
  }

  /**
   * Stopping: what is queued leaves now, and a due status update is sent (in a cluster it is what hands the
   * position to the stream, whose stop sends the last one).
   */
  stop(): void {
    if (this.soon) clearImmediate(this.soon);
    this.soon = null;
    this.flushFrames();
    if (this.statusDue) {
      this.statusDue = false;
      this.sendStatus();
    }
  }

  private schedule(): void {
    this.soon ??= setImmediate(() => {
      this.soon = null;
      this.flushFrames();
      if (this.statusDue) {
        this.statusDue = false;
        this.sendStatus();
      }
    });
  }
}
