/**
 * Runs one REST request's statement in its own transaction on a client of the tenant's pool, as PostgREST's
 * PreQuery does (spec baas-api.md §3.2): the request's settings transaction-local (role, JWT claims, method, path,
 * headers, search_path, statement_timeout, timezone, read-only for reads), then the statement.
 *
 * Round trips: 1 in the common case. The settings statement (ONE parameterized SELECT of set_config calls) and the
 * main statement are written together with a single Sync (http/exchange.ts), so they share Postgres's implicit
 * transaction, which the Sync commits: no BEGIN, no COMMIT. They cannot be one statement: a role set by set_config
 * applies from the NEXT statement on (privileges and RLS policies are checked when a statement starts).
 * tx=rollback writes BEGIN … ROLLBACK around them, still 1 round trip. A singular mutation (`Accept:
 * application/vnd.pgrst.object+json` on a write) needs 2: its COMMIT or ROLLBACK depends on how many rows it
 * touched, known only from the result. An error in an explicit transaction costs one more (ROLLBACK).
 */
import type pg from 'pg';
import type { ResultFields } from '../sql/result.js';
import type { BuiltStatement } from '../sql/statement.js';
import { RequestExchange } from './exchange.js';

export interface RequestSettings {
  /** The role claim; only a role `authenticator` belongs to is taken (migration 21, realtime.performer_api_role). */
  role: string;
  /** The verified claims as JSON, `role` forced to the effective role. */
  claimsJson: string;
  sub: string;
  email: string;
  method: string;
  path: string;
  headersJson: string;
  /** Already a quoted identifier list. */
  searchPath: string;
  statementTimeoutMs: number;
  timezone?: string;
}

/**
 * `implicit`: the Sync commits. `rollback`: BEGIN … ROLLBACK (tx=rollback). `decide`: BEGIN, then `decide()` says
 * COMMIT or ROLLBACK once the statement ran.
 */
export type TransactionMode = 'implicit' | 'rollback' | 'decide';

const SETTINGS_SQL =
  `SELECT set_config('search_path', $1, true), set_config('role', realtime.performer_api_role($2), true), set_config('request.jwt.claims', $3, true), ` +
  `set_config('request.jwt.claim.role', $2, true), set_config('request.jwt.claim.sub', $4, true), ` +
  `set_config('request.jwt.claim.email', $5, true), set_config('request.method', $6, true), ` +
  `set_config('request.path', $7, true), set_config('request.headers', $8, true), set_config('statement_timeout', $9, true)`;
const TIMEZONE_SQL = `, set_config('timezone', $10, true)`;
// Setting it on is allowed at any point of a transaction (only going back to read-write is not).
const READ_ONLY_SQL = `, set_config('transaction_read_only', 'on', true)`;

/** The four texts, made once (a concatenation per request is a new string for pg to flatten and encode). */
const SETTINGS_TEXTS = [SETTINGS_SQL, SETTINGS_SQL + READ_ONLY_SQL, SETTINGS_SQL + TIMEZONE_SQL, SETTINGS_SQL + TIMEZONE_SQL + READ_ONLY_SQL];

export function settingsStatement(settings: RequestSettings, readOnly: boolean): { text: string; values: string[] } {
  const values = [
    settings.searchPath, settings.role, settings.claimsJson, settings.sub, settings.email, settings.method,
    settings.path, settings.headersJson, String(settings.statementTimeoutMs),
    ...(settings.timezone !== undefined ? [settings.timezone] : []),
  ];
  return { text: SETTINGS_TEXTS[(settings.timezone !== undefined ? 2 : 0) + (readOnly ? 1 : 0)]!, values };
}

export interface RunOptions {
  mode: TransactionMode;
  /** Each row of the statement's result, as text fields; throwing fails the request (rolled back). */
  onRow: (fields: ResultFields) => void;
  /** Gets the exchange as soon as it exists (to pause and resume reading for backpressure). */
  onStart?: (exchange: RequestExchange) => void;
  /** `decide` mode: commit? Called after the statement ran and every row was delivered. */
  decide?: () => boolean;
}

/**
 * Runs `statement` with `settings`. A failure is rolled back and rethrown; a connection that failed mid-way is
 * destroyed, not returned to the pool.
 */
export async function runRequest(pool: pg.Pool, statement: BuiltStatement, settings: RequestSettings, options: RunOptions): Promise<void> {
  const client = await pool.connect();
  const explicit = options.mode !== 'implicit';
  let broken: Error | undefined;
  try {
    const exchange = new RequestExchange(
      {
        ...(explicit ? { begin: statement.readOnly ? 'BEGIN READ ONLY' : 'BEGIN READ WRITE' } : {}),
        before: [settingsStatement(settings, statement.readOnly && !explicit)],
        main: { text: statement.text, values: statement.values },
        ...(options.mode === 'rollback' ? { after: 'ROLLBACK' } : {}),
      },
      options.onRow,
    );
    options.onStart?.(exchange);
    try {
      await (client.query(exchange as never) as unknown as RequestExchange).done;
      if (options.mode === 'decide') await client.query(options.decide?.() ? 'COMMIT' : 'ROLLBACK');
    } catch (err) {
      if (explicit) await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
      throw err;
    }
  } catch (err) {
    if (!(err instanceof Error && 'severity' in err) && !isRequestRefusal(err)) broken ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Errors thrown by our own row handler (a RestError, say) leave the connection healthy. */
function isRequestRefusal(err: unknown): boolean {
  return err instanceof Error && typeof (err as { status?: unknown }).status === 'number';
}
