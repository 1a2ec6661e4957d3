import os from 'node:os';
import path from 'node:path';

/**
 * The configuration of a bench's Performer process: tenant limits raised so that none cuts a run short (the default
 * tenant stores its limits when it is created, so a bench recreates its database to change them), logs off unless
 * BENCH_LOG_LEVEL says otherwise, and the encryption key and data directory kept out of the working tree. Entries of
 * `extra` are added or win.
 */
export function benchServerEnv(databaseUrl: string, dataDirName: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
    TENANT_MAX_CONCURRENT_USERS: '1000000',
    TENANT_MAX_EVENTS_PER_SECOND: '1000000000',
    TENANT_MAX_JOINS_PER_SECOND: '1000000',
    TENANT_MAX_CHANNELS_PER_CLIENT: '1000',
    // The tenant store keeps this in an int4 column: 2 GB/s is the largest that fits.
    TENANT_MAX_BYTES_PER_SECOND: '2000000000',
    DB_ENC_KEY: 'performer-bench-encryption-key-not-a-secret',
    PERFORMER_DATA_DIR: process.env.BENCH_DATA_DIR ?? path.join(os.tmpdir(), dataDirName),
    ...extra,
  };
}

/** Waits (at most a minute) until the default tenant's database-broadcast stream is up, so no run measures its start. */
export async function tenantReplicationUp(server: { ctx: { registry: { peek(id: string): { replication?: { status: string } | null } | null | undefined } } }, tenantId: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = server.ctx.registry.peek(tenantId)?.replication?.status;
    if (status === 'up') return;
    if (Date.now() > deadline) throw new Error(`tenant replication not up after 60 s (status ${status ?? 'none'})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
