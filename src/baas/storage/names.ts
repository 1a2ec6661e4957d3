/**
 * Pure rules about bucket ids, object keys, MIME types and sizes (upstream src/storage/limits.ts): what may be stored,
 * checked before any byte is read or any SQL runs.
 */
import { errors } from './errors.js';

/** S3-safe characters plus the few upstream also accepts; object keys may contain `/`, bucket names may not. */
const VALID_OBJECT_KEY = /^[A-Za-z0-9_/!.*'() &$=@;:+,?-]*$/;
const VALID_BUCKET_NAME = /^[A-Za-z0-9_!.*'() &$=@;:+,?-]*$/;
/** Postgres btree entries and S3 keys both cap near here; upstream relies on the same limits. */
const MAX_KEY_LENGTH = 1024;

export function isValidKey(key: string): boolean {
  return key.length > 0 && key.length <= MAX_KEY_LENGTH && VALID_OBJECT_KEY.test(key) && !key.split('/').some((s) => s === '.' || s === '..');
}

export function isValidBucketName(name: string): boolean {
  return name.length > 0 && name.length < 101 && VALID_BUCKET_NAME.test(name);
}

export function mustBeValidKey(key: string): string {
  if (!isValidKey(key)) throw errors.invalidKey(key);
  return key;
}

export function mustBeValidBucketName(name: string): string {
  if (!isValidBucketName(name)) throw errors.invalidBucketName();
  return name;
}

/**
 * Whether `mimeType` is allowed by a bucket's list: exact `type/subtype` or a `type/*` wildcard, compared without
 * parameters (`text/plain;charset=UTF-8` is `text/plain`), the friendlier reading spec §4.2 recommends.
 */
export function mimeTypeAllowed(mimeType: string, allowed: readonly string[] | null): boolean {
  if (!allowed || allowed.length === 0) return true;
  const [type, subtype] = bareMimeType(mimeType).split('/');
  return allowed.some((entry) => {
    const [allowedType, allowedSubtype] = bareMimeType(entry).split('/');
    return allowedType === type && (allowedSubtype === '*' || allowedSubtype === subtype);
  });
}

export function bareMimeType(mimeType: string): string {
  return mimeType.split(';')[0].trim().toLowerCase();
}

/** A MIME type as upstream validates it in a bucket's list: `type/subtype` or `type/*`, no spaces. */
export function isValidMimeTypePattern(value: string): boolean {
  return /^[a-zA-Z0-9!#$&^_.+-]+\/([a-zA-Z0-9!#$&^_.+-]+|\*)$/.test(value);
}

/**
 * A size limit as the bucket API takes it: a number of bytes, or a string like `20GB`, `20MB`, `30KB`, `3B`
 * (upstream parseFileSizeToBytes); null for none.
 */
export function parseFileSizeLimit(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw errors.invalidRequest('Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B');
    return value;
  }
  if (typeof value !== 'string') throw errors.invalidRequest('Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B');
  const m = /^(\d+(?:\.\d+)?)\s*(GB|MB|KB|B)$/i.exec(value.trim());
  if (!m) throw errors.invalidRequest('Invalid file size format, hint: use 20GB / 20MB / 30KB / 3B');
  const unit = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9 }[m[2].toUpperCase() as 'B' | 'KB' | 'MB' | 'GB'];
  return Math.floor(Number(m[1]) * unit);
}

/**
 * A path as it arrives in a URL: percent-decoded segment by segment (fetch encodes each), or null when the encoding
 * is broken.
 */
export function decodePath(raw: string): string | null {
  try {
    return raw.split('/').map(decodeURIComponent).join('/');
  } catch {
    return null;
  }
}
