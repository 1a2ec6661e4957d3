import { io as sioConnect, type Socket as SioSocket } from 'socket.io-client';
import { connectMany, encodeClientFrame } from '../lib/raw-ws.js';
import { profilerHandlers, serveRequests } from '../lib/serve.js';
import { PHASE_MEASURE, PHASE_WARM, readDigits } from '../lib/stamp.js';
import { nowUs } from '../lib/time.js';
import { EVENT, pathOf, PHASE_OFF, payloadTemplate, protoOf, ROOM, SEQ_OFF, stamp, TS_OFF, type Target } from './common.js';
import { clientFrameHeaderLength, encodeKind3, kind3PayloadOffset, RawConn, readStats, type Sink } from './rawws.js';

/**
 * A load generator process (forked by run.ts). It holds a share of the subscribers and counts what they receive:
 * deliveries of measured-phase messages, the first and last time one arrived, and a sample of end-to-end latencies
 * (delivery (seq + connection index) % sampleMod === 0, so every message is sampled on a spread of connections).
 * One generator is also given the sender: a sending connection plus a few probe subscribers whose receipts drive the
 * closed loop: a message is in flight until every probe has it, and at most `window` are in flight. Several probes,
 * because the server's fan-out order is arbitrary (uWS keeps a topic's subscribers in a hashed set): a single probe
 * early in that order would let the sender run ahead of the other subscribers, one late in it would hold it back.
 */

// ---- counting ----

let delivered = 0;
let warmDelivered = 0;
let firstUs = 0;
let lastUs = 0;
let sampleMod = 0;
let samples = new Float64Array(0);
let nSamples = 0;
let unexpectedCloses = 0;
let retries = 0;

function resetCounters(mod: number, cap: number): void {
  delivered = 0;
  warmDelivered = 0;
  firstUs = 0;
  lastUs = 0;
  sampleMod = mod;
  if (samples.length !== cap) samples = new Float64Array(cap);
  nSamples = 0;
  readStats.reads = 0;
  readStats.frames = 0;
}

function count(buf: Uint8Array, off: number, index: number, now: number): void {
  if (buf[off + PHASE_OFF] !== PHASE_MEASURE) {
    warmDelivered++;
    return;
  }
  delivered++;
  if (firstUs === 0) firstUs = now;
  lastUs = now;
  if (sampleMod > 0 && nSamples < samples.length && (readDigits(buf, off + SEQ_OFF, 10) + index) % sampleMod === 0) {
    samples[nSamples++] = now - readDigits(buf, off + TS_OFF, 16);
  }
}

const countingSink: Sink = {
  onData(conn, buf, off, now) {
    count(buf, off, conn.index, now);
  },
};

// ---- rooms ----

/**
 * One server's connections. A generator can hold several at once (tagged by the orchestrator, e.g. `uws` and
 * `performer`), so two servers can be measured in alternation without reconnecting; only one carries traffic at a
 * time, so the counters are shared.
 */
interface Room {
  target: Target;
  subscribers: RawConn[];
  sioSubscribers: SioSocket[];
  senderConn: RawConn | null;
  senderSio: SioSocket | null;
  probes: RawConn[];
}

const rooms = new Map<string, Room>();

function roomOf(req: Record<string, unknown>): Room {
  const tag = String(req.tag ?? 'default');
  let room = rooms.get(tag);
  if (!room) {
    room = { target: req.target as Target, subscribers: [], sioSubscribers: [], senderConn: null, senderSio: null, probes: [] };
    rooms.set(tag, room);
  }
  if (req.target) room.target = req.target as Target;
  return room;
}

function connectionCount(): number {
  let n = 0;
  for (const r of rooms.values()) n += r.subscribers.length + r.sioSubscribers.length;
  return n;
}

// ---- subscribers ----

function watchClose(conn: RawConn): void {
  conn.socket.on('close', () => {
    if (!conn.closedByUs) unexpectedCloses++;
  });
}

let closing = false;

async function connect(req: Record<string, unknown>): Promise<object> {
  const room = roomOf(req);
  const target = room.target;
  closing = false;
  const port = Number(req.port);
  const token = String(req.token ?? '');
  const first = Number(req.first);
  const n = Number(req.count);
  const started = Date.now();
  if (req.client === 'socket.io-client') {
    retries += await connectMany(n, Number(req.concurrency ?? 100), async (i) => {
      room.sioSubscribers.push(await openSioClient(port, first + i));
    });
  } else {
    retries += await connectMany(n, Number(req.concurrency ?? 100), async (i) => {
      const conn = await RawConn.open({ port, path: pathOf(target, token), proto: protoOf(target), index: first + i, sink: countingSink, token });
      watchClose(conn);
      room.subscribers.push(conn);
    });
  }
  return { connected: room.subscribers.length + room.sioSubscribers.length, ms: Date.now() - started, retries };
}

