/**
 * The HTTP answer of a REST request from the first row of its statement's result (spec baas-api.md §1.3, §1.5):
 * status, Content-Range, Location, Content-Type, and whether the body Postgres built is sent; and errors in
 * PostgREST's shape (§1.6).
 */
import type { PreparedRequest } from '../request.js';
import { RestError, statusForPostgresError, type RestErrorBody } from '../errors.js';
import { contentRange, readStatus } from '../grammar/range.js';
import type { BuiltStatement } from '../sql/statement.js';
import type { ResultMeta } from '../sql/result.js';

export interface Answer {
  status: number;
  headers: [string, string][];
  /** False: an empty body (whatever the rows say). */
  body: boolean;
  /** Null: no Content-Type (204, minimal writes; HEAD answers keep the type). */
  contentType: string | null;
}

/** Rows as bigints; a singular request that did not get exactly one row is PGRST116 (the caller rolls back). */
export function answerFor(prepared: PreparedRequest, built: BuiltStatement, row: ResultMeta): Answer {
  const page = BigInt(row.page);
  const counted = prepared.preferences.count !== undefined;
  const singular = prepared.output.format === 'singular';
  if (singular && page !== 1n && !(built.kind !== 'read' && built.kind !== 'call' && prepared.preferences.representation !== 'full')) {
    throw RestError.singularity(page);
  }
  const headers: [string, string][] = [];
  const type = prepared.output.contentType;
  if (built.kind === 'read' || built.kind === 'call') {
    const total = row.total === null ? null : BigInt(row.total);
    const { status, contentRange: range } = readStatus(prepared.topRange, page, total);
    if (status === 416 && total !== null) {
      throw RestError.invalidRange({ kind: 'out-of-bounds', lower: String(prepared.topRange.offset), total: String(total) });
    }
    headers.push(['content-range', range]);
    if (built.returnsVoid) return { status: 204, headers, body: false, contentType: null };
    return { status, headers, body: prepared.method !== 'HEAD', contentType: type };
  }
  const total = counted ? page : null;
  // As PostgREST's Response.hs: an insert or delete has no range (`*/total`), an update `0-(n-1)/total`.
  headers.push(['content-range', built.kind === 'update' ? contentRange(0n, page - 1n, total) : contentRange(1n, 0n, total)]);
  const representation = prepared.preferences.representation;
  if (built.kind === 'insert') {
    if (representation === 'headers-only' && row.location.length > 0 && prepared.target.kind === 'relation') {
      headers.push(['location', `/${encodeURIComponent(prepared.target.name)}?${row.location.map(encodeLocationPair).join('&')}`]);
    }
    // An upsert that inserted nothing (every row updated, or an empty payload) is 200, as PostgREST 12+.
    const status = row.inserted === 0 ? 200 : 201;
    return representation === 'full' ? { status, headers, body: true, contentType: type } : { status, headers, body: false, contentType: null };
  }
  return representation === 'full' ? { status: 200, headers, body: true, contentType: type } : { status: 204, headers, body: false, contentType: null };
}

/** `col=eq.value` with the value percent-encoded (it is data, and may hold `&`). */
function encodeLocationPair(pair: string): string {
  const eq = pair.indexOf('=');
  return `${encodeURIComponent(pair.slice(0, eq))}=${encodeURIComponent(pair.slice(eq + 1))}`;
}

/** A Postgres error as node-pg raises it. */
interface DatabaseError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  severity: string;
}

export function isDatabaseError(err: unknown): err is DatabaseError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && typeof (err as { severity?: unknown }).severity === 'string';
}

/** PostgREST's status and body for a Postgres error (§1.6): SQLSTATE as `code`, the four keys always present. */
export function databaseErrorAnswer(err: DatabaseError, role: string): { status: number; body: RestErrorBody } {
  const status = statusForPostgresError(err.code, err.message, role !== 'anon');
  return { status, body: { code: err.code, message: err.message, details: err.detail ?? null, hint: err.hint ?? null } };
}
