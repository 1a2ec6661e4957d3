/**
 * Runs one REST request's statement in its own transaction on a client of the tenant's pool, as PostgREST's
 * PreQuery does (spec baas-api.md §3.2): BEGIN (READ ONLY for reads), the request's settings set transaction-local
 * (role, JWT claims, method, path, headers, search_path, statement_timeout, timezone), the statement, then COMMIT or
 * ROLLBACK.
 *
 * Round trips: 4. BEGIN (simple query, constant text), the settings (ONE parameterized SELECT of set_config calls),
 * the statement, COMMIT. Postgres's extended protocol takes one statement per Parse and node-pg does not pipeline
 * queries on a client, so the settings cannot ride along with BEGIN without splicing values into SQL text; and they
 * cannot ride inside the statement itself, because a role set by set_config takes effect for the NEXT statement
 * (privileges and RLS policies are checked when a statement starts).
 */
import type pg from 'pg';
import type { BuiltStatement } from '../sql/statement.js';

export interface RequestSettings {
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

export interface StatementRow {
  total_result_set: string | null;
  page_total: string;
  body: string;
  response_inserted: number | null;
  location: string[];
}

/** What to do with the transaction once the result row is known: keep it, or roll it back and answer `error`. */
export type Verdict = { commit: boolean };

const SETTINGS_SQL =
  `SELECT set_config('search_path', $1, true), set_config('role', $2, true), set_config('request.jwt.claims', $3, true), ` +
  `set_config('request.jwt.claim.role', $2, true), set_config('request.jwt.claim.sub', $4, true), ` +
  `set_config('request.jwt.claim.email', $5, true), set_config('request.method', $6, true), ` +
  `set_config('request.path', $7, true), set_config('request.headers', $8, true), set_config('statement_timeout', $9, true)`;
const TIMEZONE_SQL = `, set_config('timezone', $10, true)`;

/**
 * Runs `statement` with `settings`; `decide` sees the result row and says whether to commit (tx=rollback, a
 * singular mutation that touched other than one row, say so). A failure rolls back and rethrows; a connection
 * that failed mid-way is destroyed, not returned to the pool.
 */
export async function runInTransaction<T>(
  pool: pg.Pool,
  statement: BuiltStatement,
  settings: RequestSettings,
  decide: (row: StatementRow) => { commit: boolean; result: T },
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(statement.readOnly ? 'BEGIN READ ONLY' : 'BEGIN READ WRITE');
    try {
      const values = [
        settings.searchPath, settings.role, settings.claimsJson, settings.sub, settings.email, settings.method,
        settings.path, settings.headersJson, String(settings.statementTimeoutMs),
        ...(settings.timezone !== undefined ? [settings.timezone] : []),
      ];
      await client.query(SETTINGS_SQL + (settings.timezone !== undefined ? TIMEZONE_SQL : ''), values);
      const { rows } = await client.query<StatementRow>(statement.text, statement.values);
      const { commit, result } = decide(rows[0]);
      await client.query(commit ? 'COMMIT' : 'ROLLBACK');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
      throw err;
    }
  } catch (err) {
    if (!(err instanceof Error && 'severity' in err)) broken ??= err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(broken);
  }
}
