import { RawWsClient } from '../lib/raw-ws.js';
import { EVENT, PAYLOAD_PREFIX_LEN, TOPIC, type Proto } from './common.js';

/**
 * The load generator's WebSocket client (../lib/raw-ws.ts does the upgrade and the shared read buffer). Only the
 * first bytes of a data frame (header and the payload's t/s/f fields) are looked at; the rest is skipped, so a
 * delivery costs a few comparisons and no allocation. Frames split across reads go through a small per-connection
 * scratch buffer.
 */

/** What a connection hands its owner: one data frame (payload starts at `off`), or a decoded text frame. */
export interface Sink {
  onData(conn: RawConn, buf: Buffer, off: number, now: number): void;
}

/** Header + frame bytes a data frame needs in one piece: kind-4 header with the topic and event, plus t/s/f. */
const PREFIX = 96;

/** Socket reads and data frames of this process since the last reset (frames per read shows server-side batching). */
export const readStats = { reads: 0, frames: 0 };

export interface ConnectOptions {
  port: number;
  path: string;
  proto: Proto;
  index: number;
  sink: Sink;
  /** JWT for the phoenix join payload. */
  token?: string;
  timeoutMs?: number;
}

export class RawConn extends RawWsClient {
  readonly index: number;
  readonly proto: Proto;
  private readonly scratch = Buffer.allocUnsafe(PREFIX + 16);
  private have = 0;
  private skip = 0;
  private collect: Buffer | null = null;
  private collectLen = 0;
  private collectOp = 0;
  private readonly sink: Sink;
  private readonly token: string;

  private constructor(opts: ConnectOptions) {
    super(opts.port, opts.path);
    this.index = opts.index;
    this.proto = opts.proto;
    this.sink = opts.sink;
    this.token = opts.token ?? '';
  }

  /** Opens, upgrades and joins the room; resolves once the server confirmed the join. */
  static open(opts: ConnectOptions): Promise<RawConn> {
    return RawWsClient.connect(new RawConn(opts), opts.timeoutMs ?? 15_000);
  }

  /** Sends an already encoded client frame (see encodeClientFrame). */
  sendRaw(frame: Buffer): void {
    if (!this.closed) this.socket.write(frame);
  }

  /** A keep-alive the server understands (phoenix heartbeat; the bare peer ignores text it does not know). */
  heartbeat(): void {
    if (!this.joined || this.closed) return;
    if (this.proto === 'phoenix') this.sendText('[null,"hb","phoenix","heartbeat",{}]');
    else if (this.proto === 'simple') this.sendText('hb');
  }

  /** Load generators count closes themselves (they see the socket). */
  protected onUnexpectedClose(): void {}

  protected onUpgraded(): void {
    if (this.proto === 'phoenix') {
      this.sendText(
        `["1","1","${TOPIC}","phx_join",{"config":{"broadcast":{"self":false,"ack":false},"presence":{"key":"","enabled":false},` +
          `"postgres_changes":[],"private":false},"access_token":"${this.token}"}]`,
      );
    } else if (this.proto === 'simple') {
      this.sendText(`join:${TOPIC}`);
    }
    // socket.io: the server speaks first (engine.io open packet).
  }

  /** Whole frames (the base parser) are only text here; data frames take the prefix parser below. */
  protected onFrame(op: 1 | 2, buf: Buffer, p: number, e: number): void {
    if (op === 1) this.onText(buf.toString('utf8', p, e));
  }

