export { createPgoutputContext, decodePgoutput } from './decode.js';
export { PgoutputDecodeError } from './errors.js';
export { INVALID_LSN, formatLsn, parseLsn } from './lsn.js';
export { RelationCache } from './relation-cache.js';
export type { ZippedColumn, ZippedTuple } from './relation-cache.js';
export {
  PG_EPOCH_MS,
  PG_TIMESTAMP_INFINITY,
  PG_TIMESTAMP_NEG_INFINITY,
  dateToPgTimestamp,
  epochMsToPgTimestamp,
  pgTimestampToDate,
  pgTimestampToEpochMicros,
  pgTimestampToEpochMs,
  pgTimestampToIsoString,
} from './time.js';
export { NULL_COLUMN, UNCHANGED_COLUMN } from './tuple.js';
export type * from './types.js';
