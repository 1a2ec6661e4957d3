import net from 'node:net';
import { nowUs, sleep } from './time.js';

/** Every client reads into this one buffer: frames are looked at in place, only one split across reads is copied. */
const SHARED_READ = Buffer.allocUnsafe(256 * 1024);
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/**
 * A TCP connection to 127.0.0.1:`port` that asks for a WebSocket upgrade of `path` once connected; every read lands
 * in the shared buffer and is handed to `onRead` (bytes buf[0, n), valid until the callback returns).
 */
export function upgradeSocket(port: number, path: string, onRead: (buf: Buffer, n: number) => void): net.Socket {
  const socket = net.connect({
    host: '127.0.0.1',
    port,
    noDelay: true,
    onread: {
      buffer: SHARED_READ,
      callback: (n: number, buf: Uint8Array) => {
        onRead(buf as Buffer, n);
        return true;
      },
    },
  });
  socket.on('connect', () => {
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  return socket;
}

/**
 * A lean WebSocket client over `net` for the benches' subscribers: HTTP upgrade, frame parsing in the shared read
 * buffer, ping answers and close handling. A subclass sends its join once upgraded (`onUpgraded`), reads frames
 * (`onFrame`, with the receipt time of the read) and calls `confirm()` once it is subscribed, which settles
 * {@link RawWsClient.connect}'s promise.
 */
export abstract class RawWsClient {
  readonly socket: net.Socket;
  /** Subscribed: set by confirm(). */
  protected joined = false;
  /** The socket is gone (closed by either side): nothing is written any more. */
  protected closed = false;
  /** close() was called: the end is ours, not the server's. */
  closedByUs = false;
  private upgraded = false;
  private head = '';
  private pending: Buffer | null = null;
  private settle: ((err: Error | null) => void) | null = null;

  protected constructor(port: number, path: string) {
    this.socket = upgradeSocket(port, path, (buf, n) => this.onRead(buf, n));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => {
      this.closed = true;
      if (this.joined && !this.closedByUs) this.onUnexpectedClose();
      this.fail(new Error(`connection closed before the subscription was confirmed (${this.closedState()})`));
    });
  }

  /** Resolves once `client` confirmed its subscription; rejects (and drops the socket) on failure or timeout. */
  protected static connect<T extends RawWsClient>(client: T, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => client.fail(new Error('connect/join/subscribe timed out')), timeoutMs);
      client.settle = (err) => {
        clearTimeout(timer);
        if (err) {
          client.socket.destroy();
          reject(err);
        } else resolve(client);
      };
    });
  }

  close(): void {
    this.closedByUs = true;
    this.closed = true;
    this.socket.destroy();
  }

  /** Sends the join once the upgrade is through. */
  protected abstract onUpgraded(): void;
  /** A text (op 1) or binary (op 2) frame: payload bytes buf[p, e), read at `now` (µs). */
  protected abstract onFrame(op: 1 | 2, buf: Buffer, p: number, e: number, now: number): void;
  /** The server closed a subscribed connection. */
  protected abstract onUnexpectedClose(): void;
  /** Extra words for the error of a connection that closed before it was subscribed. */
  protected closedState(): string {
    return `upgraded ${this.upgraded}`;
  }

  protected sendText(text: string): void {
    if (!this.closed) this.socket.write(encodeClientFrame(1, Buffer.from(text)));
  }

  protected fail(err: Error): void {
    const settle = this.settle;
    this.settle = null;
    settle?.(err);
  }

  protected confirm(): void {
    this.joined = true;
    const settle = this.settle;
    this.settle = null;
    settle?.(null);
  }

  private onRead(buf: Buffer, n: number): void {
    if (this.upgraded) return this.onBytes(buf, n, nowUs());
    this.head += buf.toString('latin1', 0, n);
    const end = this.head.indexOf('\r\n\r\n');
    if (end === -1) {
      if (this.head.length > 16_384) this.fail(new Error('oversized upgrade response'));
      return;
    }
    const status = this.head.slice(0, this.head.indexOf('\r\n'));
    if (!status.startsWith('HTTP/1.1 101')) return this.fail(new Error(`upgrade refused: ${status} ${this.head.slice(end + 4, end + 300)}`));
    this.upgraded = true;
    // latin1 round-trips bytes, so frames that came with the upgrade response are intact.
    const rest = Buffer.from(this.head.slice(end + 4), 'latin1');
    this.head = '';
    this.onUpgraded();
    if (rest.length > 0) this.onBytes(rest, rest.length, nowUs());
  }

  /**
   * Server bytes buf[0, len) after the upgrade, read at `now` (µs). This parser hands every complete frame to
   * onFrame / onControl; a client that looks at frames in part overrides it.
   */
  protected onBytes(chunk: Buffer, len: number, now: number): void {
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
      const op = buf[off]! & 0x0f;
      let plen = buf[off + 1]! & 0x7f;
      let hdr = 2;
      if (plen === 126) {
        if (end - off < 4) break;
        plen = (buf[off + 2]! << 8) | buf[off + 3]!;
        hdr = 4;
      } else if (plen === 127) {
        if (end - off < 10) break;
        plen = buf[off + 6]! * 0x1000000 + ((buf[off + 7]! << 16) | (buf[off + 8]! << 8) | buf[off + 9]!);
        hdr = 10;
      }
      if (end - off < hdr + plen) break;
      const p = off + hdr;
      const e = p + plen;
      if (op === 1 || op === 2) this.onFrame(op, buf, p, e, now);
      else this.onControl(op, buf, p, e);
      off = e;
    }
    // A frame split across reads: keep its bytes (the shared read buffer is reused).
    if (off < end) this.pending = Buffer.from(buf.subarray(off, end));
  }

  /** A control frame, payload buf[p, e): ping is answered, close ends the connection. */
  protected onControl(op: number, buf: Buffer, p: number, e: number): void {
    if (op === 9) {
      if (!this.closed) this.socket.write(encodeClientFrame(10, Buffer.from(buf.subarray(p, e))));
    } else if (op === 8) {
      this.closed = true;
      this.socket.end();
      this.fail(new Error(`server closed the connection ${e - p >= 2 ? (buf[p]! << 8) | buf[p + 1]! : ''}`));
    }
  }
}

/** A masked client frame with mask key 0 (the payload goes out unchanged). */
export function encodeClientFrame(opcode: number, payload: Uint8Array): Buffer {
  const len = payload.length;
  const hdr = len < 126 ? 6 : len < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(hdr + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(0, 2);
    out.writeUInt32BE(len, 6);
  }
  out.writeUInt32BE(0, hdr - 4); // mask key 0
  out.set(payload, hdr);
  return out;
}

/**
 * Opens `count` connections, `concurrency` at a time (`open(i)` for i in [0, count)); a failed attempt is tried again
 * (twice at most, after a short pause: a loaded machine now and then drops a connection during the upgrade).
 */
export async function connectMany(count: number, concurrency: number, open: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  let retries = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (next < count && failure === null) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          await open(i);
          break;
        } catch (err) {
          if (attempt >= 3) {
            failure ??= err;
            break;
          }
          retries++;
          await sleep(200 * attempt);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (failure !== null) throw failure;
  return retries;
}
