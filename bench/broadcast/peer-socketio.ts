import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { serveServerRequests } from '../lib/serve.js';
import { ROOM } from './common.js';

/**
 * The same broadcast job on socket.io 4 (websocket transport only, no compression): a client connecting with
 * `?room=<room>` joins that room; an event `b` from a client is re-emitted to the room, sender excluded
 * (`socket.to(room).emit`), so the payload object is parsed once and serialized once per message.
 *
 * Forked by run.ts (reports `{ type: 'ready', port }` over IPC) or standalone: `node --import tsx bench/broadcast/peer-socketio.ts`.
 */
const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 5_000_000,
  cors: { origin: false },
});

io.on('connection', (socket) => {
  const q = socket.handshake.query.room;
  const room = typeof q === 'string' && q !== '' ? q : ROOM;
  void socket.join(room);
  socket.on('b', (data: unknown) => {
    socket.to(room).emit('b', data);
  });
});

const port = Number(process.env.PEER_PORT ?? 0);
http.listen(port, '127.0.0.1', () => {
  const address = http.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  if (process.send) {
    process.send({ type: 'ready', port: actual });
    serveServerRequests(async () => {
      io.disconnectSockets(true);
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    });
  } else {
    console.log(`peer-socketio listening on 127.0.0.1:${actual}`);
  }
});
