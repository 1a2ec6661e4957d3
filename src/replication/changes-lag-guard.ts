import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import type { TrackedSlot } from './changes-slot.js';

/** What the lag guard of a changes engine needs from it. */
export interface LagGuardHost {
  tracked: TrackedSlot;
  pool: () => Promise<pg.Pool>;
  /** When the slot is this many bytes behind while streaming, subscribers are told and the slot is recreated. */
  maxLagBytes: number;
  log: Logger;
  stopped(): boolean;
  /** Whether the stream is up: the guard applies only then. */
  streaming(): boolean;
  /** Tells every live subscriber (a `system` error). */
  tell(message: string): void;
  /** Stops the stream, drops the slot, forgets what was waiting or held, and streams again from a new slot. */
  recreate(pool: pg.Pool): Promise<void>;
}

/**
 * Measures the slot (metrics, growth warnings) and, while streaming, applies the lag guard: a slot too far behind
 * is dropped and created again, and its subscribers are told that changes were skipped (upstream's behaviour).
 */
export async function checkSlotLag(host: LagGuardHost): Promise<void> {
  if (host.stopped()) return;
  try {
    const pool = await host.pool();
    // Measured while the stream is down too: a slot nobody reads is the one that piles up WAL.
    const lag = (await host.tracked.measure(pool))?.lagBytes ?? 0;
    if (!host.streaming() || lag <= host.maxLagBytes) return;
    host.log.error({ error_code: 'ReplicationLagExceeded', lag_bytes: lag, max: host.maxLagBytes }, 'changes slot too far behind; recreating it');
    host.tell(`Replication lag of ${lag} bytes exceeded the limit of ${host.maxLagBytes} bytes; changes were skipped and the replication slot was recreated`);
    await host.recreate(pool);
  } catch (err) {
    // A database that is down is reported by its own probe; this check only adds to it while streaming.
    if (host.streaming()) host.log.warn({ err }, 'replication lag check failed');
    else host.log.debug({ err }, 'replication lag check failed');
  }
}

/** When an engine without subscribers has been idle long enough for its slot to be dropped. */
export class IdleClock {
  private since = Date.now();

  constructor(private readonly dropAfterMs: number) {}

  /** Subscribers came or the last one left: idle time counts from now. */
  reset(): void {
    this.since = Date.now();
  }

  /** True when nobody subscribes and nobody has for dropAfterMs. */
  due(subscribers: number): boolean {
    return subscribers === 0 && Date.now() - this.since >= this.dropAfterMs;
  }
}
