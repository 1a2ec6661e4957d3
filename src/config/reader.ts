import { isAbsolute } from 'node:path';
import { ConfigError } from './errors.js';

export type Env = Record<string, string | undefined>;

/** Typed, bounded reads of environment variables; every bad value is a ConfigError naming its variable. */
export class Reader {
  constructor(private readonly env: Env) {}

  private raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  absolutePath(name: string, fallback: string): string {
    const v = this.raw(name) ?? fallback;
    if (!isAbsolute(v)) throw new ConfigError(name, `expected an absolute path, got "${v}"`);
    return v;
  }

  optionalString(name: string): string | null {
    return this.raw(name) ?? null;
  }

  int(name: string, fallback: number, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!/^-?\d+$/.test(v)) throw new ConfigError(name, `expected an integer, got "${v}"`);
    const n = Number(v);
    if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const lower = v.toLowerCase();
    if (!(allowed as readonly string[]).includes(lower)) {
      throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${v}"`);
    }
    return lower as T;
  }

  optionalUrl(name: string, protocols: string[]): string | null {
    const v = this.raw(name);
    if (v === undefined) return null;
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw new ConfigError(name, 'is not a valid URL');
    }
    if (!protocols.includes(url.protocol)) {
      throw new ConfigError(name, `expected a ${protocols.map((p) => p.replace(':', '://')).join(' or ')} URL`);
    }
    return v;
  }

  tenantId(name: string, fallback: string): string {
    const v = this.string(name, fallback);
    if (!/^[A-Za-z0-9_-]+$/.test(v)) throw new ConfigError(name, 'may only contain letters, digits, "-" and "_"');
    return v;
  }

  jsonObject(name: string): Record<string, unknown> {
    const v = this.raw(name);
    if (v === undefined) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new ConfigError(name, 'is not valid JSON');
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(name, 'expected a JSON object');
    return parsed as Record<string, unknown>;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const lower = v.toLowerCase();
    if (lower === 'true' || lower === '1') return true;
    if (lower === 'false' || lower === '0') return false;
    throw new ConfigError(name, `expected true or false, got "${v}"`);
  }

  list(name: string): string[] {
    const v = this.raw(name);
    return v === undefined ? [] : v.split(',').map((x) => x.trim()).filter(Boolean);
  }

  /** `host:port` pairs, comma-separated (REDIS_CLUSTER_NODES). */
  hostPorts(name: string): { host: string; port: number }[] {
    return this.list(name).map((entry) => {
      const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(entry);
      const port = m ? Number(m[2]) : 0;
      if (!m || port < 1 || port > 65535) throw new ConfigError(name, `expected host:port, got "${entry}"`);
      return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
    });
  }

  /** A Redis key prefix: braces would move the hash tag that keeps a tenant's keys on one Redis Cluster shard. */
  keyPrefix(name: string, fallback: string): string {
    const v = this.env[name] ?? fallback;
    if (v.length > 100 || /[{}\s]/.test(v)) throw new ConfigError(name, 'must be at most 100 characters, without braces or spaces');
    return v;
  }

  /** A node name: it appears in Redis keys and metrics labels, so letters, digits and `.-_:@` only. */
  nodeName(name: string, fallback: string): string {
    const v = this.string(name, fallback);
    if (!/^[A-Za-z0-9._:@-]{1,128}$/.test(v)) throw new ConfigError(name, 'may only contain letters, digits and ".-_:@" (at most 128)');
    return v;
  }

  secretKey(name: string): string | null {
    const v = this.raw(name);
    if (v !== undefined && v.length < 16) throw new ConfigError(name, 'must have at least 16 characters');
    return v ?? null;
  }

  jwks(name: string): { keys: Record<string, unknown>[] } | null {
    const v = this.raw(name);
    if (v === undefined) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(v);
    } catch {
      throw new ConfigError(name, 'is not valid JSON');
    }
    const keys = (parsed as { keys?: unknown })?.keys;
    if (!Array.isArray(keys) || keys.some((k) => k === null || typeof k !== 'object')) {
      throw new ConfigError(name, 'expected a JSON object {"keys": [JWK, ...]}');
    }
    return { keys: keys as Record<string, unknown>[] };
  }
}
