import { parseAuthOverrides, type AuthOverrides } from '../config/auth.js';
import type { TenantLimits } from '../config/index.js';
import type { TenantSettings } from './tenant.js';

/** A tenant as the control plane stores it (secrets decrypted in memory). */
export interface TenantRecord {
  id: string;
  externalId: string;
  name: string;
  jwtSecret: string | null;
  jwtJwks: { keys: Record<string, unknown>[] } | null;
  limits: TenantLimits;
  maxClientPresenceEventsPerWindow: number | null;
  clientPresenceWindowMs: number | null;
  presenceEnabled: boolean;
  privateOnly: boolean;
  suspend: boolean;
  /** Auth module settings of this tenant (snake_case keys, checked by parseAuthOverrides); null = the AUTH_* defaults. */
  authSettings: Record<string, unknown> | null;
  insertedAt: string;
  updatedAt: string;
  extensions: ExtensionRecord[];
}

export interface ExtensionRecord {
  type: string;
  /** Plain values, as the tenant's connection needs them. */
  settings: Record<string, unknown>;
  /** The stored form (secret values encrypted), set by the store; what the API shows. */
  sealed?: Record<string, unknown>;
  insertedAt: string;
  updatedAt: string;
}

/** Settings whose values are stored encrypted; the API returns them as ciphertext, and never db_password. */
export const ENCRYPTED_SETTINGS = ['db_host', 'db_port', 'db_name', 'db_user', 'db_password'] as const;
const REQUIRED_SETTINGS = ['db_host', 'db_port', 'db_name', 'db_user', 'db_password', 'region'] as const;
const EXTENSION_TYPES = new Set(['postgres_cdc_rls', 'postgres']);
/**
 * Lower case only: the tenant is found by the first label of the Host header, which is case-insensitive and looked
 * up lower-cased, so an upper-case id could never be reached. Refused rather than lower-cased, so the id a caller
 * gives is the id it gets back (the response, the location header and later /api/tenants/:id calls agree).
 */
const EXTERNAL_ID = /^[a-z0-9_-]{1,200}$/;
/** Upstream requires only that a setting be present; a trust-authenticated database has an empty password. */
const MAY_BE_EMPTY = new Set(['db_password']);

const LIMIT_FIELDS: [keyof TenantLimits, string][] = [
  ['maxConcurrentUsers', 'max_concurrent_users'],
  ['maxEventsPerSecond', 'max_events_per_second'],
  ['maxJoinsPerSecond', 'max_joins_per_second'],
  ['maxChannelsPerClient', 'max_channels_per_client'],
  ['maxBytesPerSecond', 'max_bytes_per_second'],
  ['maxPayloadSizeInKb', 'max_payload_size_in_kb'],
  ['maxPresenceEventsPerSecond', 'max_presence_events_per_second'],
];

export type Errors = Record<string, string[]>;

/**
 * Builds the record a create or update request asks for, or the upstream-shaped validation errors.
 * `existing` is the stored tenant for an update; fields absent from the body keep their stored values.
 */
export function applyTenantInput(
  body: unknown,
  existing: TenantRecord | null,
  defaults: TenantLimits,
  pathId: string | null,
): { record: TenantRecord } | { errors: Errors } {
  const errors: Errors = {};
  const add = (field: string, msg: string) => (errors[field] ??= []).push(msg);
  const input = (body as { tenant?: unknown } | null)?.tenant;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return { errors: { tenant: ["can't be blank"] } };
  const t = input as Record<string, unknown>;
  const now = new Date().toISOString().slice(0, 19);

  const externalId = existing?.externalId ?? (typeof t.external_id === 'string' ? t.external_id : pathId);
  if (typeof externalId !== 'string' || externalId === '') add('external_id', "can't be blank");
  // A stored id is not judged again (one from before the lower-case rule stays editable).
  else if (!existing && !EXTERNAL_ID.test(externalId)) add('external_id', 'is invalid');

  const record: TenantRecord = existing ? structuredClone(existing) : newTenantRecord(externalId ?? '', defaults, now);
  record.updatedAt = now;

  if ('name' in t) {
    if (typeof t.name === 'string' && t.name !== '') record.name = t.name;
    else add('name', 'is invalid');
  }
  if ('jwt_secret' in t) {
    if (typeof t.jwt_secret === 'string' && t.jwt_secret !== '') record.jwtSecret = t.jwt_secret;
    else if (t.jwt_secret !== null) add('jwt_secret', 'is invalid');
  }
  if ('jwt_jwks' in t) {
    const keys = (t.jwt_jwks as { keys?: unknown } | null)?.keys;
    if (t.jwt_jwks === null) record.jwtJwks = null;
    else if (Array.isArray(keys) && keys.every((k) => k !== null && typeof k === 'object')) record.jwtJwks = { keys };
    else add('jwt_jwks', 'is invalid');
  }
  if (record.jwtSecret === null && record.jwtJwks === null) add('jwt_secret', "can't be blank");

  for (const [key, field] of LIMIT_FIELDS) {
    if (!(field in t)) continue;
    const v = t[field];
    const max = key === 'maxBytesPerSecond' ? Number.MAX_SAFE_INTEGER : 2_147_483_647;
    if (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max) record.limits[key] = v as number;
    else add(field, 'is invalid');
  }
  for (const [field, set] of [
    ['max_client_presence_events_per_window', (v: number | null) => (record.maxClientPresenceEventsPerWindow = v)],
    ['client_presence_window_ms', (v: number | null) => (record.clientPresenceWindowMs = v)],
  ] as const) {
    if (!(field in t)) continue;
    const v = t[field];
    if (v === null || (Number.isInteger(v) && (v as number) > 0)) set(v as number | null);
    else add(field, 'is invalid');
  }
  for (const [field, set] of [
    ['presence_enabled', (v: boolean) => (record.presenceEnabled = v)],
    ['private_only', (v: boolean) => (record.privateOnly = v)],
    ['suspend', (v: boolean) => (record.suspend = v)],
  ] as const) {
    if (!(field in t)) continue;
    if (typeof t[field] === 'boolean') set(t[field] as boolean);
    else add(field, 'is invalid');
  }

  if ('auth_settings' in t) {
    const parsed = parseAuthOverrides(t.auth_settings);
    if ('invalid' in parsed) for (const field of parsed.invalid) add(`auth_settings.${field}`, 'is invalid');
    else record.authSettings = t.auth_settings === null ? null : { ...(t.auth_settings as Record<string, unknown>) };
  }

  if ('extensions' in t || !existing) {
    const list = Array.isArray(t.extensions) ? t.extensions : null;
    if (list === null) add('extensions', "can't be blank");
    else record.extensions = validateExtensions(list, existing, now, (msg) => add('extensions', msg));
  }
  return Object.keys(errors).length > 0 ? { errors } : { record };
}

