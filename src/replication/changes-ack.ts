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
  /** Settles once the frames this node's fan-out holds for later loop turns left (LocalPublisher.changesDrained). */
  drained?: () => Promise<void> | null;
  log: Logger;
}

/**
 * How a changes engine confirms a handed-out position: with the status update that follows the frames (see
 * FrameFlusher), once they have left this node. The fan-out may pace a batch over a few loop turns (`drained`), and in
 * a cluster (`published`) the events sent to other nodes before it must have reached Redis; the position is
 * confirmed only if this node still owns the tenant then: an owner killed between handing out and publishing must
 * leave those commits to the next owner.
 */
export class ClusterAck {
  /** The position to confirm once the frames handed out before it have left this node. */
  private pending: Lsn | null = null;
  private sending: Promise<void> | null = null;

  constructor(private readonly host: AckHost) {}

  /** The confirmation waiting for the frames to leave, if any (stop waits for it before the stream's last status update). */
  get acking(): Promise<void> | null {
    return this.sending;
  }

  /** Every change up to `lsn` was handed out (its frames leave this loop turn, or paced over the next few). */
  confirm(lsn: Lsn): void {
    if (this.host.published || this.host.drained) this.pending = lsn;
    else this.host.stream()?.ack(lsn);
  }

  /** The status update, after this turn's frames left; once the paced ones left too and, in a cluster, reached Redis. */
  sendStatus(): void {
    const lsn = this.pending;
    this.pending = null;
    const send = (): void => {
      if (lsn !== null && this.host.owns()) this.host.stream()?.ack(lsn);
      this.host.stream()?.flush();
    };
    const published = lsn === null ? null : (this.host.published?.() ?? null);
    const drained = lsn === null ? null : (this.host.drained?.() ?? null);
    if (published === null && drained === null) return send();
    const sending: Promise<void> = Promise.all([published, drained]).then(send, (err: unknown) => {
      // Not confirmed: whoever owns the tenant next hands these out again from the confirmed position.
      this.host.log.warn({ err }, 'events for other nodes did not reach Redis; their position is not confirmed');
    });
    this.sending = sending;
    void sending.finally(() => {
      if (this.sending === sending) this.sending = null;
    });
  }
}
