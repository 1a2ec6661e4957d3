/**
 * The floor of the storage bench: bare handlers that copy request bodies to files on the same disk and stream files
 * back, with nothing else (no auth, no database, no metering). `uws`: uWebSockets.js with pause/resume on upload and
 * tryEnd/onWritable on download, as Performer's storage module does; `node`: node:http with pipeline() and
 * createReadStream().pipe(res). Routes on both: `POST /<name>` stores, `GET /<name>` serves.
 *
 * IPC: `{ type: 'ready', uwsPort, nodePort }`; the commands of ../lib/serve.ts.
 */
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { serveRequests } from '../lib/serve.js';
import { loadUws } from '../lib/uws.js';

const dir = process.env.BENCH_FLOOR_DIR;
if (!dir) throw new Error('BENCH_FLOOR_DIR is required');
const CHUNK = 256 * 1024;
const fileOf = (url: string) => path.join(dir, url.replace(/[^a-zA-Z0-9._-]/g, '_'));

const uws = loadUws();
const app = uws.App();
app.post('/*', (res, req) => {
  const file = createWriteStream(fileOf(req.getUrl()), { highWaterMark: CHUNK });
  // Once answered (or aborted) the response must not be touched again.
  let over = false;
  let paused = false;
  res.onAborted(() => {
    over = true;
    file.destroy();
  });
  file.on('drain', () => {
    if (!over && paused) {
      paused = false;
      res.resume();
    }
  });
  res.onData((chunk, isLast) => {
    if (!file.write(Buffer.from(new Uint8Array(chunk))) && !isLast) {
      paused = true;
      res.pause();
    }
    if (isLast) {
      file.end(() => {
        if (over) return;
        over = true;
        res.cork(() => res.writeStatus('200 OK').end('{"ok":true}'));
      });
    }
  });
});
app.get('/*', (res, req) => {
  const name = fileOf(req.getUrl());
  const size = statSync(name).size;
  const stream = createReadStream(name, { highWaterMark: CHUNK });
  let done = false;
  res.onAborted(() => {
    done = true;
    stream.destroy();
  });
  let pending: Buffer | null = null;
  let pendingOffset = 0;
  res.onWritable((offset) => {
    if (!pending) return true;
    const [ok, finished] = res.tryEnd(pending.subarray(offset - pendingOffset), size);
    if (finished) done = true;
    else if (ok) {
      pending = null;
      stream.resume();
    }
    return ok;
  });
  stream.on('data', (data: string | Buffer) => {
    const chunk = data as Buffer;
    if (done) return;
    let ok = false;
    let finished = false;
    res.cork(() => {
      pendingOffset = res.getWriteOffset();
      [ok, finished] = res.tryEnd(chunk, size);
    });
    if (finished) done = true;
    else if (!ok) {
      pending = chunk;
      stream.pause();
    }
  });
});

const node = http.createServer((req, res) => {
  const name = fileOf(req.url ?? '/');
  if (req.method === 'POST') {
    pipeline(req, createWriteStream(name, { highWaterMark: CHUNK })).then(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'),
      () => res.destroy(),
    );
  } else {
    res.writeHead(200, { 'content-length': statSync(name).size });
    createReadStream(name, { highWaterMark: CHUNK }).pipe(res);
  }
});

app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) throw new Error('floor: uWS did not listen');
  const uwsPort = uws.us_socket_local_port(socket);
  node.listen(0, '127.0.0.1', () => {
    const nodePort = (node.address() as { port: number }).port;
    serveRequests({ stop: () => process.exit(0) });
    process.send?.({ type: 'ready', uwsPort, nodePort });
  });
});
