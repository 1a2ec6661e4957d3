import pg from 'pg';
import { RequestExchange } from '../../src/baas/rest/http/exchange.js';
import { assembleBody, type ResultFields, type ResultLayout } from '../../src/baas/rest/sql/result.js';
import { loadUws } from '../lib/uws.js';
import { serveServerRequests } from '../lib/serve.js';

/**
 * The REST bench's floor (a child process): what a request costs in Node without the API. A bare uWS handler per
 * scenario runs the SQL Performer builds for it (given by the orchestrator, values and all) in the same per-request
 * transaction, the same way (settings + statement in one round trip, http/exchange.ts), on a pg pool of the same
 * size, and answers the body Postgres built. No token check, no grammar, no schema cache, no statement building.
 *
 * Env BENCH_DATABASE_URL, BENCH_POOL_SIZE, BENCH_FLOOR_SCENARIOS (JSON: Scenario[]). IPC: `{ type: 'ready', port }`.
 */

export interface FloorScenario {
  path: string;
  method: 'GET' | 'POST';
  settings: { text: string; values: string[] };
  main: { text: string; values: Array<string | null> };
  layout: ResultLayout;
  status: number;
  contentType: string;
}

const scenarios = JSON.parse(process.env.BENCH_FLOOR_SCENARIOS ?? '[]') as FloorScenario[];
const pool = new pg.Pool({ connectionString: process.env.BENCH_DATABASE_URL, max: Number(process.env.BENCH_POOL_SIZE ?? 10) });
const uws = loadUws();
const app = uws.App();

async function answer(s: FloorScenario): Promise<string> {
  const client = await pool.connect();
  try {
    const rows: ResultFields[] = [];
    const exchange = new RequestExchange({ before: [s.settings], main: s.main }, (fields) => rows.push(fields));
    await (client.query(exchange as never) as unknown as RequestExchange).done;
    return assembleBody(s.layout, rows).body;
  } finally {
    client.release();
  }
}

for (const s of scenarios) {
  app.any(s.path, (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const go = () =>
      answer(s).then(
        (body) => !aborted && res.cork(() => res.writeStatus(String(s.status)).writeHeader('content-type', s.contentType).end(body)),
        (err: unknown) => !aborted && res.cork(() => res.writeStatus('500').end(String(err))),
      );
    if (s.method === 'GET') return void go();
    // Read (and drop) the body, as any handler must.
    res.onData((_chunk, last) => {
      if (last) void go();
    });
  });
}

let listening: unknown = null;
app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) throw new Error('floor: listen failed');
  listening = socket;
  process.send?.({ type: 'ready', port: uws.us_socket_local_port(socket) });
});

serveServerRequests(async () => {
  if (listening) uws.us_listen_socket_close(listening as never);
  await pool.end();
});
