import { loadPerformer } from '../common/performer.js';
import { benchServerEnv } from '../common/server-env.js';

const { loadConfig, startServer, signHs256 } = await loadPerformer();

/**
 * Performer in its own process for the presence bench, so its memory is measured apart from the load generator.
 * Every limit that would cut a churn run short is raised (run.ts recreates the database for each run: the default
 * tenant's limits are stored when it is created). IPC: `{type:'ready', port, token}` once listening; requests
 * `{id, cmd:'mem'}` (two full GCs, then process memory and the tenant's presence entry count) and `{id, cmd:'stop'}`.
 */
const url = process.env.BENCH_DATABASE_URL;
if (!url) throw new Error('BENCH_DATABASE_URL is required');

const config = loadConfig(benchServerEnv(url, 'performer-bench-presence-data', {
  TENANT_MAX_PRESENCE_EVENTS_PER_SECOND: '100000000',
  CLIENT_PRESENCE_MAX_CALLS: '1000',
}));
const server = await startServer(config, { databaseUrl: url });
const token = await signHs256({ role: 'anon', exp: Math.floor(Date.now() / 1000) + 3 * 3600 }, config.jwtSecret);
process.send?.({ type: 'ready', port: server.port, token });

const gc = (globalThis as { gc?: () => void }).gc;

/**
 * Memory after full GCs with pauses between them: V8 gives freed pages back to the OS a little after a GC, so RSS
 * read right after one still counts the garbage of the previous phase.
 */
async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 200));
  }
  gc?.();
  return process.memoryUsage();
}

process.on('message', (raw) => {
  const req = raw as { id?: number; cmd?: string };
  if (typeof req.id !== 'number') return;
  const answer = (body: Record<string, unknown>) => process.send?.({ id: req.id, ...body });
  if (req.cmd === 'mem') {
    void settledMemory().then((mem) => {
      const tenant = server.ctx.registry.peek(config.tenantId);
      answer({ gc: Boolean(gc), rss: mem.rss, heapUsed: mem.heapUsed, external: mem.external, entries: tenant?.presence.size ?? 0 });
    });
  } else if (req.cmd === 'stop') {
    void server.stop().then(() => {
      answer({ ok: true });
      setTimeout(() => process.exit(0), 50);
    });
  }
});
// The orchestrator is gone: do not linger.
process.on('disconnect', () => process.exit(0));
