/**
 * Runs storage SQL in one transaction on the tenant's pool, as Supabase Storage's database scope does (spec
 * baas-api.md §3.2): for a caller, the role and JWT claims set transaction-local, both the modern
 * `request.jwt.claims` and the legacy single-claim settings, so `auth.uid()` and every policy on storage.objects and
 * storage.buckets apply; without a caller (public and signed-URL reads, bucket limits), as the pool's own user, which
 * owns the tables and so passes RLS, as upstream's `asSuperUser()`.
 */
import type pg from 'pg';
import type { Claims } from '../../auth/jwt.js';

export interface Caller {
  /** The role claim; only a role `authenticator` belongs to is taken (tenant migration 21, as REST). */
  role: string;
  claims: Claims;
  /** The raw token, `request.jwt` as upstream sets it. */
  token: string;
}

export type Sql = Pick<pg.PoolClient, 'query'>;

const CALLER_SETTINGS_SQL =
  `SELECT set_config('role', realtime.performer_api_role($1), true), set_config('request.jwt.claim.role', $1, true), set_config('request.jwt', $2, true), ` +
  `set_config('request.jwt.claim.sub', $3, true), set_config('request.jwt.claim.email', $4, true), ` +
  `set_config('request.jwt.claims', $5, true), set_config('request.method', $6, true), set_config('request.path', $7, true), ` +
  `set_config('storage.operation', $8, true), set_config('statement_timeout', $9, true)`;

export interface TransactionOptions {
  method: string;
  path: string;
  /** Upstream's `storage.operation` setting, e.g. `storage.object.upload`. */
  operation: string;
  statementTimeoutMs: number;
  /** Runs first in the transaction, before the caller's role and claims are set (e.g. reading a bucket's limits). */
  asPoolUser?: (sql: Sql) => Promise<void>;
}

/**
 * `work` inside BEGIN … COMMIT as `caller` (null = the pool's user). A failure rolls back and rethrows; a client whose
 * connection broke is destroyed rather than returned to the pool. An upload publishes its blob at the end of `work`,
 * just before COMMIT, so the row and the bytes become visible together.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  caller: Caller | null,
  options: TransactionOptions,
  work: (sql: Sql) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    try {
      await client.query('BEGIN');
    } catch (err) {
      broken = err instanceof Error ? err : new Error(String(err));
      throw err;
    }
    try {
      if (options.asPoolUser) await options.asPoolUser(client);
      if (caller) await client.query(CALLER_SETTINGS_SQL, callerValues(caller, options));
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      // A clean ROLLBACK means the connection is fine whatever `work` threw.
      await client.query('ROLLBACK').catch((rollbackErr: Error) => (broken = rollbackErr));
      throw err;
    }
  } finally {
    client.release(broken);
  }
}

function callerValues(caller: Caller, options: TransactionOptions): string[] {
  const claims: Record<string, unknown> = { ...caller.claims, role: caller.role };
  return [
    caller.role,
    caller.token,
    typeof claims.sub === 'string' ? claims.sub : '',
    typeof claims.email === 'string' ? claims.email : '',
    JSON.stringify(claims),
    options.method,
    options.path,
    options.operation,
    String(options.statementTimeoutMs),
  ];
}
