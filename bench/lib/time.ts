/** Monotonic microseconds (CLOCK_MONOTONIC is system-wide, so stamps compare across processes of this machine). */
export function nowUs(): number {
  const t = process.hrtime();
  return t[0] * 1e6 + Math.floor(t[1] / 1000);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitForCount {
  /** Stop after this long in all. */
  capMs: number;
  /** ...or after this long without progress. */
  stallMs: number;
  pollMs: number;
}

/**
 * Waits until `count()` reaches `expected`, stops growing for `stallMs`, or `capMs` passes; returns the last count.
 * How every bench waits for the last deliveries of a row.
 */
export async function waitForCount(count: () => number | Promise<number>, expected: number, o: WaitForCount): Promise<number> {
  const deadline = Date.now() + o.capMs;
  let last = await count();
  let lastChange = Date.now();
  while (last < expected && Date.now() < deadline) {
    await sleep(o.pollMs);
    const now = await count();
    if (now !== last) {
      last = now;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > o.stallMs) break;
  }
  return last;
}
