import net from 'node:net';
import { nowUs, readDigits } from '../broadcast/common.js';
import { encodeClientFrame } from '../broadcast/rawws.js';

/**
 * A lean subscriber for database broadcasts, over `net` (the raw client of bench/broadcast/rawws.ts only reads
 * payloads at a fixed offset, and a database broadcast carries a `{"id": uuid}` meta and the jsonb-rendered payload,
 * so the stamp is not where that client looks). Reads go into one shared buffer; every complete data frame is
 * searched for the stamp marker in place, and only a frame split across reads is copied.
 *
 * Payload stamp (a JSON string value, so jsonb keeps it byte-for-byte): `"t": "<phase><16-digit µs><10-digit txn>"`.
 * jsonb renders `"t": "` with a space and sorts keys by length, so `t` comes first in the payload; vsn 1.0.0 embeds
 * the same text in its JSON frame, vsn 2.0.0 (kind-4 binary frame) carries it as the payload bytes.
 */

export type Vsn = '1.0.0' | '2.0.0';
export const TOPIC = 'bench';
export const CHANNEL = `realtime:${TOPIC}`;
export const EVENT = 'e';
export const PHASE_WARM = 0x77; // 'w'
export const PHASE_MEASURE = 0x6d; // 'm'
/** Stamp text: phase char, 16-digit send time (µs, monotonic, this machine), 10-digit transaction number. */
export const STAMP_LEN = 27;
const MARKER = Buffer.from('"t": "', 'latin1');

export function stampText(phase: number, sendUs: number, txn: number): string {
  return `${String.fromCharCode(phase)}${String(Math.floor(sendUs)).padStart(16, '0')}${String(txn).padStart(10, '0')}`;
}

/** What subscribers of one run share: counters and a latency sample (send stamp, txn, receipt). */
export class Tally {
  delivered = 0;
  warmDelivered = 0;
  firstUs = 0;
  lastUs = 0;
  /** Record one delivery in `sampleEvery` (a global counter, so it is spread over subscribers and messages). */
  sampleEvery = 1;
  private tick = 0;
  nSamples = 0;
  sendUs: Float64Array;
  recvUs: Float64Array;
  txn: Float64Array;
  unexpectedCloses = 0;
  unparsed = 0;

  constructor(readonly capacity: number) {
    this.sendUs = new Float64Array(capacity);
    this.recvUs = new Float64Array(capacity);
    this.txn = new Float64Array(capacity);
  }

  reset(sampleEvery: number): void {
    this.delivered = 0;
    this.warmDelivered = 0;
    this.firstUs = 0;
    this.lastUs = 0;
    this.sampleEvery = Math.max(1, Math.floor(sampleEvery));
    this.tick = 0;
    this.nSamples = 0;
    this.unparsed = 0;
  }

  /** One delivered frame whose stamp starts at `s`. */
  count(buf: Buffer, s: number, now: number): void {
    if (buf[s] !== PHASE_MEASURE) {
      this.warmDelivered++;
      return;
    }
    this.delivered++;
    if (this.firstUs === 0) this.firstUs = now;
    this.lastUs = now;
    if (++this.tick >= this.sampleEvery) {
      this.tick = 0;
      const i = this.nSamples;
      if (i < this.capacity) {
        this.sendUs[i] = readDigits(buf, s + 1, 16);
        this.txn[i] = readDigits(buf, s + 17, 10);
        this.recvUs[i] = now;
        this.nSamples = i + 1;
      }
    }
  }
}

const SHARED_READ = Buffer.allocUnsafe(256 * 1024);
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

export interface SubscriberOptions {
  port: number;
  token: string;
  vsn: Vsn;
  tally: Tally;
  timeoutMs?: number;
}

export class Subscriber {
  readonly socket: net.Socket;
  private upgraded = false;
  private joined = false;
  private closedByUs = false;
  private head = '';
  private pending: Buffer | null = null;
  private settle: ((err: Error | null) => void) | null;