/** A real socket.io-client subscriber (to show where the stock client tops out). */
function openSioClient(port: number, index: number): Promise<SioSocket> {
  return new Promise((resolve, reject) => {
    const socket = sioConnect(`http://127.0.0.1:${port}`, {
      transports: ['websocket'],
      query: { room: ROOM },
      forceNew: true,
      reconnection: false,
      timeout: 15_000,
    });
    const scratch = Buffer.allocUnsafe(64);
    socket.on(EVENT, (data: { t: string; s: string; f: string }) => {
      const now = nowUs();
      scratch.write(data.t, TS_OFF, 'latin1');
      scratch.write(data.s, SEQ_OFF, 'latin1');
      scratch[PHASE_OFF] = data.f.charCodeAt(0);
      count(scratch, 0, index, now);
    });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(err));
    socket.on('disconnect', () => {
      if (!closing) unexpectedCloses++;
    });
  });
}

// Keep-alive: every connection gets a heartbeat every 20 s, spread over the 20 s so it never comes as a burst.
let hbTick = 0;
setInterval(() => {
  const slot = hbTick++ % 20;
  for (const room of rooms.values()) {
    for (let i = slot; i < room.subscribers.length; i += 20) room.subscribers[i].heartbeat();
    if (slot === 0) {
      room.senderConn?.heartbeat();
      for (const p of room.probes) p.heartbeat();
    }
  }
}, 1000).unref();

// ---- sender ----

/** Called with the seq of every message the probe receives (closed loop bookkeeping). */
let onProbe: ((seq: number) => void) | null = null;

const probeSink: Sink = {
  onData(conn, buf, off, now) {
    count(buf, off, conn.index, now);
    onProbe?.(readDigits(buf, off + SEQ_OFF, 10));
  },
};

async function setupSender(req: Record<string, unknown>): Promise<object> {
  const room = roomOf(req);
  const target = room.target;
  const port = Number(req.port);
  const token = String(req.token ?? '');
  const probes = Number(req.probes ?? 1);
  // The cluster bench puts the probes where the subscribers are (other nodes than the sender's): one port each, in turn.
  const probePorts = Array.isArray(req.probePorts) && req.probePorts.length > 0 ? (req.probePorts as unknown[]).map(Number) : [port];
  for (let i = 0; i < probes; i++) {
    const probePort = probePorts[i % probePorts.length] as number;
    const probe = await RawConn.open({ port: probePort, path: pathOf(target, token), proto: protoOf(target), index: Number(req.firstProbeIndex) + i, sink: probeSink, token });
    watchClose(probe);
    room.probes.push(probe);
  }
  if (target === 'socketio') {
    room.senderSio = await new Promise<SioSocket>((resolve, reject) => {
      const s = sioConnect(`http://127.0.0.1:${port}`, { transports: ['websocket'], query: { room: ROOM }, forceNew: true, reconnection: false });
      s.once('connect', () => resolve(s));
      s.once('connect_error', reject);
    });
  } else {
    // The sender joins too (Performer requires it); it is not a subscriber (self: false / excluded by publish).
    room.senderConn = await RawConn.open({ port, path: pathOf(target, token), proto: protoOf(target), index: -1, sink: countingSink, token });
    watchClose(room.senderConn);
  }
  return {};
}

/** Builds the per-system send function for one payload size. */
function makeSend(room: Room, payloadBytes: number): (seq: number, phase: number) => void {
  const payload = payloadTemplate(payloadBytes);
  if (room.senderSio) {
    const s = room.senderSio;
    const pad = payload.toString('latin1', payload.indexOf('"p":"') + 5, payload.length - 2);
    return (seq, phase) => {
      s.emit(EVENT, {
        t: String(nowUs()).padStart(16, '0'),
        s: String(seq).padStart(10, '0'),
        f: phase === PHASE_MEASURE ? 'm' : 'w',
        p: pad,
      });
    };
  }
  const conn = room.senderConn;
  if (!conn) throw new Error('no sender in this room');
  const kind3 = encodeKind3(payload);
  const template = encodeClientFrame(2, kind3);
  const payloadOff = clientFrameHeaderLength(kind3.length) + kind3PayloadOffset();
  return (seq, phase) => {
    const frame = Buffer.allocUnsafe(template.length);
    template.copy(frame);
    stamp(frame, payloadOff, nowUs(), seq, phase);
    conn.sendRaw(frame);
  };
}

let seq = 0;

