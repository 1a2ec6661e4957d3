import { checkRead, checkWrite, type Extension, type RlsRequest } from '../tenants/authorization.js';
import { checkStorageJoin } from '../tenants/storage-authorization.js';
import type { TenantRuntime } from '../tenants/tenant.js';

/**
 * What a private channel's member may do, from the tenant's RLS policies on realtime.messages, cached for the
 * channel's life and re-evaluated on `access_token` (upstream caches the same way). Public channels allow all.
 * A write permission, and a presence read not asked at join, are evaluated on first use; callers get a boolean when
 * it is known, else a promise. Only answers are cached: a check that failed (database unreachable, missing
 * partition, a policy that raised) refuses that one message and is asked again next time, as upstream does.
 */
export class ChannelPolicies {
  /** Write answers by extension; created on the first check (most channels never write). */
  private writes: Map<Extension, boolean | Promise<boolean>> | null = null;

  private constructor(
    private readonly tenant: TenantRuntime | null,
    private request: RlsRequest | null,
    public broadcastRead: boolean,
    /** null: not evaluated yet (presence was off at join). */
    public presenceRead: boolean | null,
    /**
     * A private `storage:<bucket>` topic: admitted by the role's SELECT privilege on storage.objects, its events
     * checked one by one against the object's RLS (channels/storage-events.ts); no presence.
     */
    readonly storageEvents = false,
  ) {}

  /** Public channels may do everything and never change their answers: one shared instance. */
  private static readonly everything = new ChannelPolicies(null, null, true, true);

  static public(): ChannelPolicies {
    return ChannelPolicies.everything;
  }

  static private(tenant: TenantRuntime, request: RlsRequest, broadcastRead: boolean, presenceRead: boolean | null): ChannelPolicies {
    return new ChannelPolicies(tenant, request, broadcastRead, presenceRead);
  }

  static storage(tenant: TenantRuntime, request: RlsRequest): ChannelPolicies {
    return new ChannelPolicies(tenant, request, true, false, true);
  }

  get isPrivate(): boolean {
    return this.request !== null;
  }

  canReadPresence(): boolean | Promise<boolean> {
    if (this.presenceRead !== null) return this.presenceRead;
    return this.read(['presence']).then((r) => {
      if (r === null) return false;
      return (this.presenceRead = r.presence);
    });
  }

  canWrite(extension: Extension): boolean | Promise<boolean> {
    if (!this.tenant || !this.request) return true;
    const writes = (this.writes ??= new Map());
    const known = writes.get(extension);
    if (known !== undefined) return known;
    const tenant = this.tenant;
    const request = this.request;
    const pending = tenant
      .database()
      .then((pool) => checkWrite(pool, { ...request, extension }, { log: tenant.log, latencyMs: tenant.metrics.writeAuthorization }))
      .then((r) => (r.ok ? r.allowed : null), () => null)
      .then((allowed) => {
        if (allowed === null) {
          // A failure is "not now": this message is refused, the next one asks again.
          writes.delete(extension);
          return false;
        }
        writes.set(extension, allowed);
        return allowed;
      });
    writes.set(extension, pending);
    return pending;
  }

  /**
   * A new token: the claims change, so every cached answer is dropped and the reads asked again.
   * Returns the read permissions lost, so the channel can shut down when it may no longer read.
   */
  async refresh(request: RlsRequest): Promise<{ lostBroadcastRead: boolean; lostPresenceRead: boolean } | { failed: true }> {
    if (!this.request) return { lostBroadcastRead: false, lostPresenceRead: false };
    this.request = request;
    this.writes = null;
    if (this.storageEvents) {
      const pool = await this.tenant!.database().catch(() => null);
      const r = pool ? await checkStorageJoin(pool, request) : null;
      if (!r?.ok) return { failed: true };
      return { lostBroadcastRead: !r.value, lostPresenceRead: false };
    }
    const extensions: Extension[] = this.presenceRead === null ? ['broadcast'] : ['broadcast', 'presence'];
    const r = await this.read(extensions);
    if (!r) return { failed: true };
    const lostBroadcastRead = this.broadcastRead && !r.broadcast;
    const lostPresenceRead = this.presenceRead === true && !r.presence;
    this.broadcastRead = r.broadcast;
    if (this.presenceRead !== null) this.presenceRead = r.presence;
    return { lostBroadcastRead, lostPresenceRead };
  }

  private async read(extensions: Extension[]): Promise<{ broadcast: boolean; presence: boolean } | null> {
    if (!this.tenant || !this.request) return { broadcast: true, presence: true };
    const pool = await this.tenant.database().catch(() => null);
    if (!pool) return null;
    const r = await checkRead(pool, { ...this.request, extensions }, { log: this.tenant.log, latencyMs: this.tenant.metrics.readAuthorization });
    return r.ok ? r : null;
  }
}
