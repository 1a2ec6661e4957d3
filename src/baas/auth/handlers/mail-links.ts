/**
 * E-mail links and codes (GoTrue's mailer flow): one 6-digit code per mail, its SHA-224 hash with the address is the
 * link's token and what is stored (users.<kind>_token and auth.one_time_tokens), so the code typed in and the link
 * clicked verify against the same row. Without SMTP the mail is recorded in the audit log instead of sent.
 */
import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { actorOf, audit } from '../audit.js';
import type { AuthCall } from '../call.js';
import { AuthError } from '../errors.js';
import type { MailKind } from '../mailer.js';
import { newOtp } from '../tokens.js';
import { updateUser, type UserRow } from '../users.js';
import { recordFlow } from './pkce.js';

type Queryable = Pick<pg.ClientBase, 'query'>;

/** The verification `type` a link carries, the users column and the one-time token type of each kind of mail. */
export const LINK_KINDS: Record<MailKind, { type: string; column: string; tokenType: string; sentAt: string }> = {
  confirmation: { type: 'signup', column: 'confirmation_token', tokenType: 'confirmation_token', sentAt: 'confirmation_sent_at' },
  invite: { type: 'invite', column: 'confirmation_token', tokenType: 'confirmation_token', sentAt: 'invited_at' },
  magiclink: { type: 'magiclink', column: 'recovery_token', tokenType: 'recovery_token', sentAt: 'recovery_sent_at' },
  recovery: { type: 'recovery', column: 'recovery_token', tokenType: 'recovery_token', sentAt: 'recovery_sent_at' },
  email_change: { type: 'email_change', column: 'email_change_token_new', tokenType: 'email_change_token_new', sentAt: 'email_change_sent_at' },
};

export function tokenHash(email: string, otp: string): string {
  return createHash('sha224').update(email + otp).digest('hex');
}

export interface IssuedLink {
  otp: string;
  hashedToken: string;
  link: string;
  type: string;
  redirectTo: string;
}

/** Stores a new code for `kind` on `user` and builds its link (no mail sent). */
export async function issueLink(call: AuthCall, db: Queryable, user: UserRow, kind: MailKind, address = user.email ?? ''): Promise<IssuedLink> {
  const { type, column, tokenType, sentAt } = LINK_KINDS[kind];
  const otp = newOtp();
  // A PKCE request's token carries the prefix, so the link's verification knows to answer with an auth code.
  const hashedToken = (await recordFlow(call, db, user.id, kind)) + tokenHash(address, otp);
  // Column names come from LINK_KINDS, never from the request.
  await db.query(`UPDATE auth.users SET ${column} = $2, ${sentAt} = now(), updated_at = now() WHERE id = $1`, [user.id, hashedToken]);
  await db.query(
    `INSERT INTO auth.one_time_tokens (id, user_id, token_type, token_hash, relates_to, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, now(), now())
     ON CONFLICT (user_id, token_type) DO UPDATE SET token_hash = EXCLUDED.token_hash, relates_to = EXCLUDED.relates_to, updated_at = now()`,
    [randomUUID(), user.id, tokenType, hashedToken, address],
  );
  const redirectTo = redirectTarget(call);
  const link = `${call.baseUrl}/auth/v1/verify?token=${hashedToken}&type=${type}&redirect_to=${encodeURIComponent(redirectTo)}`;
  return { otp, hashedToken, link, type, redirectTo };
}

/**
 * Where a verified link leads: the request's redirect_to (query or body) when it is allowed, else the site URL. As
 * GoTrue's isRedirectURLValid: the site URL's host, or an entry of the allow list; anything else would hand the
 * session in the fragment to whoever asked for the mail.
 */
export function redirectTarget(call: AuthCall): string {
  const site = call.config.siteUrl ?? call.baseUrl;
  const asked = call.query.get('redirect_to') ?? (typeof call.body.redirect_to === 'string' ? call.body.redirect_to : null);
  if (asked === null || asked.length > 2048) return site;
  return redirectAllowed(asked, site, call.config.uriAllowList) ? asked : site;
}

export function redirectAllowed(target: string, site: string, allowList: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && !allowList.some((p) => target.startsWith(p))) return false;
  if (url.hostname === new URL(site).hostname) return true;
  return allowList.some((pattern) => globToRegExp(pattern).test(target));
}

/** An allow-list entry: `*` matches within a path segment or host label, `**` across; otherwise a prefix. */
function globToRegExp(pattern: string): RegExp {
  // A plain entry is a prefix that ends at a boundary: `https://app.io` must not admit `https://app.io.evil.net`.
  if (!pattern.includes('*')) return new RegExp(`^${pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}${pattern.endsWith('/') ? '' : '(?:$|[/?#])'}`);
  const body = pattern
    .split('**')
    .map((part) => part.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/.]*'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/**
 * Issues a code for `kind` and mails it (to `address`, default the user's e-mail), within the per-address frequency
 * (429 over_email_send_rate_limit). Returns the updated user.
 */
export async function sendLinkMail(call: AuthCall, db: Queryable, user: UserRow, kind: MailKind, address = user.email ?? ''): Promise<UserRow> {
  const wait = call.limits.email.wait(`${call.tenant.settings.externalId}|${address}`);
  if (wait > 0) throw new AuthError(429, 'over_email_send_rate_limit', `For security purposes, you can only request this after ${wait} seconds.`);
  const issued = await issueLink(call, db, user, kind, address);
  if (call.mailer.enabled) {
    try {
      await call.mailer.send({ kind, to: address, link: issued.link, otp: issued.otp });
    } catch (err) {
      call.tenant.log.warn({ err, error_code: 'AuthMailFailed' }, 'auth e-mail could not be sent');
      throw new AuthError(500, 'unexpected_failure', 'Error sending email');
    }
  } else {
    // No SMTP: the mail is on record (kind and address, never the code) for the operator, and in this node's
    // memory with its code for the management API (unsent-mails.ts).
    await audit(db, actorOf(user), 'email_not_sent', call, { mail: kind, to: address });
    call.unsentMails.push({ kind, to: address, link: issued.link, otp: issued.otp });
  }
  // An invite is recorded by its caller, as the admin's act.
  const requested = ({ recovery: 'user_recovery_requested', confirmation: 'user_confirmation_requested', magiclink: 'magiclink_requested', email_change: 'user_modified', invite: null } as const)[kind];
  if (requested !== null) await audit(db, actorOf(user), requested, call);
  return (await updateUser(db, user.id, {}));
}