function notify(event: string, extra: object = {}): void {
  process.send?.({ event, at: nowUs(), ...extra });
}

/** Closed loop: at most `window` messages not yet seen by every probe; warm-up, then `durationMs` measured. */
function closedLoop(req: Record<string, unknown>): Promise<object> {
  const window = Number(req.window);
  const probes = roomOf(req).probes.length;
  const seen = new Uint16Array(4096);
  const warmupMs = Number(req.warmupMs);
  const durationMs = Number(req.durationMs);
  const send = makeSend(roomOf(req), Number(req.payloadBytes));
  return new Promise((resolve) => {
    let phase = PHASE_WARM;
    let running = true;
    let inflight = 0;
    let sentMeasured = 0;
    let firstMeasuredSeq = -1;
    let stalls = 0;
    let lastProgress = Date.now();
    let mStart = 0;
    const pump = () => {
      while (running && inflight < window) {
        if (phase === PHASE_MEASURE) {
          if (firstMeasuredSeq < 0) firstMeasuredSeq = seq;
          sentMeasured++;
        }
        send(seq++, phase);
        inflight++;
      }
    };
    onProbe = (s) => {
      if (++seen[s & 4095] < probes) return;
      seen[s & 4095] = 0;
      lastProgress = Date.now();
      if (inflight > 0) inflight--;
      pump();
    };
    const watchdog = setInterval(() => {
      if (running && inflight > 0 && Date.now() - lastProgress > 1000) {
        stalls++;
        inflight = 0;
        seen.fill(0);
        lastProgress = Date.now();
        pump();
      }
    }, 250);
    setTimeout(() => {
      phase = PHASE_MEASURE;
      mStart = nowUs();
      notify('measure-start');
      setTimeout(() => {
        running = false;
        const mEnd = nowUs();
        notify('measure-end');
        clearInterval(watchdog);
        onProbe = null;
        resolve({ sentMeasured, sendDurationUs: mEnd - mStart, stalls, window });
      }, durationMs);
    }, warmupMs);
    pump();
  });
}

/** Open loop: `rate` messages/s on a timer, stamped with the actual send time. */
function openLoop(req: Record<string, unknown>): Promise<object> {
  const rate = Number(req.rate);
  const warmupMs = Number(req.warmupMs);
  const durationMs = Number(req.durationMs);
  const send = makeSend(roomOf(req), Number(req.payloadBytes));
  const intervalUs = 1e6 / rate;
  return new Promise((resolve) => {
    const start = nowUs();
    const mStart = start + warmupMs * 1000;
    const end = mStart + durationMs * 1000;
    let next = start;
    let sentMeasured = 0;
    let measuring = false;
    let maxBehindUs = 0;
    const tick = () => {
      const now = nowUs();
      if (!measuring && now >= mStart) {
        measuring = true;
        notify('measure-start');
      }
      while (next <= now && next < end) {
        const phase = next >= mStart ? PHASE_MEASURE : PHASE_WARM;
        if (phase === PHASE_MEASURE) {
          sentMeasured++;
          maxBehindUs = Math.max(maxBehindUs, now - next);
        }
        send(seq++, phase);
        next += intervalUs;
      }
      if (next >= end) {
        notify('measure-end');
        resolve({ sentMeasured, sendDurationUs: end - mStart, maxBehindUs, rate });
        return;
      }
      setTimeout(tick, Math.max(0, Math.floor((next - nowUs()) / 1000)));
    };
    tick();
  });
}

serveRequests({
  ...profilerHandlers(),
  connect,
  sender: setupSender,
  reset: (req) => {
    resetCounters(Number(req.sampleMod ?? 0), Number(req.sampleCap ?? 0));
    return {};
  },
  closed: closedLoop,
  open: openLoop,
  stats: () => ({ delivered, warmDelivered, firstUs, lastUs, nSamples, unexpectedCloses, retries, connections: connectionCount(), reads: readStats.reads, frames: readStats.frames }),
  samples: () => ({ samples: Array.from(samples.subarray(0, nSamples)) }),
  close: async (req) => {
    closing = true;
    const tags = req.tag === undefined ? [...rooms.keys()] : [String(req.tag)];
    for (const tag of tags) {
      const room = rooms.get(tag);
      if (!room) continue;
      for (const c of room.subscribers) c.close();
      for (const s of room.sioSubscribers) s.disconnect();
      for (const p of room.probes) p.close();
      room.senderConn?.close();
      room.senderSio?.disconnect();
      rooms.delete(tag);
    }
    if (rooms.size === 0) unexpectedCloses = 0;
    return {};
  },
});
process.send?.({ type: 'ready' });
