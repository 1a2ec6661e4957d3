import { PgoutputDecodeError } from './errors.js';
import type { Lsn } from './types.js';

export const INVALID_LSN: Lsn = 0n;
const MAX_LSN = 0xffff_ffff_ffff_ffffn;
// pg_lsn input accepts 1..8 hex digits on each side of the slash.
const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Formats like PostgreSQL's pg_lsn output: upper-case hex halves, no padding ("16/B374D848"). */
export function formatLsn(lsn: Lsn): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new RangeError(`LSN out of range: ${lsn}`);
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffff_ffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

/** Parses the "X/Y" text form (as accepted by pg_lsn); throws PgoutputDecodeError otherwise. */
export function parseLsn(text: string): Lsn {
  const m = LSN_TEXT.exec(text);
  if (m === null) throw new PgoutputDecodeError(`invalid LSN text ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}
