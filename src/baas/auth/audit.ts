/**
 * The audit trail in `auth.audit_log_entries` (upstream models/audit_log_entry.go): one row per auth event with the
 * actor, the action, its log type and traits, and the caller's IP. Read back by GET /admin/audit.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { ModuleEvent } from '../../http/module-events.js';
import type { UserRow } from './users.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

export type AuditAction =
  | 'login' | 'logout' | 'user_signedup' | 'token_refreshed' | 'token_revoked' | 'user_modified' | 'user_deleted'
  | 'user_recovery_requested' | 'user_confirmation_requested' | 'user_updated_password' | 'user_repeated_signup'
  | 'user_invited' | 'invite_accepted' | 'factor_in_progress' | 'verification_attempted' | 'mfa_code_login'
  | 'factor_unenrolled' | 'email_not_sent' | 'generate_link' | 'magiclink_requested' | 'otp_requested';

const LOG_TYPE: Record<AuditAction, string> = {
  login: 'account', logout: 'account', invite_accepted: 'account', user_signedup: 'team', user_invited: 'team',
  user_deleted: 'team', token_revoked: 'token', token_refreshed: 'token', user_modified: 'user',
  user_recovery_requested: 'user', user_confirmation_requested: 'user', user_updated_password: 'user',
  user_repeated_signup: 'user', factor_in_progress: 'factor', verification_attempted: 'factor', mfa_code_login: 'factor',
  factor_unenrolled: 'factor', email_not_sent: 'user', generate_link: 'user', magiclink_requested: 'user', otp_requested: 'user',
};

export interface AuditActor {
  id: string;
  username: string;
}

export function actorOf(user: UserRow): AuditActor {
  return { id: user.id, username: user.email ?? user.phone ?? '' };
}

/** The service role acting through the admin API. */
export const ADMIN_ACTOR: AuditActor = { id: '00000000-0000-0000-0000-000000000000', username: 'service_role' };

/** The JSON payload of an audit row. */
export function auditPayload(actor: AuditActor, action: AuditAction, traits?: Record<string, unknown>): string {
  const payload: Record<string, unknown> = {
    actor_id: actor.id, actor_username: actor.username, actor_via_sso: false, action, log_type: LOG_TYPE[action],
  };
  if (traits && Object.keys(traits).length > 0) payload.traits = traits;
  return JSON.stringify(payload);
}

/**
 * The function-trigger event of each audit action (http/module-events.ts), named as the functions module documents
 * them. Actions that only ask for an e-mail or report a failure are not events.
 */
const EVENT_TYPE: Partial<Record<AuditAction, string>> = {
  user_signedup: 'user.created', login: 'user.signed_in', mfa_code_login: 'user.signed_in', logout: 'user.signed_out',
  token_refreshed: 'token.refreshed', token_revoked: 'token.revoked', user_modified: 'user.updated',
  user_updated_password: 'user.password_updated', user_deleted: 'user.deleted', user_invited: 'user.invited',
  invite_accepted: 'user.invite_accepted', user_recovery_requested: 'user.recovery_requested',
  factor_in_progress: 'mfa.factor_enrolled', factor_unenrolled: 'mfa.factor_unenrolled',
};

/** Where an audit row is written from: the caller's IP, and the events of the request, emitted once it committed. */
export interface AuditSite {
  ip: string;
  events?: ModuleEvent[];
}

/**
 * Notes the event of an audit row whose id is `auditId`: that id is the event id, so a row is one event however
 * often it is reported, and the event is emitted (module.ts) only once the row committed.
 */
export function noteAuditEvent(site: AuditSite, auditId: string, actor: AuditActor, action: AuditAction, traits?: Record<string, unknown>): void {
  const type = EVENT_TYPE[action];
  if (!site.events || type === undefined) return;
  // Admin actions name their user in the traits; the others are done by the user.
  const userId = typeof traits?.user_id === 'string' ? traits.user_id : actor.id;
  site.events.push({
    kind: 'auth', type, id: auditId, action,
    record: { user_id: userId, actor_id: actor.id, actor_username: actor.username, ...(traits ? { traits } : {}) },
    occurred_at: new Date().toISOString(),
  });
}

export async function audit(db: Queryable, actor: AuditActor, action: AuditAction, site: AuditSite, traits?: Record<string, unknown>): Promise<void> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
     VALUES ('00000000-0000-0000-0000-000000000000', $1, $2, clock_timestamp(), $3)`,
    [id, auditPayload(actor, action, traits), site.ip.slice(0, 64)],
  );
  noteAuditEvent(site, id, actor, action, traits);
}

export interface AuditPage {
  entries: { id: string; payload: unknown; created_at: string; ip_address: string }[];
  total: number;
}

/** Newest first, as upstream's admin listing; `query` filters on actor, action or type (substring). */
export async function listAudit(db: Queryable, page: number, perPage: number, query: string | null): Promise<AuditPage> {
  const filter = query === null ? '' : `WHERE payload->>'actor_username' ILIKE $3 OR payload->>'action' ILIKE $3 OR payload->>'log_type' ILIKE $3`;
  const values: unknown[] = [perPage, (page - 1) * perPage];
  if (query !== null) values.push(`%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  const { rows } = await db.query<{ id: string; payload: unknown; created_at: Date; ip_address: string; total: string }>(
    `SELECT id, payload, created_at, ip_address, count(*) OVER () AS total FROM auth.audit_log_entries ${filter}
      ORDER BY created_at DESC, id LIMIT $1 OFFSET $2`,
    values,
  );
  let total = rows.length > 0 ? Number(rows[0].total) : 0;
  if (rows.length === 0 && page > 1) {
    const counted = await db.query<{ n: string }>(`SELECT count(*) AS n FROM auth.audit_log_entries ${filter.replaceAll('$3', '$1')}`, query === null ? [] : [values[2]]);
    total = Number(counted.rows[0].n);
  }
  return { entries: rows.map((r) => ({ id: r.id, payload: r.payload, created_at: r.created_at.toISOString(), ip_address: r.ip_address })), total };
}
