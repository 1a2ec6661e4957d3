import { readFileSync } from 'node:fs';
import type { WebSocket } from 'uWebSockets.js';
import { serveServerRequests } from '../lib/serve.js';
import { loadUws } from '../lib/uws.js';

/**
 * The server of bench/changes/fanout-batch.ts: a bare uWebSockets.js app whose sockets join one topic, and a `run`
 * command that writes `total` frames of `bytes` bytes to every socket, `batch` frames per loop turn, in one of the
 * ways Postgres Changes can: `publish` (one app.publish per frame, as the LISTEN/NOTIFY forwarder does), `cork`
 * (each socket written to in one cork per batch, ws.send per frame), `cork-text` (the same with the frames as
 * strings) or `cork-16k` (each socket in corks of less than uWS's 16 KiB cork buffer). Replies with the process's CPU time for the
 * run once the orchestrator says every byte arrived.
 */
const uws = loadUws();
const app = uws.App();
const sockets = new Set<WebSocket<unknown>>();
const TOPIC = '2|bench';
app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 1_000_000,
  idleTimeout: 120,
  maxBackpressure: 64 * 1024 * 1024,
  sendPingsAutomatically: false,
  open: (ws) => {
    ws.subscribe(TOPIC);
    sockets.add(ws);
  },
  close: (ws) => void sockets.delete(ws),
});

/** Voluntary plus involuntary context switches would need getrusage; CPU time is what the comparison needs. */
const cpuUs = () => {
  const u = process.cpuUsage();
  return { user: u.user, system: u.system };
};

let started: { user: number; system: number } | null = null;

/** uWS's cork buffer (LoopData::CORK_BUFFER_SIZE): a cork holding more spills into a buffer of its own. */
const CORK_BYTES = 16 * 1024;

function send(strategy: string, frames: Buffer[], texts: string[]): void {
  if (strategy === 'publish') {
    for (const frame of frames) app.publish(TOPIC, frame, false);
    return;
  }
  if (strategy === 'cork-text') {
    for (const ws of sockets) ws.cork(() => texts.forEach((text) => ws.send(text, false)));
    return;
  }
  if (strategy === 'cork-16k') {
    // Corks that fit uWS's cork buffer: each leaves in one write, none spills into a socket buffer first.
    for (const ws of sockets) {
      for (let at = 0; at < frames.length; ) {
        let end = at;
        let size = 0;
        while (end < frames.length && (end === at || size + frames[end]!.length + 4 < CORK_BYTES)) size += frames[end++]!.length + 4;
        const from = at;
        ws.cork(() => {
          for (let i = from; i < end; i++) ws.send(frames[i]!, false);
        });
        at = end;
      }
    }
    return;
  }
  for (const ws of sockets) ws.cork(() => frames.forEach((frame) => ws.send(frame, false)));
}

app.listen('127.0.0.1', 0, (listenSocket) => {
  if (!listenSocket) process.exit(1);
  serveServerRequests(async () => uws.us_listen_socket_close(listenSocket), {
    run: (req) => {
      const total = Number(req.total);
      const batch = Number(req.batch);
      // Distinct frames, each its own slice of Buffer's pool, as Performer encodes them (and the same as text).
      const texts = Array.from({ length: batch }, (_, i) => `${i}`.padEnd(Number(req.bytes), 'x'));
      const frames = texts.map((text) => Buffer.from(text));
      started = cpuUs();
      let sent = 0;
      const turn = () => {
        const n = Math.min(batch, total - sent);
        send(String(req.strategy), n === batch ? frames : frames.slice(0, n), n === batch ? texts : texts.slice(0, n));
        sent += n;
        if (sent < total) setImmediate(turn);
      };
      turn();
      return { sockets: sockets.size };
    },
    cpu: () => {
      const now = cpuUs();
      const from = started ?? now;
      return { userUs: now.user - from.user, systemUs: now.system - from.system, loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ')[0] };
    },
  });
  process.send?.({ type: 'ready', port: uws.us_socket_local_port(listenSocket) });
});