  private constructor(
    private readonly opts: SubscriberOptions,
    settle: (err: Error | null) => void,
  ) {
    this.settle = settle;
    const path = `/socket/websocket?apikey=${opts.token}&vsn=${opts.vsn}`;
    this.socket = net.connect({
      host: '127.0.0.1',
      port: opts.port,
      noDelay: true,
      onread: {
        buffer: SHARED_READ,
        callback: (n: number, buf: Uint8Array) => {
          this.onRead(buf as Buffer, n);
          return true;
        },
      },
    });
    this.socket.on('connect', () => {
      this.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${opts.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => {
      if (this.joined && !this.closedByUs) opts.tally.unexpectedCloses++;
      this.fail(new Error('connection closed before join'));
    });
  }

  /** Connects, upgrades and joins `realtime:bench` (public); resolves once the join is confirmed. */
  static open(opts: SubscriberOptions): Promise<Subscriber> {
    return new Promise((resolve, reject) => {
      let sub: Subscriber | null = null;
      const timer = setTimeout(() => sub?.fail(new Error('connect/join timed out')), opts.timeoutMs ?? 15_000);
      sub = new Subscriber(opts, (err) => {
        clearTimeout(timer);
        if (err) {
          sub?.socket.destroy();
          reject(err);
        } else resolve(sub as Subscriber);
      });
    });
  }

  heartbeat(): void {
    if (!this.joined || this.closedByUs) return;
    this.sendText(this.opts.vsn === '2.0.0' ? '[null,"hb","phoenix","heartbeat",{}]' : '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"hb"}');
  }

  close(): void {
    this.closedByUs = true;
    this.socket.destroy();
  }

  private sendText(text: string): void {
    this.socket.write(encodeClientFrame(1, Buffer.from(text)));
  }

  private fail(err: Error): void {
    const settle = this.settle;
    this.settle = null;
    settle?.(err);
  }

  private onRead(buf: Buffer, n: number): void {
    if (!this.upgraded) {
      this.head += buf.toString('latin1', 0, n);
      const end = this.head.indexOf('\r\n\r\n');
      if (end === -1) return;
      const status = this.head.slice(0, this.head.indexOf('\r\n'));
      if (!status.startsWith('HTTP/1.1 101')) return this.fail(new Error(`upgrade refused: ${status}`));
      this.upgraded = true;
      const rest = Buffer.from(this.head.slice(end + 4), 'latin1');
      this.head = '';
      this.join();
      if (rest.length > 0) this.onFrames(rest, rest.length);
      return;
    }
    this.onFrames(buf, n);
  }

  private join(): void {
    const payload =
      `{"config":{"broadcast":{"self":false,"ack":false},"presence":{"key":"","enabled":false},` +
      `"postgres_changes":[],"private":false},"access_token":"${this.opts.token}"}`;
    this.sendText(
      this.opts.vsn === '2.0.0'
        ? `["1","1","${CHANNEL}","phx_join",${payload}]`
        : `{"topic":"${CHANNEL}","event":"phx_join","payload":${payload},"ref":"1","join_ref":"1"}`,
    );
  }

  private onFrames(chunk: Buffer, len: number): void {
    const now = nowUs();
    let buf = chunk;
    let end = len;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, chunk.subarray(0, len)]);
      end = buf.length;
      this.pending = null;
    }
    let off = 0;
    while (off < end) {
      if (end - off < 2) break;
      const op = buf[off] & 0x0f;
      let plen = buf[off + 1] & 0x7f;
      let hdr = 2;
      if (plen === 126) {
        if (end - off < 4) break;
        plen = (buf[off + 2] << 8) | buf[off + 3];
        hdr = 4;
      } else if (plen === 127) {
        if (end - off < 10) break;
        plen = buf[off + 6] * 0x1000000 + ((buf[off + 7] << 16) | (buf[off + 8] << 8) | buf[off + 9]);
        hdr = 10;
      }
      if (end - off < hdr + plen) break;
      this.frame(op, buf, off + hdr, off + hdr + plen, now);
      off += hdr + plen;
    }
    // A frame split across reads: keep its bytes (the shared read buffer is reused).
    if (off < end) this.pending = Buffer.from(buf.subarray(off, end));
  }

  private frame(op: number, buf: Buffer, p: number, e: number, now: number): void {
    if (op === 2) {
      // kind-4 user broadcast: 04 | topic_len event_len meta_len encoding | topic event meta | payload
      if (buf[p] !== 4 || e - p < 5) return;
      const po = p + 5 + buf[p + 1] + buf[p + 2] + buf[p + 3];
      const at = buf.indexOf(MARKER, po);
      if (at === -1 || at + MARKER.length + STAMP_LEN > e) {
        this.opts.tally.unparsed++;
        return;
      }
      this.opts.tally.count(buf, at + MARKER.length, now);
      return;
    }
    if (op === 1) {
      if (this.joined) {
        // vsn 1.0.0 broadcast (JSON text); replies to heartbeats carry no stamp.
        const at = buf.indexOf(MARKER, p);
        if (at !== -1 && at + MARKER.length + STAMP_LEN <= e) this.opts.tally.count(buf, at + MARKER.length, now);
        return;
      }
      const text = buf.toString('utf8', p, e);
      if (text.includes('"phx_reply"') && text.includes(`"${CHANNEL}"`)) {
        if (text.includes('"status":"ok"')) {
          this.joined = true;
          const settle = this.settle;
          this.settle = null;
          settle?.(null);
        } else this.fail(new Error(`join refused: ${text}`));
      } else if (text.includes('"phx_close"') || text.includes('"phx_error"')) {
        this.fail(new Error(`join failed: ${text}`));
      }
      return;
    }
    if (op === 9) this.socket.write(encodeClientFrame(10, Buffer.from(buf.subarray(p, e))));
    else if (op === 8) {
      this.socket.end();
      this.fail(new Error('server closed the connection'));
    }
  }
}