  /** Server bytes: each frame's header and prefix are parsed in place, the rest of a data frame is skipped. */
  protected override onBytes(chunk: Buffer, len: number, now: number): void {
    readStats.reads++;
    let off = 0;
    while (off < len) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, len - off);
        this.skip -= n;
        off += n;
        continue;
      }
      if (this.collect !== null) {
        const n = Math.min(this.collect.length - this.collectLen, len - off);
        chunk.copy(this.collect, this.collectLen, off, off + n);
        this.collectLen += n;
        off += n;
        if (this.collectLen === this.collect.length) {
          const c = this.collect;
          this.collect = null;
          this.control(this.collectOp, c, 0, c.length);
        }
        continue;
      }
      if (this.have === 0) {
        const used = this.frame(chunk, off, len - off, now);
        if (used > 0) {
          off += used;
          continue;
        }
      }
      // A frame split across reads: gather its header and prefix in the scratch buffer.
      const need = needed(this.scratch, this.have);
      const n = Math.min(need - this.have, len - off);
      chunk.copy(this.scratch, this.have, off, off + n);
      this.have += n;
      off += n;
      if (this.have >= needed(this.scratch, this.have)) {
        const used = this.have;
        this.have = 0;
        if (this.frame(this.scratch, 0, used, now) !== used) throw new Error('frame parser out of step');
      }
    }
  }

  /** Parses one frame's header and prefix at `start`; returns the bytes consumed, or -1 when they are not all there. */
  private frame(buf: Buffer, start: number, avail: number, now: number): number {
    if (avail < 2) return -1;
    const op = buf[start]! & 0x0f;
    let plen = buf[start + 1]! & 0x7f;
    let hdr = 2;
    if (plen === 126) {
      if (avail < 4) return -1;
      plen = (buf[start + 2]! << 8) | buf[start + 3]!;
      hdr = 4;
    } else if (plen === 127) {
      if (avail < 10) return -1;
      plen = buf[start + 6]! * 0x1000000 + ((buf[start + 7]! << 16) | (buf[start + 8]! << 8) | buf[start + 9]!);
      hdr = 10;
    }
    const want = plen < PREFIX ? plen : PREFIX;
    if (avail < hdr + want) return -1;
    const p = start + hdr;
    if (op === 2 && plen > 5 && buf[p] === 4) {
      // kind-4 user broadcast: 04 | topic_len event_len meta_len encoding | topic event meta | payload
      const po = p + 5 + buf[p + 1]! + buf[p + 2]! + buf[p + 3]!;
      if (po + PAYLOAD_PREFIX_LEN <= p + want) return this.data(buf, po, now, plen - want, hdr + want);
    } else if (op === 1 && plen > 8 && buf[p] === 0x34 && buf[p + 1] === 0x32 && buf[p + 2] === 0x5b && buf[p + 7] === 0x7b) {
      // socket.io event: 42["b",{...}]
      const po = p + 7;
      if (po + PAYLOAD_PREFIX_LEN <= p + want) return this.data(buf, po, now, plen - want, hdr + want);
    }
    if (plen <= PREFIX) {
      this.control(op, buf, p, plen);
      return hdr + plen;
    }
    this.collect = Buffer.allocUnsafe(plen);
    buf.copy(this.collect, 0, p, p + want);
    this.collectLen = want;
    this.collectOp = op;
    return hdr + want;
  }

  /** A data frame whose payload starts at `po`: handed to the sink; the rest of it (`skip` bytes) is skipped. */
  private data(buf: Buffer, po: number, now: number, skip: number, used: number): number {
    readStats.frames++;
    this.sink.onData(this, buf, po, now);
    this.skip = skip;
    return used;
  }

  /** Everything that is not a data frame: join replies, engine.io open/ping, WebSocket ping and close. */
  private control(op: number, buf: Buffer, p: number, len: number): void {
    if (op === 1) this.onText(buf.toString('utf8', p, p + len));
    else this.onControl(op, buf, p, p + len);
  }

  private onText(text: string): void {
    if (this.proto === 'sio') {
      if (text === '2') return this.sendText('3');
      if (text.startsWith('0{')) return this.sendText('40');
      if (text.startsWith('40')) return this.confirm();
      if (text.startsWith('44')) return this.fail(new Error(`socket.io connect error ${text}`));
      return;
    }
    if (this.joined) return;
    if (this.proto === 'simple') {
      if (text === 'joined') this.confirm();
      return;
    }
    if (text.includes('"phx_reply"') && text.includes(`"${TOPIC}"`)) {
      if (text.includes('"status":"ok"')) this.confirm();
      else this.fail(new Error(`join refused: ${text}`));
    } else if (text.includes('"phx_close"') || text.includes('"phx_error"')) {
      this.fail(new Error(`join failed: ${text}`));
    }
  }
}

/** Bytes the scratch buffer must hold before the frame at its start can be parsed. */
function needed(b: Buffer, have: number): number {
  if (have < 2) return 2;
  const l7 = b[1] & 0x7f;
  const hdr = l7 === 126 ? 4 : l7 === 127 ? 10 : 2;
  if (have < hdr) return hdr;
  const plen = l7 === 126 ? (b[2] << 8) | b[3] : l7 === 127 ? b[6] * 0x1000000 + ((b[7] << 16) | (b[8] << 8) | b[9]) : l7;
  return hdr + (plen < PREFIX ? plen : PREFIX);
}

export function clientFrameHeaderLength(payloadLength: number): number {
  return payloadLength < 126 ? 6 : payloadLength < 65536 ? 8 : 14;
}

/** The kind-3 user broadcast push realtime-js sends (JSON encoding, no metadata). */
export function encodeKind3(payload: Uint8Array, joinRef = '1', ref = '2'): Buffer {
  const jr = Buffer.from(joinRef);
  const rf = Buffer.from(ref);
  const topic = Buffer.from(TOPIC);
  const event = Buffer.from(EVENT);
  const head = Buffer.from([3, jr.length, rf.length, topic.length, event.length, 0, 1]);
  return Buffer.concat([head, jr, rf, topic, event, payload]);
}

/** Byte offset of the payload inside encodeKind3's output. */
export function kind3PayloadOffset(joinRef = '1', ref = '2'): number {
  return 7 + Buffer.byteLength(joinRef) + Buffer.byteLength(ref) + Buffer.byteLength(TOPIC) + Buffer.byteLength(EVENT);
}

/** The kind-4 frame Performer (and the bare peer) deliver for encodeKind3's push. */
export function encodeKind4(payload: Uint8Array): Buffer {
  const topic = Buffer.from(TOPIC);
  const event = Buffer.from(EVENT);
  return Buffer.concat([Buffer.from([4, topic.length, event.length, 0, 1]), topic, event, payload]);
}
