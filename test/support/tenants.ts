import { createTestDatabase, type TestDatabase } from './postgres.js';
import type { TestServer } from './server.js';

/** Management API calls against a test server, authorized with a token signed with its management secret. */
export async function api(t: TestServer, method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: unknown; headers: Headers; text: string }> {
  const auth = token ?? (await t.sign({ exp: Math.floor(Date.now() / 1000) + 600 }, t.managementSecret));
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers, text };
}

/** The `postgres_cdc_rls` extension settings pointing at a database URL. */
export function extensionFor(url: string): { type: string; settings: Record<string, unknown> } {
  const u = new URL(url);
  return {
    type: 'postgres_cdc_rls',
    settings: {
      db_host: u.hostname,
      db_port: u.port,
      db_name: u.pathname.slice(1),
      db_user: decodeURIComponent(u.username),
      db_password: decodeURIComponent(u.password),
      region: 'us-east-1',
      ssl_enforced: false,
    },
  };
}

export interface TestTenant {
  id: string;
  secret: string;
  db: TestDatabase;
  anonKey: string;
}

/** Creates a tenant with its own fresh database through the management API. */
export async function createTenant(t: TestServer, id: string, extra: Record<string, unknown> = {}): Promise<TestTenant> {
  const db = await createTestDatabase(`tenant_${id.replace(/[^a-z0-9]/gi, '_')}`);
  const secret = `secret-of-${id}-with-at-least-32-characters`;
  const res = await api(t, 'POST', '/api/tenants', {
    tenant: { external_id: id, name: id, jwt_secret: secret, extensions: [extensionFor(db.url)], ...extra },
  });
  if (res.status !== 201) throw new Error(`creating tenant ${id}: ${res.status} ${res.text}`);
  const anonKey = await t.sign({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3600 }, secret);
  return { id, secret, db, anonKey };
}
