import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJanitor } from '../../src/tenants/janitor.js';
import { migrateTenantDatabase } from '../../src/tenants/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';

const log = pino({ level: 'silent' });
let db: TestDatabase;
let pool: pg.Pool;

async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Partition name for UTC today + offset days. */
async function partition(offsetDays: number): Promise<string> {
  const res = await pool.query<{ name: string }>(
    `SELECT 'messages_' || to_char((now() AT TIME ZONE 'UTC')::date + $1::int, 'YYYY_MM_DD') AS name`,
    [offsetDays],
  );
  return res.rows[0]!.name;
}

async function exists(name: string): Promise<boolean> {
  const res = await pool.query<{ present: boolean }>(`SELECT to_regclass('realtime.' || $1) IS NOT NULL AS present`, [name]);
  return res.rows[0]!.present;
}

async function createDay(offsetDays: number): Promise<void> {
  await pool.query(
    `SELECT realtime.create_messages_partitions((now() AT TIME ZONE 'UTC')::date + $1::int, (now() AT TIME ZONE 'UTC')::date + $1::int)`,
    [offsetDays],
  );
}

beforeAll(async () => {
  db = await createTestDatabase('janitor');
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  await migrateTenantDatabase(pool);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('janitor', () => {
  it('creates partitions ahead and drops those older than 72 hours, periodically, until stopped', async () => {
    const old = await partition(-5);
    const recent = await partition(-2); // ended about 24-48 h ago: kept
    const ahead = await partition(3);
    await createDay(-5);
    await createDay(-2);
    await pool.query(`DROP TABLE realtime.${ahead}`);

    const janitor = startJanitor({ pool, log, intervalMs: 100, firstRunMs: 0 });
    try {
      await waitUntil(async () => !(await exists(old)) && (await exists(ahead)), 5000, 'first pass');
      expect(await exists(recent)).toBe(true);

      // The timer keeps going: a partition dropped again is recreated by a later pass.
      await pool.query(`DROP TABLE realtime.${ahead}`);
      await waitUntil(() => exists(ahead), 5000, 'later pass');
    } finally {
      await janitor.stop();
    }
    // Stopped: nothing happens any more.
    await createDay(-5);
    await new Promise((r) => setTimeout(r, 400));
    expect(await exists(old)).toBe(true);
  });

  it('runOnce reports counts, and failures are logged rather than thrown', async () => {
    const janitor = startJanitor({ pool, log, intervalMs: 60_000 });
    try {
      await janitor.runOnce();
      await createDay(-6);
      await createDay(-7);
      await pool.query(`DROP TABLE realtime.${await partition(1)}`);
      expect(await janitor.runOnce()).toEqual({ created: 1, dropped: 2 });
      expect(await janitor.runOnce()).toEqual({ created: 0, dropped: 0 });
    } finally {
      await janitor.stop();
    }

    let asked = 0;
    const failing = startJanitor({
      pool: async () => {
        asked += 1;
        throw new Error('tenant database unavailable');
      },
      log,
      intervalMs: 50,
      firstRunMs: 0,
    });
    try {
      await waitUntil(() => asked >= 3, 5000, 'retries after failure');
      expect(await failing.runOnce()).toBeNull();
    } finally {
      await failing.stop();
    }
  });
});
