import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withLentClient } from '../../src/db/lend.js';
import { inRolledBackTransaction } from '../../src/db/rls.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

let db: TestDatabase;
let admin: pg.Client;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase('lend');
  admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  pool = new pg.Pool({ connectionString: db.url, max: 1 });
  pool.on('error', () => undefined);
});
afterAll(async () => {
  await pool?.end();
  await admin?.end();
  await db?.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ends the borrower's connection from the server side and waits until its FATAL has arrived (no query running). */
async function terminate(client: pg.ClientBase): Promise<void> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
  await sleep(200);
}

// Without the guard these are uncaught 'error' events (pg-pool takes its listener off a lent client), which end
// a server process and fail this run.
describe('lent pool clients whose connection the server ends between queries', () => {
  it('fail the RLS transaction cleanly, and the pool hands out a working client next', async () => {
    const outcome = await inRolledBackTransaction(pool, async (client) => {
      await terminate(client);
      return client.query('SELECT 1');
    });
    expect(outcome).toMatchObject({ ok: false, failure: { code: 'UnableToConnect' } });
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
  });

  it('fail the borrower of withLentClient with the connection error', async () => {
    await expect(
      withLentClient(pool, async (client) => {
        await terminate(client);
        return client.query('SELECT 1');
      }),
    ).rejects.toThrow();
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
  });
});