function validateExtensions(list: unknown[], existing: TenantRecord | null, now: string, fail: (msg: string) => void): ExtensionRecord[] {
  const out: ExtensionRecord[] = [];
  for (const entry of list) {
    const e = entry as { type?: unknown; settings?: unknown } | null;
    // Upstream drops entries that lack a type or settings rather than failing the request.
    if (!e || typeof e.type !== 'string' || e.settings === null || typeof e.settings !== 'object') continue;
    if (!EXTENSION_TYPES.has(e.type)) {
      fail('type is invalid');
      continue;
    }
    const previous = existing?.extensions.find((x) => x.type === e.type);
    const settings: Record<string, unknown> = { ...(previous?.settings ?? {}), ...(e.settings as Record<string, unknown>) };
    if ('postgres_changes_pool' in settings) {
      settings.subcriber_pool_size = settings.postgres_changes_pool;
      delete settings.postgres_changes_pool;
    }
    for (const field of REQUIRED_SETTINGS) {
      const blank = settings[field] === undefined || settings[field] === null || (settings[field] === '' && !MAY_BE_EMPTY.has(field));
      if (blank) fail(`${field} can't be blank`);
      else if (typeof settings[field] !== 'string') fail(`${field} is invalid`);
    }
    settings.publication ??= 'supabase_realtime';
    settings.ssl_enforced ??= true;
    out.push({ type: e.type, settings, insertedAt: previous?.insertedAt ?? now, updatedAt: now });
  }
  return out;
}

/** A tenant with upstream's defaults: no secret yet, the node's default limits, every flag off. */
export function newTenantRecord(externalId: string, limits: TenantLimits, now: string): TenantRecord {
  return {
    id: '',
    externalId,
    name: externalId,
    jwtSecret: null,
    jwtJwks: null,
    limits: { ...limits },
    maxClientPresenceEventsPerWindow: null,
    clientPresenceWindowMs: null,
    presenceEnabled: false,
    privateOnly: false,
    suspend: false,
    authSettings: null,
    insertedAt: now,
    updatedAt: now,
    extensions: [],
  };
}

/** The runtime settings of a tenant: its database URL is built from its postgres extension. */
export function toRuntimeSettings(record: TenantRecord, dbPoolSize: number, claimValidators: Record<string, unknown> = {}): TenantSettings {
  return {
    externalId: record.externalId,
    databaseUrl: databaseUrlOf(record),
    jwtSecret: record.jwtSecret,
    jwtJwks: record.jwtJwks,
    privateOnly: record.privateOnly,
    suspend: record.suspend,
    presenceEnabled: record.presenceEnabled,
    limits: { ...record.limits },
    dbPoolSize,
    claimValidators,
    publication: String(record.extensions.find((e) => EXTENSION_TYPES.has(e.type))?.settings.publication ?? 'supabase_realtime'),
    maxClientPresenceEventsPerWindow: record.maxClientPresenceEventsPerWindow,
    clientPresenceWindowMs: record.clientPresenceWindowMs,
    auth: authOverridesOf(record),
  };
}

/** The stored auth settings as overrides; a stored value that no longer parses counts as unset. */
function authOverridesOf(record: TenantRecord): AuthOverrides {
  const parsed = parseAuthOverrides(record.authSettings);
  return 'overrides' in parsed ? parsed.overrides : {};
}

export function databaseUrlOf(record: TenantRecord): string {
  const ext = record.extensions.find((e) => EXTENSION_TYPES.has(e.type));
  if (!ext) return '';
  const s = ext.settings;
  const url = new URL('postgres://localhost');
  url.hostname = String(s.db_host);
  url.port = String(s.db_port);
  url.pathname = `/${encodeURIComponent(String(s.db_name))}`;
  url.username = encodeURIComponent(String(s.db_user));
  url.password = encodeURIComponent(String(s.db_password));
  // ssl_enforced means TLS without certificate verification, as upstream connects.
  if (s.ssl_enforced === true || s.ssl_enforced === 'true') url.searchParams.set('sslmode', 'no-verify');
  return url.toString();
}

/** Extension settings from a DATABASE_URL, for the default tenant created from the environment. */
export function settingsFromDatabaseUrl(databaseUrl: string): Record<string, unknown> {
  const u = new URL(databaseUrl);
  const sslmode = u.searchParams.get('sslmode');
  return {
    db_host: u.hostname,
    db_port: u.port || '5432',
    db_name: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
    db_user: decodeURIComponent(u.username) || 'postgres',
    db_password: decodeURIComponent(u.password),
    region: 'local',
    ssl_enforced: sslmode !== null && sslmode !== 'disable',
  };
}
