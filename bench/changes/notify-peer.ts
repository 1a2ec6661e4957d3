import pg from 'pg';
import { serveServerRequests } from '../lib/serve.js';
import { nowUs } from '../lib/time.js';
import { loadUws } from '../lib/uws.js';

/**
 * The hand-built pipeline users write instead of Postgres Changes: an AFTER INSERT trigger calls
 * `pg_notify(channel, row_to_json(NEW)::text)`, one node-postgres client LISTENs, and every notification is
 * forwarded as is (the row's JSON text, one WebSocket text frame) to the subscribers of one topic of a bare
 * uWebSockets.js server (`app.publish`, the same pub/sub the broadcast bench's bare peer uses). No RLS, no
 * envelope, no per-subscriber work: the cheapest forwarder one can write, i.e. a ceiling for that design.
 *
 * Subscribers send the text `join:<topic>` and get `joined` (the bare peer's protocol, bench/broadcast/peer-uws.ts).
 * Env: BENCH_DATABASE_URL, NOTIFY_CHANNEL, NOTIFY_TOPIC. Reports `{ type: 'ready', port }` over IPC; serves
 * `stats` (notifications received at the listener, first/last receipt in monotonic µs), `reset` and `stop`.
 */
const url = process.env.BENCH_DATABASE_URL;
const channel = process.env.NOTIFY_CHANNEL ?? 'bench_changes';
const topic = process.env.NOTIFY_TOPIC ?? 'realtime:bench';
/**
 * NOTIFY_ENVELOPE=1: the notification is Performer's `data` object, built by the trigger (bench_notify_env_fn), and
 * the frame is Performer's vsn 2.0.0 push around it, so both pipelines send the same bytes per change.
 */
const envelope = process.env.NOTIFY_ENVELOPE === '1';
const head = `[null,null,${JSON.stringify(topic)},"postgres_changes",{"ids":[38327120],"data":`;
if (!url) throw new Error('BENCH_DATABASE_URL is required');

const uws = loadUws();
const textDecoder = new TextDecoder();
const app = uws.App();
let subscribers = 0;
app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 1_000_000,
  idleTimeout: 120,
  maxBackpressure: 64 * 1024 * 1024,
  sendPingsAutomatically: false,
  message: (ws, data, isBinary) => {
    if (isBinary) return;
    const text = textDecoder.decode(data);
    if (text.startsWith('join:')) {
      ws.subscribe(text.slice(5));
      subscribers++;
      ws.send('joined', false);
    }
  },
  close: () => {
    subscribers--;
  },
});

const stats = { notifications: 0, firstUs: 0, lastUs: 0 };
const client = new pg.Client({ connectionString: url, application_name: 'bench_notify_listener' });
client.on('notification', (msg) => {
  const now = nowUs();
  if (stats.firstUs === 0) stats.firstUs = now;
  stats.lastUs = now;
  stats.notifications++;
  app.publish(topic, envelope ? `${head}${msg.payload ?? ''}}]` : (msg.payload ?? ''), false);
});
client.on('error', (err) => {
  console.error('notify-peer: listener connection failed', err);
  process.exit(1);
});
await client.connect();
await client.query(`LISTEN ${channel}`);
const listenerPid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;

app.listen('127.0.0.1', 0, (listenSocket) => {
  if (!listenSocket) {
    console.error('notify-peer: cannot listen');
    process.exit(1);
  }
  // The server commands (CPU profiling included, for --scale --profile) and the forwarder's own.
  serveServerRequests(
    async () => {
      uws.us_listen_socket_close(listenSocket);
      await client.end().catch(() => undefined);
    },
    {
      stats: () => ({ ...stats, subscribers }),
      reset: () => {
        stats.notifications = 0;
        stats.firstUs = 0;
        stats.lastUs = 0;
        return {};
      },
    },
  );
  process.send?.({ type: 'ready', port: uws.us_socket_local_port(listenSocket), listenerPid });
});
