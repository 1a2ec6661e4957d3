import { readDigits } from '../broadcast/common.js';
import { RawWsClient } from '../common/raw-ws.js';

/**
 * A lean WebSocket subscriber over `net` for the Postgres Changes bench, speaking either Performer's vsn 2.0.0
 * protocol (join with a `postgres_changes` binding, then wait for the `system` push "Subscribed to PostgreSQL")
 * or the bare peer's `join:<topic>` (the LISTEN/NOTIFY forwarder, bench/changes/notify-peer.ts).
 *
 * Changes arrive as text frames: Performer's `[null,null,"realtime:<room>","postgres_changes",{"ids":[..],"data":
 * {..,"record":{..,"body":"<stamp>..",..}}}]`, the forwarder's the bare `row_to_json` text `{"id":..,"body":..}`.
 * Reads go into one shared buffer and frames are looked at in place: a data frame is recognised by a few fixed
 * bytes and counted; one in `sampleEvery` is searched for the body stamp (latency) and the owner (an RLS check).
 * Only a frame split across reads is copied.
 *
 * Body stamp: `<phase char><16-digit send time, monotonic µs><10-digit transaction number>`, then padding.
 */

export type Proto = 'performer' | 'simple';
export const PHASE_WARM = 0x77; // 'w'
export const PHASE_MEASURE = 0x6d; // 'm'
export const STAMP_LEN = 27;
const BODY = Buffer.from('"body":"', 'latin1');
const OWNER = Buffer.from('"owner":"', 'latin1');
const PERFORMER_HEAD = Buffer.from('[null,null,"', 'latin1');

export function stampText(phase: number, sendUs: number, txn: number): string {
  return `${String.fromCharCode(phase)}${String(Math.floor(sendUs)).padStart(16, '0')}${String(txn).padStart(10, '0')}`;
}

/** What the subscribers of one run share: delivery counters and a latency sample. */
export class Tally {
  delivered = 0;
  /** Payload bytes of the data frames delivered (to compare what each pipeline sends per change). */
  bytes = 0;
  warm = 0;
  firstUs = 0;
  lastUs = 0;
  sampleEvery = 1;
  private tick = 0;
  nSamples = 0;
  readonly sendUs: Float64Array;
  readonly recvUs: Float64Array;
  readonly txn: Float64Array;
  /** Sampled deliveries whose owner is not the subscriber's user (RLS leaks); only checked when the subscriber has one. */
  foreignOwner = 0;
  unparsed = 0;
  unexpectedCloses = 0;

  constructor(readonly capacity: number) {
    this.sendUs = new Float64Array(capacity);
    this.recvUs = new Float64Array(capacity);
    this.txn = new Float64Array(capacity);
  }

  reset(sampleEvery: number): void {
    this.delivered = 0;
    this.bytes = 0;
    this.warm = 0;
    this.firstUs = 0;
    this.lastUs = 0;
    this.sampleEvery = Math.max(1, Math.floor(sampleEvery));
    this.tick = 0;
    this.nSamples = 0;
    this.foreignOwner = 0;
    this.unparsed = 0;
  }

  /** One data frame, payload bytes [p, e): counted; one in `sampleEvery` is parsed for its stamp and owner. */
  count(sub: Subscriber, buf: Buffer, p: number, e: number, now: number): void {
    sub.received++;
    this.delivered++;
    this.bytes += e - p;
    if (this.firstUs === 0) this.firstUs = now;
    this.lastUs = now;
    if (++this.tick < this.sampleEvery) return;
    this.tick = 0;
    const at = buf.indexOf(BODY, p);
    if (at === -1 || at + BODY.length + STAMP_LEN > e) {
      this.unparsed++;
      return;
    }
    const s = at + BODY.length;
    if (buf[s] !== PHASE_MEASURE) {
      this.warm++;
      return;
    }
    const i = this.nSamples;
    if (i < this.capacity) {
      this.sendUs[i] = readDigits(buf, s + 1, 16);
      this.txn[i] = readDigits(buf, s + 17, 10);
      this.recvUs[i] = now;
      this.nSamples = i + 1;
    }
    if (sub.owner !== null) {
      const o = buf.indexOf(OWNER, p);
      if (o !== -1 && o + OWNER.length + 36 <= e && buf.toString('latin1', o + OWNER.length, o + OWNER.length + 36) !== sub.owner) this.foreignOwner++;
    }
  }
}


