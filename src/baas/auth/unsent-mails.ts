/**
 * The e-mails not sent because AUTH_SMTP_URL is unset, kept so a developer can read their links and codes
 * (`GET /api/tenants/<tenant>/auth/mails`, management token only; `performer auth mails`). They hold secrets, so
 * they stay in this node's memory, never in the audit log or on disk: at most MAX_PER_TENANT per tenant, each for
 * MAX_AGE_MS (GoTrue's default code lifetime, past which the code no longer verifies anyway). A mail is kept only
 * once the transaction that issued its code committed (module.ts).
 */
import type { Mail } from './mailer.js';

export const MAX_PER_TENANT = 50;
export const MAX_AGE_MS = 3_600_000;

export interface UnsentMail extends Mail {
  created_at: string;
}

export class UnsentMails {
  private readonly byTenant = new Map<string, { mail: UnsentMail; at: number }[]>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxPerTenant = MAX_PER_TENANT,
    private readonly maxAgeMs = MAX_AGE_MS,
  ) {}

  add(tenant: string, mail: Mail): void {
    const at = this.now();
    const list = this.fresh(tenant);
    list.push({ mail: { ...mail, created_at: new Date(at).toISOString() }, at });
    if (list.length > this.maxPerTenant) list.splice(0, list.length - this.maxPerTenant);
    this.byTenant.set(tenant, list);
  }

  /** The newest `limit` mails of the tenant, newest first. */
  list(tenant: string, limit: number): UnsentMail[] {
    const list = this.fresh(tenant);
    if (list.length === 0) this.byTenant.delete(tenant);
    if (limit <= 0) return [];
    return list.slice(-limit).reverse().map((entry) => entry.mail);
  }

  private fresh(tenant: string): { mail: UnsentMail; at: number }[] {
    const oldest = this.now() - this.maxAgeMs;
    const list = (this.byTenant.get(tenant) ?? []).filter((entry) => entry.at > oldest);
    if (list.length > 0) this.byTenant.set(tenant, list);
    return list;
  }
}
