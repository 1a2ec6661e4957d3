import type { Logger } from '../observability/logger.js';
import type { Lsn } from './pgoutput/index.js';
import type { ReplicationStream } from './stream.js';

/** What the acknowledgement needs from its changes engine. */
export interface AckHost {
  stream(): ReplicationStream | null;
  /** Whether this node may confirm (always, outside a cluster). */
  owns(): boolean;
  /** In a cluster: settles once the events sent to other nodes so far reached Redis (see ChangesEngineOptions). */
  published?: () => Promise<void> | null;
  log: Logger;
}

/**
 * How a changes engine confirms a handed-out position. Alone, at once (the status update that reports it follows
 * the frames, see FrameFlusher). In a cluster (`published`), the position waits until the events sent to other
 * nodes before it have reached Redis, and is confirmed only if this node still owns the tenant then: an owner killed
 * between handing out and publishing must leave those commits to the next owner.
 */
export class ClusterAck {
  /** With `published`: the position to confirm once the frames handed out before it have left this node. */
  private pending: Lsn | null = null;
  private sending: Promise<void> | null = null;

  constructor(private readonly host: AckHost) {}

  /** The confirmation waiting for Redis, if any (stop waits for it before the stream's last status update). */
  get acking(): Promise<void> | null {
    return this.sending;
  }

  /** Every change up to `lsn` was handed out (its frames leave this loop turn). */
  confirm(lsn: Lsn): void {
    if (this.host.published) this.pending = lsn;
    else this.host.stream()?.ack(lsn);
  }

  /** The status update, after this turn's frames left; in a cluster, once what went to other nodes reached Redis. */
  sendStatus(): void {
    const lsn = this.pending;
    this.pending = null;
    const send = (): void => {
      if (lsn !== null && this.host.owns()) this.host.stream()?.ack(lsn);
      this.host.stream()?.flush();
    };
    const published = lsn === null ? null : (this.host.published?.() ?? null);
    if (published === null) return send();
    const sending: Promise<void> = published.then(send, (err: unknown) => {
      // Not confirmed: whoever owns the tenant next hands these out again from the confirmed position.
      this.host.log.warn({ err }, 'events for other nodes did not reach Redis; their position is not confirmed');
    });
    this.sending = sending;
    void sending.finally(() => {
      if (this.sending === sending) this.sending = null;
    });
  }
}