export interface SubscriberOptions {
  proto: Proto;
  port: number;
  /** Channel topic, `realtime:<room>`. */
  topic: string;
  /** Performer: the table of the postgres_changes binding. */
  table?: string;
  /** Performer: the socket's apikey (the project's anon key) and the channel's access_token (the user's JWT). */
  apikey?: string;
  token?: string;
  /** The user (JWT sub) this subscriber is, for the RLS owner check; null = not checked. */
  owner?: string | null;
  tally: Tally;
  timeoutMs?: number;
}

export class Subscriber extends RawWsClient {
  readonly owner: string | null;
  received = 0;
  private replied = false;
  private lastText = '';
  /** Offset of the event name in a Performer fan-out frame (after `[null,null,"<topic>","`). */
  private readonly eventOff: number;

  private constructor(private readonly opts: SubscriberOptions) {
    super(opts.port, opts.proto === 'performer' ? `/socket/websocket?apikey=${opts.apikey ?? opts.token}&vsn=2.0.0` : '/ws');
    this.owner = opts.owner ?? null;
    this.eventOff = PERFORMER_HEAD.length + Buffer.byteLength(opts.topic) + 3;
  }

  /** Connects, upgrades, joins; resolves once the subscription is confirmed (Performer: "Subscribed to PostgreSQL"). */
  static open(opts: SubscriberOptions): Promise<Subscriber> {
    return RawWsClient.connect(new Subscriber(opts), opts.timeoutMs ?? 30_000);
  }

  heartbeat(): void {
    if (!this.joined || this.closedByUs || this.opts.proto !== 'performer') return;
    this.sendText('[null,"hb","phoenix","heartbeat",{}]');
  }

  protected override closedState(): string {
    return `${super.closedState()}, join reply ${this.replied}, last text ${this.lastText.slice(0, 200) || '-'}`;
  }

  protected onUnexpectedClose(): void {
    this.opts.tally.unexpectedCloses++;
  }

  protected onUpgraded(): void {
    if (this.opts.proto === 'simple') return this.sendText(`join:${this.opts.topic}`);
    const config =
      `{"broadcast":{"self":false},"presence":{"enabled":false},` +
      `"postgres_changes":[{"event":"INSERT","schema":"public","table":"${this.opts.table}"}],"private":false}`;
    this.sendText(`["1","1","${this.opts.topic}","phx_join",{"config":${config},"access_token":"${this.opts.token}"}]`);
  }

  protected onFrame(op: 1 | 2, buf: Buffer, p: number, e: number, now: number): void {
    if (op !== 1) return;
    if (this.joined && this.isData(buf, p, e)) return this.opts.tally.count(this, buf, p, e, now);
    if (!this.joined) this.control(buf.toString('utf8', p, e));
  }

  /** A change: the forwarder's row JSON, or Performer's fan-out frame with event `postgres_changes`. */
  private isData(buf: Buffer, p: number, e: number): boolean {
    // The forwarder sends the bare row JSON, or (NOTIFY_ENVELOPE) Performer's frame around Performer's data object.
    if (this.opts.proto === 'simple') return buf[p] === 0x7b || buf[p] === 0x5b;
    const q = p + this.eventOff;
    // `[null,null,"` then the topic, then `","po` (postgres_changes; phx_reply/presence/system differ by then).
    return q + 2 < e && buf[p] === 0x5b && buf[p + 6] === 0x6e && buf[q] === 0x70 && buf[q + 1] === 0x6f;
  }

  private control(text: string): void {
    this.lastText = text;
    if (this.opts.proto === 'simple') {
      if (text === 'joined') this.confirm();
      return;
    }
    if (text.includes('"phx_reply"')) {
      if (text.includes('"status":"ok"')) this.replied = true;
      else this.fail(new Error(`join refused: ${text}`));
    } else if (text.includes('"system"') && text.includes('"postgres_changes"')) {
      if (text.includes('Subscribed to PostgreSQL') && text.includes('"status":"ok"')) {
        if (this.replied) this.confirm();
        else this.fail(new Error(`subscribed before the join reply: ${text}`));
      } else this.fail(new Error(`postgres_changes subscription failed: ${text}`));
    } else if (text.includes('"phx_close"') || text.includes('"phx_error"')) {
      this.fail(new Error(`join failed: ${text}`));
    }
  }
}
