import { ConfigError } from './errors.js';
import { Reader, type Env } from './reader.js';

/**
 * The auth module's settings (AUTH_*), GoTrue's names and defaults where it has them; a local `supabase start`
 * autoconfirms e-mail and allows anonymous sign-ins, and so does Performer unless told otherwise.
 */
export interface AuthConfig {
  /** Where e-mail links lead after verification; null = the URL the request came to. */
  siteUrl: string | null;
  /** Access token lifetime, seconds. */
  jwtExpiry: number;
  /** How long a rotated refresh token may still be presented (seconds) before reuse revokes its session. */
  refreshTokenReuseInterval: number;
  minPasswordLength: number;
  autoconfirm: boolean;
  anonymousSignIns: boolean;
  /** Where else e-mail links may lead besides the site URL's host (GoTrue's URI_ALLOW_LIST; `*` globs). */
  uriAllowList: string[];
  /** `smtp://user:pass@host:port` (or smtps://); null = mail is only recorded in the audit log. */
  smtpUrl: string | null;
  smtpSender: string;
  /** Private JWKs signing access tokens (first one signs); empty = HS256 with the tenant secret. */
  signingKeys: Record<string, unknown>[];
  /** Requests per IP per 5 minutes to /token; to /signup, /otp, /recover, /magiclink; to /verify (GoTrue's defaults). */
  rateLimitToken: number;
  rateLimitOtp: number;
  rateLimitVerify: number;
  /** Anonymous sign-ins per IP per hour. */
  rateLimitAnonymous: number;
  /** Seconds between two e-mails to one address (GoTrue's SMTP max frequency). */
  emailMaxFrequency: number;
}

export function loadAuthConfig(env: Env): AuthConfig {
  const r = new Reader(env);
  return {
    siteUrl: r.optionalUrl('AUTH_SITE_URL', ['http:', 'https:']),
    jwtExpiry: r.int('AUTH_JWT_EXPIRY', 3600, 30, 604_800),
    refreshTokenReuseInterval: r.int('AUTH_REFRESH_TOKEN_REUSE_INTERVAL', 10, 0, 86_400),
    minPasswordLength: r.int('AUTH_MIN_PASSWORD_LENGTH', 6, 6, 72),
    autoconfirm: r.bool('AUTH_AUTOCONFIRM', true),
    anonymousSignIns: r.bool('AUTH_ANONYMOUS_SIGN_INS', true),
    uriAllowList: r.list('AUTH_URI_ALLOW_LIST'),
    smtpUrl: r.optionalUrl('AUTH_SMTP_URL', ['smtp:', 'smtps:']),
    smtpSender: r.string('AUTH_SMTP_SENDER', 'Performer <noreply@performer.local>'),
    signingKeys: signingKeys(r.optionalString('AUTH_SIGNING_KEYS') ?? undefined),
    rateLimitToken: r.int('AUTH_RATE_LIMIT_TOKEN', 150, 1, 1_000_000_000),
    rateLimitOtp: r.int('AUTH_RATE_LIMIT_OTP', 30, 1, 1_000_000_000),
    rateLimitVerify: r.int('AUTH_RATE_LIMIT_VERIFY', 30, 1, 1_000_000_000),
    rateLimitAnonymous: r.int('AUTH_RATE_LIMIT_ANONYMOUS_USERS', 30, 1, 1_000_000_000),
    emailMaxFrequency: r.int('AUTH_EMAIL_MAX_FREQUENCY', 60, 0, 86_400),
  };
}

/** A JSON array of private JWKs (or `{"keys": [...]}`), each EC or RSA with a `kid`. */
function signingKeys(text: string | undefined): Record<string, unknown>[] {
  if (text === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError('AUTH_SIGNING_KEYS', 'is not valid JSON');
  }
  const keys = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) throw new ConfigError('AUTH_SIGNING_KEYS', 'expected a JSON array of private JWKs');
  for (const key of keys as Record<string, unknown>[]) {
    const ok = key !== null && typeof key === 'object' && typeof key.kid === 'string' && typeof key.d === 'string' && (key.kty === 'EC' || key.kty === 'RSA');
    if (!ok) throw new ConfigError('AUTH_SIGNING_KEYS', 'each key must be a private EC or RSA JWK with a "kid"');
  }
  return keys as Record<string, unknown>[];
}

/** What one tenant may set differently from the AUTH_* defaults (tenant record `auth_settings`, snake_case keys). */
export type AuthOverrides = Partial<Pick<AuthConfig, 'siteUrl' | 'jwtExpiry' | 'refreshTokenReuseInterval' | 'minPasswordLength' | 'autoconfirm' | 'anonymousSignIns'>>;

const OVERRIDE_FIELDS: { key: keyof AuthOverrides; field: string; kind: 'url' | 'int' | 'bool'; min?: number; max?: number }[] = [
  { key: 'siteUrl', field: 'site_url', kind: 'url' },
  { key: 'jwtExpiry', field: 'jwt_expiry', kind: 'int', min: 30, max: 604_800 },
  { key: 'refreshTokenReuseInterval', field: 'refresh_token_reuse_interval', kind: 'int', min: 0, max: 86_400 },
  { key: 'minPasswordLength', field: 'min_password_length', kind: 'int', min: 6, max: 72 },
  { key: 'autoconfirm', field: 'autoconfirm', kind: 'bool' },
  { key: 'anonymousSignIns', field: 'anonymous_sign_ins', kind: 'bool' },
];

/** A tenant's `auth_settings` object checked field by field: the overrides, or the names of the bad fields. */
export function parseAuthOverrides(value: unknown): { overrides: AuthOverrides } | { invalid: string[] } {
  if (value === null || value === undefined) return { overrides: {} };
  if (typeof value !== 'object' || Array.isArray(value)) return { invalid: ['auth_settings'] };
  const input = value as Record<string, unknown>;
  const overrides: Record<string, unknown> = {};
  const invalid = Object.keys(input).filter((k) => !OVERRIDE_FIELDS.some((f) => f.field === k));
  for (const { key, field, kind, min = 0, max = 0 } of OVERRIDE_FIELDS) {
    const v = input[field];
    if (v === undefined || v === null) continue;
    const ok =
      kind === 'bool' ? typeof v === 'boolean'
      : kind === 'int' ? Number.isInteger(v) && (v as number) >= min && (v as number) <= max
      : typeof v === 'string' && /^https?:\/\/[^\s]+$/.test(v) && v.length <= 2048;
    if (ok) overrides[key] = v;
    else invalid.push(field);
  }
  return invalid.length > 0 ? { invalid } : { overrides: overrides as AuthOverrides };
}
