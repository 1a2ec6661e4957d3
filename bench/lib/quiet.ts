import { cpuOf, machineCpuSeconds } from './cpu.js';
import { sleep } from './time.js';

/**
 * The machine is shared (other people's test runs come and go). Before a row a bench waits, bounded per wait and per
 * run, until processes outside the bench use little CPU; after a row that other load disturbed, it runs the row
 * again (bounded too) and keeps the quietest attempt. The CPU used outside the bench is reported with every row.
 */
export interface QuietOptions {
  /** CPU % of one core used outside the bench, over about half a second. */
  measure: () => Promise<number>;
  /** Wait until outside load is at most this. */
  maxOtherPct: number;
  /** Longest single wait. */
  perWaitMs: number;
  /** Total waiting allowed in the run (0: never wait). */
  budgetMs: number;
  /** Total time allowed in the run for repeated rows. */
  repeatBudgetMs: number;
}

export class QuietMachine {
  private waitedMs = 0;
  private repeatedMs = 0;

  constructor(private readonly o: QuietOptions) {}

  /** Waits for a quiet machine (at most `capMs` more); returns the last reading (NaN when waiting is off). */
  async wait(capMs = Infinity): Promise<number> {
    if (this.o.budgetMs <= 0) return NaN;
    const started = Date.now();
    const deadline = started + Math.min(this.o.perWaitMs, capMs, Math.max(0, this.o.budgetMs - this.waitedMs));
    let other = NaN;
    for (let i = 0; i < 1000; i++) {
      other = await this.o.measure();
      if (other <= this.o.maxOtherPct || Date.now() >= deadline) break;
    }
    const waited = Date.now() - started;
    // The first reading is the price of asking, not waiting.
    this.waitedMs += Math.max(0, waited - 600);
    if (waited > 1500) console.log(`  (waited ${(waited / 1000).toFixed(1)} s for outside load to pass; now ${Math.round(other)} % of a core)`);
    return other;
  }

  /**
   * Runs a row after a wait; while outside load during it (`otherOf`) was above `maxOtherPct`, runs it again (up to
   * `attempts` in all, within the run's repeat budget and while `canRepeat` agrees) and keeps the quietest attempt.
   */
  async best<T>(
    run: () => Promise<T>,
    otherOf: (row: T) => number,
    o: { maxOtherPct: number; attempts: number; canRepeat?: (row: T) => boolean },
  ): Promise<{ row: T; attempts: number }> {
    let kept: T | null = null;
    let attempt = 0;
    while (attempt < o.attempts) {
      await this.wait();
      const t0 = Date.now();
      const row = await run();
      if (attempt++ > 0) this.repeatedMs += Date.now() - t0;
      if (kept === null || otherOf(row) < otherOf(kept)) kept = row;
      if (otherOf(row) <= o.maxOtherPct) break;
      const again = attempt < o.attempts && this.repeatedMs < this.o.repeatBudgetMs && (o.canRepeat?.(row) ?? true);
      console.log(`  (outside load ${Math.round(otherOf(row))} % of a core during the row; ${again ? 'running it again' : 'kept the quietest attempt'})`);
      if (!again) break;
    }
    return { row: kept as T, attempts: attempt };
  }
}

/** Outside load over `ms`: machine-wide busy CPU minus what the bench's processes (`pids()`) used, in % of a core. */
export async function otherLoadPct(pids: () => readonly number[], ms = 500): Promise<number> {
  const m0 = machineCpuSeconds().busy;
  const o0 = cpuOf(pids());
  await sleep(ms);
  return (100 * (machineCpuSeconds().busy - m0 - (cpuOf(pids()) - o0))) / (ms / 1000);
}
