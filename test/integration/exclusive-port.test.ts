import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { findFreePort } from '../../src/db/embedded-postgres.js';
import { ListenError } from '../../src/http/listen.js';
import { createLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startTestServer, TEST_SECRET, type TestServer } from '../support/server.js';

let first: TestServer;
let secondDb: TestDatabase;

beforeAll(async () => {
  // A fixed port, as PORT=4000 is: the kernel would not share a port it picked for bind(0) anyway.
  first = await startTestServer({ PORT: String(await findFreePort()) });
  secondDb = await createTestDatabase('second');
});
afterAll(async () => {
  await first?.stop();
  await secondDb?.drop();
});

describe('a second server on a port that is in use', () => {
  it('refuses to start instead of sharing the port (and its clients) with the first', async () => {
    const config = loadConfig({
      PORT: String(first.port),
      HOST: '127.0.0.1',
      DATABASE_URL: secondDb.url,
      JWT_SECRET: TEST_SECRET,
      DB_ENC_KEY: 'test-encryption-key-0123456789',
      LOG_LEVEL: 'silent',
    });
    const attempt = startServer(config, { databaseUrl: secondDb.url, log: createLogger('silent') });
    // If it started, stop it so the run does not leak a server, and let the assertion below report it.
    const outcome = await attempt.then(
      async (second) => {
        await second.stop();
        return second;
      },
      (err: unknown) => err,
    );
    expect(outcome).toBeInstanceOf(ListenError);
    expect((outcome as ListenError).message).toBe(
      `port ${first.port} is already in use on 127.0.0.1 (another Performer, or another program, listens there); stop it or choose another PORT`,
    );
    // The first server still answers every request.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${first.url}/api/ping`, { headers: { apikey: first.anonKey } });
      expect(res.status).toBe(200);
    }
  });

  it('refuses a wildcard address whose port a loopback server holds', async () => {
    const config = loadConfig({
      PORT: String(first.port),
      HOST: '0.0.0.0',
      DATABASE_URL: secondDb.url,
      JWT_SECRET: TEST_SECRET,
      DB_ENC_KEY: 'test-encryption-key-0123456789',
      LOG_LEVEL: 'silent',
    });
    const outcome = await startServer(config, { databaseUrl: secondDb.url, log: createLogger('silent') }).then(
      async (second) => {
        await second.stop();
        return second;
      },
      (err: unknown) => err,
    );
    expect(outcome).toBeInstanceOf(ListenError);
    expect((outcome as ListenError).reason).toBe('EADDRINUSE');
  });
});
