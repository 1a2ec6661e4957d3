import type { Config } from '../config/index.js';
import { keyFileSecret } from '../config/key-file.js';
import { newTenantRecord, settingsFromDatabaseUrl, type TenantRecord } from './record.js';
import type { TenantStore } from './store.js';

/**
 * The default tenant from the environment, created or updated at every start so the zero-setup start needs no
 * step by hand. Its secrets and database follow the environment; its limits are set on creation only, so changes
 * made through the management API survive a restart.
 */
export async function ensureDefaultTenant(store: TenantStore, config: Config, databaseUrl: string): Promise<TenantRecord> {
  const existing = await store.get(config.tenantId);
  const now = new Date().toISOString().slice(0, 19);
  const extension = { type: 'postgres_cdc_rls', settings: settingsFromDatabaseUrl(databaseUrl), insertedAt: now, updatedAt: now };
  const record: TenantRecord = existing
    ? { ...existing, jwtSecret: config.jwtSecret, jwtJwks: config.jwtJwks, extensions: [{ ...extension, insertedAt: existing.extensions[0]?.insertedAt ?? now }] }
    : { ...newTenantRecord(config.tenantId, config.tenantDefaults, now), jwtSecret: config.jwtSecret, jwtJwks: config.jwtJwks, extensions: [extension] };
  return store.save(record);
}

/**
 * DB_ENC_KEY, or else a random key kept in the data dir (created once, never overwritten), so that secrets are
 * encrypted at rest even in the zero-setup start.
 */
export async function encryptionKey(config: Config): Promise<string> {
  if (config.dbEncKey) return config.dbEncKey;
  return (await keyFileSecret(config.dataDir, 'encryption.key')).secret;
}
