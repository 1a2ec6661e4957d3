import type { PgTimestamp } from './types.js';

/** 2000-01-01T00:00:00Z in Unix epoch milliseconds: PostgreSQL's timestamp epoch. */
export const PG_EPOCH_MS = 946_684_800_000;
const PG_EPOCH_US = BigInt(PG_EPOCH_MS) * 1000n;

// PostgreSQL encodes timestamp 'infinity' / '-infinity' as the int64 extremes.
export const PG_TIMESTAMP_INFINITY: PgTimestamp = 0x7fff_ffff_ffff_ffffn;
export const PG_TIMESTAMP_NEG_INFINITY: PgTimestamp = -0x8000_0000_0000_0000n;

/** Floor division so pre-2000 timestamps round towards the past like the later ones do. */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** Unix epoch milliseconds (sub-millisecond part floored). */
export function pgTimestampToEpochMs(ts: PgTimestamp): number {
  return Number(floorDiv(ts + PG_EPOCH_US, 1000n));
}

/** Unix epoch microseconds, exact. */
export function pgTimestampToEpochMicros(ts: PgTimestamp): bigint {
  return ts + PG_EPOCH_US;
}

/** Millisecond precision; an Invalid Date for values outside the JS Date range (incl. infinities). */
export function pgTimestampToDate(ts: PgTimestamp): Date {
  return new Date(pgTimestampToEpochMs(ts));
}

/**
 * ISO-8601 in UTC. 'ms' matches Date#toISOString; 'us' keeps PostgreSQL's full
 * microsecond precision. Infinities render as PostgreSQL spells them.
 * @throws RangeError when the value is outside the JS Date range.
 */
export function pgTimestampToIsoString(ts: PgTimestamp, precision: 'ms' | 'us' = 'ms'): string {
  if (ts === PG_TIMESTAMP_INFINITY) return 'infinity';
  if (ts === PG_TIMESTAMP_NEG_INFINITY) return '-infinity';
  const d = pgTimestampToDate(ts);
  if (Number.isNaN(d.getTime())) throw new RangeError(`timestamp outside the Date range: ${ts}`);
  const iso = d.toISOString();
  if (precision === 'ms') return iso;
  const micros = ts - floorDiv(ts, 1000n) * 1000n;
  return `${iso.slice(0, -1)}${micros.toString().padStart(3, '0')}Z`;
}

/** Converts Unix epoch milliseconds (e.g. Date.now()) to a PostgreSQL timestamp. */
export function epochMsToPgTimestamp(ms: number): PgTimestamp {
  if (!Number.isFinite(ms)) throw new RangeError(`not a finite epoch ms value: ${ms}`);
  // Split so large values do not lose precision in ms * 1000, while keeping
  // sub-millisecond fractions (performance.timeOrigin + now() style inputs).
  const whole = Math.floor(ms);
  const micros = BigInt(whole) * 1000n + BigInt(Math.round((ms - whole) * 1000));
  return micros - PG_EPOCH_US;
}

export function dateToPgTimestamp(date: Date): PgTimestamp {
  return epochMsToPgTimestamp(date.getTime());
}
