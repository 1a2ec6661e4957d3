/**
 * The REST schema cache of each running tenant: loaded lazily by the first request (one catalog statement on a pool
 * client), shared by concurrent first requests, dropped when the tenant's database says its schema changed
 * (`NOTIFY pgrst, 'reload schema'`, sent by the DDL event trigger of tenant migration 11 or by hand, as PostgREST
 * listens), so a table created a moment ago is served without a restart. Keyed by the runtime: a restarted tenant
 * gets a new runtime and so a fresh cache.
 */
import pg from 'pg';
import type { ChildSpec, RunningChild } from '../../../tenants/supervisor.js';
import type { TenantRuntime } from '../../../tenants/tenant.js';
import { loadSchemaCache } from '../schema/load.js';
import type { SchemaCache } from '../schema/types.js';

/** PostgREST's channel and payloads: an empty payload or `reload schema` reloads the schema cache. */
export const RELOAD_CHANNEL = 'pgrst';
const RELOAD_PAYLOADS = new Set(['', 'reload schema']);

export class SchemaCaches {
  private readonly caches = new WeakMap<TenantRuntime, Promise<SchemaCache>>();
  /** The loaded caches, for {@link loaded}: the same as the promises above once they resolved. */
  private readonly ready = new WeakMap<TenantRuntime, SchemaCache>();

  constructor(private readonly schemas: readonly string[]) {}

  /** The tenant's cache, loaded on first use; a failed load is forgotten so the next request tries again. */
  get(tenant: TenantRuntime, pool: pg.Pool): Promise<SchemaCache> {
    const cached = this.caches.get(tenant);
    if (cached) return cached;
    const loading = this.load(pool);
    this.caches.set(tenant, loading);
    loading.then(
      (cache) => {
        if (this.caches.get(tenant) === loading) this.ready.set(tenant, cache);
      },
      () => {
        if (this.caches.get(tenant) === loading) this.caches.delete(tenant);
      },
    );
    return loading;
  }

  /** The tenant's cache when it is loaded and current, without waiting; undefined otherwise (then use get). */
  loaded(tenant: TenantRuntime): SchemaCache | undefined {
    return this.ready.get(tenant);
  }

  /** Forgets the tenant's cache: the next request loads the schema afresh. */
  invalidate(tenant: TenantRuntime): void {
    this.caches.delete(tenant);
    this.ready.delete(tenant);
  }

  private async load(pool: pg.Pool): Promise<SchemaCache> {
    const client = await pool.connect();
    let failed: unknown;
    try {
      return await loadSchemaCache(client, this.schemas);
    } catch (err) {
      failed = err;
      throw err;
    } finally {
      client.release(failed instanceof Error ? failed : undefined);
    }
  }

  /**
   * The tenant child that LISTENs on `pgrst` on a connection of its own (a pooled client would hand the LISTEN to
   * other requests) and drops the cache on each reload notice. Starting it drops the cache too: notices sent while
   * it was down are lost.
   */
  listener(tenant: TenantRuntime): ChildSpec {
    return {
      name: 'schema-listener',
      // Up at once, connecting in the background: the tenant is ready without waiting for this connection, and a
      // failed connect ends the child, which the supervisor restarts with backoff.
      start: async (): Promise<RunningChild> => {
        const client = new pg.Client({ connectionString: tenant.settings.databaseUrl, application_name: 'performer rest schema listener' });
        let stopped = false;
        let exit!: (reason: unknown) => void;
        const exited = new Promise<unknown>((resolve) => (exit = resolve));
        client.on('error', (err) => exit(err));
        client.on('end', () => exit(new Error('schema listener connection ended')));
        client.on('notification', (msg) => {
          if (msg.channel === RELOAD_CHANNEL && RELOAD_PAYLOADS.has(msg.payload ?? '')) this.invalidate(tenant);
        });
        const listen = async () => {
          await tenant.database(); // migrated first: the reload trigger exists once it runs
          if (stopped) return;
          await client.connect();
          await client.query(`LISTEN ${RELOAD_CHANNEL}`);
          this.invalidate(tenant);
        };
        listen().catch(async (err: unknown) => {
          if (stopped) return;
          await client.end().catch(() => undefined);
          exit(err);
        });
        return {
          exited,
          stop: async () => {
            stopped = true;
            client.removeAllListeners('end');
            client.removeAllListeners('error');
            client.on('error', () => undefined);
            await client.end().catch(() => undefined);
          },
        };
      },
    };
  }
}
