import { RawWsClient } from '../lib/raw-ws.js';
import { STAMP_LEN } from '../lib/stamp.js';
import type { Tally } from '../lib/tally.js';

/**
 * A lean WebSocket subscriber over `net` for the Postgres Changes bench, speaking either Performer's vsn 2.0.0
 * protocol (join with a `postgres_changes` binding, then wait for the `system` push "Subscribed to PostgreSQL")
 * or the bare peer's `join:<topic>` (the LISTEN/NOTIFY forwarder, bench/changes/notify-peer.ts).
 *
 * Changes arrive as text frames: Performer's `[null,null,"realtime:<room>","postgres_changes",{"ids":[..],"data":
 * {..,"record":{..,"body":"<stamp>..",..}}}]`, the forwarder's the bare `row_to_json` text `{"id":..,"body":..}`.
 * A data frame is recognised by a few fixed bytes and counted; one in `sampleEvery` is searched for the body stamp
 * (../lib/stamp.ts: latency) and the owner (an RLS check).
 */

export type Proto = 'performer' | 'simple';
const BODY = Buffer.from('"body":"', 'latin1');
const OWNER = Buffer.from('"owner":"', 'latin1');
const PERFORMER_HEAD = Buffer.from('[null,null,"', 'latin1');

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
  /** Sampled deliveries whose owner is not the subscriber's user (RLS leaks). */
  leaks: { foreignOwner: number };
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
    if (this.joined && this.isData(buf, p, e)) return this.count(buf, p, e, now);
    if (!this.joined) this.control(buf.toString('utf8', p, e));
  }

  /** One change, payload bytes [p, e): counted; one in `sampleEvery` is parsed for its stamp and owner. */
  private count(buf: Buffer, p: number, e: number, now: number): void {
    const tally = this.opts.tally;
    this.received++;
    tally.bytes += e - p;
    if (!tally.hit(now)) return;
    const at = buf.indexOf(BODY, p);
    if (at === -1 || at + BODY.length + STAMP_LEN > e) {
      tally.unparsed++;
      return;
    }
    if (!tally.sample(buf, at + BODY.length, now) || this.owner === null) return;
    const o = buf.indexOf(OWNER, p);
    if (o !== -1 && o + OWNER.length + 36 <= e && buf.toString('latin1', o + OWNER.length, o + OWNER.length + 36) !== this.owner) this.opts.leaks.foreignOwner++;
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
