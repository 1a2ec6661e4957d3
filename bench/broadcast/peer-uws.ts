import { serveServerRequests } from '../lib/serve.js';
import { loadUws } from '../lib/uws.js';

/**
 * The ceiling: a bare uWebSockets.js pub/sub server doing Performer's broadcast job and nothing else.
 * A client sends the text `join:<topic>` and is subscribed (answer: text `joined`); a binary kind-3 push
 * (realtime-js's user broadcast) is re-published to its topic as the kind-4 frame Performer would deliver,
 * excluding the sender. Same socket options as Performer (no compression, 1 MiB backpressure, 60 s idle timeout).
 *
 * Forked by run.ts (reports `{ type: 'ready', port }` over IPC) or standalone: `node --import tsx bench/broadcast/peer-uws.ts`.
 */
const uws = loadUws();
const textDecoder = new TextDecoder();

const app = uws.App();
app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 5_000_000,
  idleTimeout: 60,
  maxBackpressure: 1024 * 1024,
  sendPingsAutomatically: false,
  message: (ws, data, isBinary) => {
    if (!isBinary) {
      const text = textDecoder.decode(data);
      if (text.startsWith('join:')) {
        ws.subscribe(text.slice(5));
        ws.send('joined', false);
      }
      return;
    }
    const b = new Uint8Array(data);
    if (b.length < 7 || b[0] !== 3) return;
    // 03 | join_ref_len ref_len topic_len event_len meta_len encoding | join_ref ref topic event meta | payload
    const topicLen = b[3], eventLen = b[4], metaLen = b[5], encoding = b[6];
    const topicStart = 7 + b[1] + b[2];
    const payloadStart = topicStart + topicLen + eventLen + metaLen;
    if (payloadStart > b.length) return;
    const out = new Uint8Array(5 + topicLen + eventLen + (b.length - payloadStart));
    out[0] = 4;
    out[1] = topicLen;
    out[2] = eventLen;
    out[3] = 0;
    out[4] = encoding;
    out.set(b.subarray(topicStart, topicStart + topicLen + eventLen), 5);
    out.set(b.subarray(payloadStart), 5 + topicLen + eventLen);
    const topic = Buffer.from(data, topicStart, topicLen).toString('latin1');
    ws.publish(topic, out, true);
  },
});

const port = Number(process.env.PEER_PORT ?? 0);
app.listen('127.0.0.1', port, (listenSocket) => {
  if (!listenSocket) {
    console.error('peer-uws: cannot listen');
    process.exit(1);
  }
  const actual = uws.us_socket_local_port(listenSocket);
  if (process.send) {
    process.send({ type: 'ready', port: actual });
    serveServerRequests(async () => uws.us_listen_socket_close(listenSocket));
  } else {
    console.log(`peer-uws listening on 127.0.0.1:${actual}`);
  }
});
