import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { actAs, inRolledBackTransaction, sqlState, type RlsFailure, type RlsOptions, type RlsRequest } from '../db/rls.js';
import type { Logger } from '../observability/logger.js';

/**
 * Private channel authorization through RLS on realtime.messages (spec §4.8). Each check is one transaction on
 * the tenant's pool that is always rolled back, so nothing persists; many checks run side by side on as many
 * pool connections as the pool allows.
 */

export type { RlsFailure, RlsRequest } from '../db/rls.js';

export type Extension = 'broadcast' | 'presence';

export interface ReadCheck extends RlsRequest {
  /** Which extensions to check; default ['broadcast']. Presence only when presence is enabled on the channel. */
  extensions?: readonly Extension[];
}

export interface WriteCheck extends RlsRequest {
  extension: Extension;
}

export interface AuthorizationOptions extends RlsOptions {
  /** Receives RlsPolicyError lines (a policy that raised). */
  log?: Logger;
}

/** Read permissions, or why the question could not be answered. Extensions not checked are false. */
export type ReadAuthorization = { ok: true; broadcast: boolean; presence: boolean } | { ok: false; failure: RlsFailure };

export type WriteAuthorization = { ok: true; allowed: boolean } | { ok: false; failure: RlsFailure };

const DENIED = '42501'; // insufficient_privilege: also what an RLS WITH CHECK violation raises

/**
 * Read check: probe rows are inserted as the connecting (RLS-bypassing) user, then selected as the caller; a
 * visible probe means the caller may read that extension.
 */
export async function checkRead(pool: pg.Pool, check: ReadCheck, opts: AuthorizationOptions = {}): Promise<ReadAuthorization> {
  const extensions = check.extensions && check.extensions.length > 0 ? [...new Set(check.extensions)] : (['broadcast'] as Extension[]);
  const ids = extensions.map(() => randomUUID());
  const outcome = await inRolledBackTransaction(
    pool,
    async (client) => {
      await client.query(
        `INSERT INTO realtime.messages (id, topic, extension)
         SELECT probe.id, $2, probe.extension FROM unnest($1::uuid[], $3::text[]) AS probe(id, extension)`,
        [ids, check.topic, extensions],
      );
      if (!(await actAs(client, check, opts))) return new Set<string>();
      try {
        const res = await client.query<{ id: string }>('SELECT id::text AS id FROM realtime.messages WHERE id = ANY($1::uuid[])', [ids]);
        return new Set(res.rows.map((row) => row.id));
      } catch (err) {
        // No SELECT privilege at all is a plain "no", not a policy error.
        if (sqlState(err) === DENIED) return new Set<string>();
        throw err;
      }
    },
    opts,
  );
  if (!outcome.ok) return failed(outcome.failure, check, opts);
  const visible = (ext: Extension) => {
    const i = extensions.indexOf(ext);
    return i >= 0 && outcome.value.has(ids[i]!);
  };
  return { ok: true, broadcast: visible('broadcast'), presence: visible('presence') };
}

/** Write check: insert a row for the extension as the caller; success means allowed, an RLS violation denied. */
export async function checkWrite(pool: pg.Pool, check: WriteCheck, opts: AuthorizationOptions = {}): Promise<WriteAuthorization> {
  // One insert in a transaction that is rolled back anyway, so a savepoint around it would add nothing.
  const outcome = await inRolledBackTransaction(
    pool,
    async (client) => {
      if (!(await actAs(client, check, opts))) return false;
      try {
        await client.query('INSERT INTO realtime.messages (topic, extension) VALUES ($1, $2)', [check.topic, check.extension]);
        return true;
      } catch (err) {
        if (sqlState(err) === DENIED) return false;
        throw err;
      }
    },
    opts,
  );
  if (!outcome.ok) return failed(outcome.failure, check, opts);
  return { ok: true, allowed: outcome.value };
}

function failed(failure: RlsFailure, check: RlsRequest, opts: AuthorizationOptions): { ok: false; failure: RlsFailure } {
  const level = failure.code === 'RlsPolicyError' ? 'warn' : 'error';
  opts.log?.[level]({ error_code: failure.code, topic: check.topic, reason: failure.message }, 'private channel authorization failed');
  return { ok: false, failure };
}

/** The join refusal (spec §3.3 row 9) for a failed read check; a policy error reads as unauthorized. */
export function joinRefusal(failure: RlsFailure, subTopic: string): string {
  switch (failure.code) {
    case 'RlsPolicyError':
      return `Unauthorized: You do not have permissions to read from this Channel topic: ${subTopic}`;
    case 'IncreaseConnectionPool':
      return 'IncreaseConnectionPool: Please increase your connection pool size';
    case 'UnableToConnect':
      return 'Realtime was unable to connect to the project database';
    case 'QueryCanceled':
      return `QueryCanceled: ${failure.message}`;
    case 'MissingPartition':
      return 'MissingPartition: Realtime was unable to find the expected messages partition';
  }
}

/** The REST answer (spec §4.5, single-message endpoint) for a failed write check. A plain denial is 403. */
export function restRefusal(failure: RlsFailure): { status: number; message: string } {
  switch (failure.code) {
    case 'RlsPolicyError':
      return { status: 422, message: 'RLS policy error' };
    case 'QueryCanceled':
      return { status: 422, message: 'Query canceled' };
    case 'MissingPartition':
      return { status: 422, message: 'Missing messages partition' };
    case 'IncreaseConnectionPool':
      return { status: 429, message: 'Connection pool exhausted' };
    case 'UnableToConnect':
      return { status: 422, message: 'Tenant database unavailable' };
  }
}
