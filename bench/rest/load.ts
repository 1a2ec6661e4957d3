import net from 'node:net';
import { serveRequests } from '../lib/serve.js';
import { percentile } from '../lib/stats.js';

/**
 * The REST bench's load generator (a child process): `connections` keep-alive HTTP/1.1 connections, each sending
 * the same prebuilt request again as soon as the previous answer is in (a closed loop), for `durationMs` after a
 * `warmupMs` not counted. Raw sockets rather than fetch: undici costs several times the CPU of the servers measured,
 * on a machine whose 2 cores they share. Answers must carry Content-Length (small answers do; both servers send it).
 *
 * `run { port, request, connections, warmupMs, durationMs }` -> { requests, seconds, p50Ms, p99Ms, statuses }.
 */

interface RunArgs {
  port: number;
  /** The whole request text (request line, headers, blank line, body). */
  request: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
}

/** One connection's loop; `onAnswer(status, ms)` per answer, until `stop()` is true. */
function loop(port: number, request: Buffer, onAnswer: (status: number, ms: number) => void, stop: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let sentAt = 0;
    const send = () => {
      if (stop()) {
        socket.end();
        return resolve();
      }
      sentAt = performance.now();
      socket.write(request);
    };
    socket.on('connect', send);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.subarray(0, end).toString('latin1');
        const length = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (!length) {
          if (/\r\ntransfer-encoding: *chunked/i.test(head)) return reject(new Error('chunked answer: the bench expects small answers'));
        }
        const total = end + 4 + (length ? Number(length[1]) : 0);
        if (buf.length < total) return;
        buf = buf.subarray(total);
        onAnswer(Number(head.slice(9, 12)), performance.now() - sentAt);
        send();
      }
    });
  });
}

async function run(a: RunArgs): Promise<Record<string, unknown>> {
  const request = Buffer.from(a.request, 'latin1');
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let measuring = false;
  let stopped = false;
  let requests = 0;
  const onAnswer = (status: number, ms: number) => {
    if (!measuring) return;
    requests++;
    statuses[status] = (statuses[status] ?? 0) + 1;
    latencies.push(ms);
  };
  const loops = Array.from({ length: a.connections }, () => loop(a.port, request, onAnswer, () => stopped));
  await new Promise((r) => setTimeout(r, a.warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, a.durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stopped = true;
  await Promise.all(loops);
  latencies.sort((x, y) => x - y);
  return { requests, seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), statuses };
}

serveRequests({ run: (req) => run(req as unknown as RunArgs) });
process.send?.({ type: 'ready' });
