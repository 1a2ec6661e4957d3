import { spawn } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signHs256 } from '../../src/auth/jwt.js';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { failedHandshake, RawClient } from '../support/raw-client.js';
import { TEST_SECRET } from '../support/server.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TENANT = 'realtime-dev';

type LogLine = Record<string, unknown>;

/** Every line the server logged, raw, in order. */
const raw: string[] = [];
let partial = '';
const memory = new Writable({
  write(chunk: Buffer, _encoding, done) {
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    raw.push(...parts.filter((p) => p !== ''));
    done();
  },
});

/** The server's own logger, writing to memory instead of stdout. */
const log = createLogger('debug', memory);

let db: TestDatabase;
let server: RunningServer;
let anonKey: string;
let serviceKey: string;
const ws = (key: string) => `ws://127.0.0.1:${server.port}/socket/websocket?apikey=${key}&vsn=2.0.0`;

beforeAll(async () => {
  db = await createTestDatabase('logging');
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    JWT_SECRET: TEST_SECRET,
    CONNECT_ERROR_BACKOFF_MS: '50',
    CHANNEL_ERROR_BACKOFF_MS: '50',
  });
  server = await startServer(config, { databaseUrl: db.url, log });
  const exp = Math.floor(Date.now() / 1000) + 3600;
  anonKey = await signHs256({ role: 'anon', exp }, TEST_SECRET);
  serviceKey = await signHs256({ role: 'service_role', exp }, TEST_SECRET);
});
afterAll(async () => {
  await server?.stop();
  await db?.drop();
});

function parsed(): LogLine[] {
  return raw.map((line) => JSON.parse(line) as LogLine);
}

