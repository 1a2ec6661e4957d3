import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import { decodeJwt } from 'jose';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../../support/server.js';

export interface AuthWorld {
  t: TestServer;
  anon: SupabaseClient;
  svc: SupabaseClient;
  /** A fresh unmodified supabase-js client with the anon key (its own auth state). */
  client(key?: string): SupabaseClient;
  /** Raw HTTP to /auth/v1 with the anon key and the API version header of supabase-js. */
  http(path: string, init?: { method?: string; body?: unknown; token?: string; key?: string; version?: string | null }): Promise<Response>;
  stop(): Promise<void>;
}

export async function startAuthWorld(env: Record<string, string> = {}): Promise<AuthWorld> {
  const t = await startTestServer(env);
  const client = (key = t.anonKey) =>
    createClient(t.url, key, { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket as never } }) as SupabaseClient;
  const world: AuthWorld = {
    t,
    anon: client(),
    svc: client(t.serviceKey),
    client,
    http(path, init = {}) {
      const headers: Record<string, string> = { apikey: init.key ?? t.anonKey, 'content-type': 'application/json' };
      if (init.version !== null) headers['x-supabase-api-version'] = init.version ?? '2024-01-01';
      if (init.token) headers.authorization = `Bearer ${init.token}`;
      return fetch(`${t.url}/auth/v1${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), redirect: 'manual' });
    },
    stop: () => t.stop(),
  };
  return world;
}

export function claimsOf(token: string): Record<string, unknown> {
  return decodeJwt(token) as Record<string, unknown>;
}

let counter = 0;
/** A unique e-mail address per call. */
export function email(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now()}-${counter}@example.com`;
}
