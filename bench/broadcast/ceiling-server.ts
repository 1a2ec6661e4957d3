import { createHash } from 'node:crypto';
import net from 'node:net';
import { serveRequests } from '../lib/serve.js';
import { PHASE_MEASURE } from '../lib/stamp.js';
import { payloadTemplate, stamp } from './common.js';
import { encodeKind4 } from './rawws.js';

/**
 * Measures the load generator alone: a plain TCP server that accepts the WebSocket upgrade, answers `join:` with
 * `joined`, and on `blast` writes pre-encoded kind-4 frames (the exact frames Performer delivers) to every socket
 * as fast as the kernel takes them. Writing a prebuilt 64 KiB chunk costs the blaster almost nothing, so the
 * deliveries/s the generators count is their own ceiling on this machine.
 */
const sockets = new Set<net.Socket>();

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let head = '';
  let upgraded = false;
  socket.on('data', (chunk) => {
    if (upgraded) {
      // Any client frame after the upgrade is the join (or a heartbeat); answer the first with `joined`.
      if (!sockets.has(socket)) {
        sockets.add(socket);
        socket.write(Buffer.concat([Buffer.from([0x81, 6]), Buffer.from('joined')]));
      }
      return;
    }
    head += chunk.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end === -1) return;
    const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11B85`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    upgraded = true;
    if (head.length > end + 4) socket.emit('data', Buffer.from(head.slice(end + 4), 'latin1'));
  });
  socket.on('error', () => sockets.delete(socket));
  socket.on('close', () => sockets.delete(socket));
});

function blastChunk(payloadBytes: number): { chunk: Buffer; frames: number } {
  const payload = payloadTemplate(payloadBytes);
  stamp(payload, 0, 0, 0, PHASE_MEASURE);
  const body = encodeKind4(payload);
  const hdr = body.length < 126 ? Buffer.from([0x82, body.length]) : Buffer.from([0x82, 126, body.length >> 8, body.length & 0xff]);
  const frame = Buffer.concat([hdr, body]);
  const frames = Math.max(1, Math.floor(65536 / frame.length));
  return { chunk: Buffer.concat(Array.from({ length: frames }, () => frame)), frames };
}

serveRequests({
  blast: async (req) => {
    const durationMs = Number(req.durationMs);
    const { chunk, frames } = blastChunk(Number(req.payloadBytes));
    const end = Date.now() + durationMs;
    let written = 0;
    await Promise.all(
      [...sockets].map(
        (socket) =>
          new Promise<void>((resolve) => {
            const pump = () => {
              while (Date.now() < end && !socket.destroyed) {
                written += frames;
                if (!socket.write(chunk)) return void socket.once('drain', pump);
              }
              resolve();
            };
            pump();
          }),
      ),
    );
    return { framesWritten: written };
  },
  stop: async () => {
    for (const s of sockets) s.destroy();
    server.close();
    setTimeout(() => process.exit(0), 50);
  },
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
});
