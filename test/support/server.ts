import { createClient, type SupabaseClient } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { signHs256, type Claims } from '../../src/auth/jwt.js';
import { loadConfig } from '../../src/config/index.js';
import type { Module } from '../../src/http/module.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from './postgres.js';

export const TEST_SECRET = 'test-secret-with-at-least-32-characters-long!';
/** The management API's secret in tests: set, so no test writes a generated one into the working tree. */
export const TEST_API_SECRET = 'test-management-api-secret-with-32-characters';

export interface TestServer {
  server: RunningServer;
  db: TestDatabase;
  /** Base URL with the port, host 127.0.0.1 (an IP selects the default tenant). */
  url: string;
  port: number;
  anonKey: string;
  serviceKey: string;
  /** The management API's secret: API_JWT_SECRET, or the one the server generated in its data dir. */
  managementSecret: string;
  sign(claims: Claims, secret?: string): Promise<string>;
  /**
   * An unmodified supabase-js client on the `ws` transport (Node 20 has no global WebSocket). `host` selects a
   * tenant by Host header (`<tenant>.localhost`), since `*.localhost` does not resolve on this machine.
   */
  client(opts?: { vsn?: '1.0.0' | '2.0.0'; key?: string; host?: string }): SupabaseClient;
  stop(): Promise<void>;
}

/**
 * A Performer on a free port with its own fresh database and short error backoffs. API_JWT_SECRET is TEST_API_SECRET
 * unless `env` says otherwise (`API_JWT_SECRET: ''` with a PERFORMER_DATA_DIR tests the generated secret). `log`
 * replaces the server's logger (tests that wait for a logged event); `modules` the list of HTTP modules (MODULES).
 */
export async function startTestServer(
  env: Record<string, string> = {},
  database?: TestDatabase,
  log?: Logger,
  modules?: readonly Module[],
): Promise<TestServer> {
  const db = database ?? (await createTestDatabase('srv'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    JWT_SECRET: TEST_SECRET,
    DB_ENC_KEY: 'test-encryption-key-0123456789',
    API_JWT_SECRET: TEST_API_SECRET,
    CONNECT_ERROR_BACKOFF_MS: '50',
    CHANNEL_ERROR_BACKOFF_MS: '50',
    LOG_LEVEL: process.env.PERFORMER_TEST_LOG ?? 'silent',
    ...env,
  });
  const server = await startServer(config, { databaseUrl: db.url, log: log ?? createLogger(config.logLevel), modules });
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const anonKey = await signHs256({ role: 'anon', exp }, config.jwtSecret);
  const serviceKey = await signHs256({ role: 'service_role', exp }, config.jwtSecret);
  const clients: SupabaseClient[] = [];
  const url = `http://127.0.0.1:${server.port}`;
  return {
    server,
    db,
    url,
    port: server.port,
    anonKey,
    serviceKey,
    managementSecret: server.management.primary,
    sign: (claims, secret = config.jwtSecret) => signHs256(claims, secret),
    client(opts = {}) {
      const c = createClient(url, opts.key ?? anonKey, {
        realtime: { transport: (opts.host ? hostTransport(`${opts.host}:${server.port}`) : WebSocket) as never, vsn: opts.vsn ?? '2.0.0', heartbeatIntervalMs: 25_000 } as never,
        auth: { persistSession: false, autoRefreshToken: false },
      });
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.removeAllChannels().catch(() => undefined)));
      for (const c of clients) c.realtime.disconnect();
      await server.stop();
      await db.drop();
    },
  };
}

/** Resolves with the first value `register` hands to its callback, or rejects after `ms`. */
export function waitForEvent<T>(register: (cb: (value: T) => void) => void, ms = 5000, what = 'event'): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A `ws` transport that connects to 127.0.0.1 but sends the given Host header. */
export function hostTransport(host: string): typeof WebSocket {
  return class HostWebSocket extends WebSocket {
    constructor(address: string | URL, protocols?: string | string[]) {
      super(address, protocols, { headers: { host } });
    }
  } as typeof WebSocket;
}
