import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Observer } from '../observability/metrics.js';
import { guardLent, type Loan } from './lend.js';

/**
 * Running tenant-database statements as a channel's user (spec §4.8): a transaction that is always rolled back,
 * with the caller's role, JWT claims, topic and headers set transaction-locally, exactly where RLS policies and
 * auth.uid() / auth.role() / realtime.topic() read them. Shared by private-channel authorization and replay.
 */

/** Who is asking, about which topic. */
export interface RlsRequest {
  /** The sub-topic (without `realtime:`), what realtime.topic() returns. */
  topic: string;
  /** The verified JWT claims, exposed as request.jwt.claims. */
  claims: Record<string, unknown>;
  /** Database role to act as; defaults to the `role` claim. */
  role?: string;
  /** Exposed as request.headers (sockets: the x-* upgrade headers; REST: all request headers). */
  headers?: Record<string, string | string[] | undefined>;
}

/** Failures that are not an answer to "may they?", with the upstream code. */
export type RlsFailure =
  | { code: 'RlsPolicyError'; message: string }
  | { code: 'QueryCanceled'; message: string }
  | { code: 'MissingPartition'; message: string }
  | { code: 'IncreaseConnectionPool'; message: string }
  | { code: 'UnableToConnect'; message: string };

export type RlsOutcome<T> = { ok: true; value: T } | { ok: false; failure: RlsFailure };

export interface RlsOptions {
  /** statement_timeout for the statements run as the user, so a slow policy cannot hold a connection. Default 5 s. */
  statementTimeoutMs?: number;
  /** Window of the pool-exhaustion breaker. Default 30 s. */
  breakerWindowMs?: number;
  /** Receives the transaction's milliseconds, pool checkout included (what the caller waited), answer or failure. */
  latencyMs?: Observer;
  /**
   * What opens the transaction, in the same round trip: `BEGIN` (default), or BEGIN_WITH_TIMEOUT. A constant, never
   * text built from values.
   */
  begin?: typeof BEGIN | typeof BEGIN_WITH_TIMEOUT;
}

const BEGIN = 'BEGIN';
/** A transaction whose statements are cancelled after 5 s (one round trip for both). */
export const BEGIN_WITH_TIMEOUT = "BEGIN; SET LOCAL statement_timeout = '5s'";

const POOL_TIMEOUT = /timeout exceeded when trying to connect/i;

/** Pool checkout timeouts per pool (tenant); when a pool's worth pile up within the window, checks stop queueing. */
const breakers = new WeakMap<pg.Pool, number[]>();

/**
 * Runs fn in a transaction on a pool connection and always rolls back. Errors become typed failures; fn's
 * own expected errors (e.g. a denied insert) must be handled inside fn. The connection is discarded if the
 * error left it unusable.
 */
export async function inRolledBackTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  opts: RlsOptions = {},
): Promise<RlsOutcome<T>> {
  const windowMs = opts.breakerWindowMs ?? 30_000;
  if (breakerOpen(pool, windowMs)) {
    return { ok: false, failure: { code: 'IncreaseConnectionPool', message: 'too many connection pool timeouts' } };
  }
  const begin = opts.begin ?? BEGIN;
  if (!opts.latencyMs) return rolledBack(pool, fn, windowMs, begin);
  const started = performance.now();
  try {
    return await rolledBack(pool, fn, windowMs, begin);
  } finally {
    opts.latencyMs.observe(performance.now() - started);
  }
}

async function rolledBack<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, windowMs: number, begin: string): Promise<RlsOutcome<T>> {
  let loan: Loan;
  try {
    loan = guardLent(await pool.connect());
  } catch (err) {
    const message = errorMessage(err);
    if (POOL_TIMEOUT.test(message)) {
      recordPoolTimeout(pool, windowMs);
      return { ok: false, failure: { code: 'IncreaseConnectionPool', message } };
    }
    return { ok: false, failure: { code: 'UnableToConnect', message } };
  }
  const client = loan.client;
  let broken: Error | undefined;
  try {
    await client.query(begin);
    return { ok: true, value: await fn(client) };
  } catch (err) {
    const failure = classify(err);
    if (failure.code === 'UnableToConnect') broken = err instanceof Error ? err : new Error(failure.message);
    return { ok: false, failure };
  } finally {
    if (!broken) {
      await client.query('ROLLBACK').catch((err: unknown) => {
        broken = err instanceof Error ? err : new Error(String(err));
      });
    }
    loan.release(broken);
  }
}

/**
 * Switches the transaction to the caller: claims, topic, headers and statement timeout, then the role. One
 * parameterised statement, so nothing in the claims or role can inject SQL (set_config('role', …, true) is what
 * SET LOCAL ROLE does, without splicing an identifier into the text). The role comes from pg_roles, so a role that
 * does not exist, or that the connecting user may not assume, matches no row and nothing is set: false (denied).
 * Must run inside a transaction (settings are transaction-local).
 */
export async function actAs(client: pg.ClientBase, req: RlsRequest, opts: RlsOptions = {}): Promise<boolean> {
  const role = req.role ?? (typeof req.claims.role === 'string' ? req.claims.role : '');
  if (role === '') return false;
  const sub = typeof req.claims.sub === 'string' ? req.claims.sub : '';
  const res = await client.query(
    `SELECT set_config('request.jwt.claims', $2, true),
            set_config('request.jwt.claim.sub', $3, true),
            set_config('request.jwt.claim.role', $1, true),
            set_config('realtime.topic', $4, true),
            set_config('request.headers', $5, true),
            set_config('statement_timeout', $6, true),
            set_config('role', r.rolname, true)
       FROM pg_catalog.pg_roles r
      WHERE r.rolname = $1 AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')`,
    [role, JSON.stringify(req.claims), sub, req.topic, JSON.stringify(req.headers ?? {}), String(opts.statementTimeoutMs ?? 5000)],
  );
  return res.rowCount === 1;
}

/** SQLSTATE of a Postgres error, if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Maps an error raised while acting as the user to its upstream failure code. */
export function classify(err: unknown): RlsFailure {
  const message = errorMessage(err);
  const code = sqlState(err);
  if (code === '57014') return { code: 'QueryCanceled', message };
  if (code === '23514') return { code: 'MissingPartition', message };
  // No SQLSTATE (socket errors), connection exceptions (08), shutdown/crash (57P01-57P03), too many connections.
  if (code === undefined || code.startsWith('08') || /^57P0[1-3]$/.test(code) || code === '53300') {
    return { code: 'UnableToConnect', message };
  }
  return { code: 'RlsPolicyError', message };
}

function breakerOpen(pool: pg.Pool, windowMs: number): boolean {
  const hits = breakers.get(pool);
  if (!hits) return false;
  prune(hits, windowMs);
  return hits.length >= Math.max(1, pool.options.max ?? 10);
}

function recordPoolTimeout(pool: pg.Pool, windowMs: number): void {
  let hits = breakers.get(pool);
  if (!hits) breakers.set(pool, (hits = []));
  prune(hits, windowMs);
  hits.push(Date.now());
}

function prune(hits: number[], windowMs: number): void {
  const cutoff = Date.now() - windowMs;
  while (hits.length > 0 && hits[0]! < cutoff) hits.shift();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