/** Lines logged since `mark` that match `pred`, once at least `count` of them have arrived. */
async function linesAfter(mark: number, pred: (l: LogLine) => boolean, count = 1, ms = 5000): Promise<LogLine[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = parsed().slice(mark).filter(pred);
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`no matching log line; got:\n${raw.slice(mark).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function join(c: RawClient, topic: string, ref: string, payload: unknown = { config: {} }): Promise<unknown[]> {
  c.send([ref, ref, topic, 'phx_join', payload]);
  return c.reply(ref);
}

describe('log lines about refused joins', () => {
  it('are JSON and carry tenant, error_code and the connection id', async () => {
    const c = await RawClient.connect(ws(anonKey));
    const mark = raw.length;
    expect((await join(c, 'realtime:', '1'))[4]).toMatchObject({ status: 'error' });
    const [line] = await linesAfter(mark, (l) => l.error_code === 'TopicNameRequired');
    expect(line).toMatchObject({ tenant: TENANT, error_code: 'TopicNameRequired', service: 'performer' });
    expect(line.conn).toBeDefined();
    expect(['string', 'number']).toContain(typeof line.conn);
    expect(typeof line.msg).toBe('string');
    expect(typeof line.time).toBe('string');
    expect(Number.isNaN(Date.parse(line.time as string))).toBe(false);
    // Visible at the default LOG_LEVEL (info).
    expect(['info', 'warn', 'error']).toContain(line.level);
    c.close();
  });

  it('carry the JWT error code for a bad channel token, without logging the token', async () => {
    const c = await RawClient.connect(ws(anonKey));
    const expired = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 30 }, TEST_SECRET);
    const mark = raw.length;
    expect((await join(c, 'realtime:bad-token', '1', { config: {}, access_token: 'potato-token' }))[4]).toMatchObject({ status: 'error' });
    expect((await join(c, 'realtime:expired-token', '2', { config: {}, access_token: expired }))[4]).toMatchObject({ status: 'error' });
    const [malformed] = await linesAfter(mark, (l) => l.error_code === 'MalformedJWT');
    expect(malformed).toMatchObject({ tenant: TENANT });
    expect(malformed.conn).toBeDefined();
    const [invalid] = await linesAfter(mark, (l) => l.error_code === 'InvalidJWTToken');
    expect(invalid).toMatchObject({ tenant: TENANT, conn: malformed.conn });
    const text = raw.slice(mark).join('\n');
    expect(text).not.toContain(expired);
    expect(text).not.toContain(anonKey);
    c.close();
  });

  it('tell connections apart: each socket has its own conn id on every line', async () => {
    const a = await RawClient.connect(ws(anonKey));
    const b = await RawClient.connect(ws(serviceKey));
    const mark = raw.length;
    await join(a, 'realtime:', '1');
    await join(b, 'realtime:', '1');
    const lines = await linesAfter(mark, (l) => l.error_code === 'TopicNameRequired', 2);
    expect(lines.every((l) => l.conn !== undefined && l.tenant === TENANT)).toBe(true);
    expect(new Set(lines.map((l) => l.conn)).size).toBe(2);
    a.close();
    b.close();
  });
});

describe('log lines about refused handshakes', () => {
  it('carry the error code and the tenant for a known tenant, without the token', async () => {
    const mark = raw.length;
    const expired = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) - 30 }, TEST_SECRET);
    expect((await failedHandshake(ws(expired))).status).toBe(401);
    const [line] = await linesAfter(mark, (l) => l.error_code === 'InvalidJWTToken');
    expect(line).toMatchObject({ tenant: TENANT, error_code: 'InvalidJWTToken' });
    expect(raw.slice(mark).join('\n')).not.toContain(expired);
  });

  it('carry TenantNotFound for an unknown tenant host', async () => {
    const mark = raw.length;
    expect((await failedHandshake(ws(anonKey), { host: `nope.localhost:${server.port}` })).status).toBe(404);
    const [line] = await linesAfter(mark, (l) => l.error_code === 'TenantNotFound');
    expect(line.level).not.toBe('debug');
  });
});

describe('log lines about a database connection that dies while idle', () => {
  it('carry the Postgres error, not the pg client with its connection settings and cancel key', async () => {
    const pool = await server.ctx.registry.get(TENANT)!.database();
    await pool.query('SELECT 1'); // leaves at least one idle client in the tenant's pool
    const mark = raw.length;
    // What Ctrl-C does to an embedded Postgres (it shares the terminal's process group): it ends every backend.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'performer' AND backend_type = 'client backend' AND state = 'idle'`,
      );
      expect(rows.length).toBeGreaterThan(0);
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [rows.map((r) => r.pid)]);
    } finally {
      await admin.end();
    }
    const [line] = await linesAfter(mark, (l) => l.msg === 'idle tenant database client failed');
    expect(line).toMatchObject({ level: 'warn', tenant: TENANT, error_code: 'DatabaseConnectionError' });
    expect(line.err).toMatchObject({ code: '57P01', message: 'terminating connection due to administrator command' });
    const text = raw.slice(mark).join('\n');
    for (const field of ['"client"', '"secretKey"', '"processID"', '"connectionParameters"', '"password"']) {
      expect(text).not.toContain(field);
    }
  });
});

describe('every line', () => {
  it('is one JSON object with level, time, msg and service, and no tenant JWT appears anywhere', () => {
    expect(raw.length).toBeGreaterThan(0);
    for (const line of raw) {
      const l = JSON.parse(line) as LogLine;
      expect(l).toMatchObject({ service: 'performer' });
      expect(typeof l.level).toBe('string');
      expect(typeof l.time).toBe('string');
      expect(typeof l.msg).toBe('string');
    }
    const all = raw.join('\n');
    expect(all).not.toContain(anonKey);
    expect(all).not.toContain(serviceKey);
  });
});

describe('createLogger', () => {
  it('writes one JSON line per entry to stdout, with the level label, ISO time and service, honouring the level', async () => {
    const code = [
      "import { createLogger } from './src/observability/logger.js';",
      "const l = createLogger('info');",
      "l.child({ tenant: 't1' }).warn({ error_code: 'SomeCode' }, 'hello');",
      "l.debug('hidden at info');",
      "l.info('second');",
    ].join('\n');
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (exitCode) => resolve({ code: exitCode, stdout, stderr }));
    });
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split('\n').map((l) => JSON.parse(l) as LogLine);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'warn', service: 'performer', tenant: 't1', error_code: 'SomeCode', msg: 'hello' });
    expect(lines[0].time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    expect(lines[1]).toMatchObject({ level: 'info', msg: 'second' });
    expect(lines[1].tenant).toBeUndefined();
  });
});
