import type { RealtimeChannel } from '@supabase/supabase-js';
import { sleep, waitForEvent } from './server.js';

/** Subscribes a supabase-js channel: 'SUBSCRIBED', or the status and error message realtime-js reports. */
export function subscribed(channel: RealtimeChannel, ms = 10_000): Promise<string> {
  return waitForEvent<string>((cb) => {
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED') cb(status);
      else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') cb(`${status}: ${err?.message ?? ''}`);
    });
  }, ms, 'subscription');
}

/** Subscribes and waits for the postgres_changes `system` message: `ok: Subscribed to PostgreSQL` or the error. */
export function subscribedToPostgres(channel: RealtimeChannel, ms = 15_000): Promise<string> {
  return waitForEvent<string>((cb) => {
    channel.on('system', {}, (m: { extension?: string; status: string; message: string }) => {
      if (m.extension === 'postgres_changes') cb(`${m.status}: ${m.message}`);
    });
    channel.subscribe((status, err) => {
      if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') cb(`${status}: ${err?.message ?? ''}`);
    });
  }, ms, 'Subscribed to PostgreSQL');
}

/** Polls until the condition holds, or fails the test after `ms`. */
export async function until(pred: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what} not met in time`);
    await sleep(20);
  }
}
