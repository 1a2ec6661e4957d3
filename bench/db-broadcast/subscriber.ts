import { readDigits } from '../broadcast/common.js';
import { RawWsClient } from '../common/raw-ws.js';

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

export interface SubscriberOptions {
  port: number;
  token: string;
  vsn: Vsn;
  tally: Tally;
  timeoutMs?: number;
}

export class Subscriber extends RawWsClient {
  private constructor(private readonly opts: SubscriberOptions) {
    super(opts.port, `/socket/websocket?apikey=${opts.token}&vsn=${opts.vsn}`);
  }

  /** Connects, upgrades and joins `realtime:bench` (public); resolves once the join is confirmed. */
  static open(opts: SubscriberOptions): Promise<Subscriber> {
    return RawWsClient.connect(new Subscriber(opts), opts.timeoutMs ?? 15_000);
  }

  heartbeat(): void {
    if (!this.joined || this.closedByUs) return;
    this.sendText(this.opts.vsn === '2.0.0' ? '[null,"hb","phoenix","heartbeat",{}]' : '{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"hb"}');
  }

  protected onUnexpectedClose(): void {
    this.opts.tally.unexpectedCloses++;
  }

  protected onUpgraded(): void {
    const payload =
      `{"config":{"broadcast":{"self":false,"ack":false},"presence":{"key":"","enabled":false},` +
      `"postgres_changes":[],"private":false},"access_token":"${this.opts.token}"}`;
    this.sendText(
      this.opts.vsn === '2.0.0'
        ? `["1","1","${CHANNEL}","phx_join",${payload}]`
        : `{"topic":"${CHANNEL}","event":"phx_join","payload":${payload},"ref":"1","join_ref":"1"}`,
    );
  }

  protected onFrame(op: 1 | 2, buf: Buffer, p: number, e: number, now: number): void {
    if (op === 2) {
      // kind-4 user broadcast: 04 | topic_len event_len meta_len encoding | topic event meta | payload
      if (buf[p] !== 4 || e - p < 5) return;
      const po = p + 5 + buf[p + 1]! + buf[p + 2]! + buf[p + 3]!;
      const at = buf.indexOf(MARKER, po);
      if (at === -1 || at + MARKER.length + STAMP_LEN > e) {
        this.opts.tally.unparsed++;
        return;
      }
      this.opts.tally.count(buf, at + MARKER.length, now);
      return;
    }
    if (this.joined) {
      // vsn 1.0.0 broadcast (JSON text); replies to heartbeats carry no stamp.
      const at = buf.indexOf(MARKER, p);
      if (at !== -1 && at + MARKER.length + STAMP_LEN <= e) this.opts.tally.count(buf, at + MARKER.length, now);
      return;
    }
    const text = buf.toString('utf8', p, e);
    if (text.includes('"phx_reply"') && text.includes(`"${CHANNEL}"`)) {
      if (text.includes('"status":"ok"')) this.confirm();
      else this.fail(new Error(`join refused: ${text}`));
    } else if (text.includes('"phx_close"') || text.includes('"phx_error"')) {
      this.fail(new Error(`join failed: ${text}`));
    }
  }
}
