import { RawWsClient } from '../lib/raw-ws.js';
import { STAMP_LEN } from '../lib/stamp.js';
import type { Tally } from '../lib/tally.js';

/**
 * A lean subscriber for database broadcasts, over `net` (the broadcast bench's raw client only reads payloads at a
 * fixed offset, and a database broadcast carries a `{"id": uuid}` meta and the jsonb-rendered payload, so the stamp
 * is not where that client looks). Every complete data frame is searched for the stamp marker in place.
 *
 * Payload stamp (a JSON string value, so jsonb keeps it byte-for-byte): `"t": "<stamp text>"` (../lib/stamp.ts).
 * jsonb renders `"t": "` with a space and sorts keys by length, so `t` comes first in the payload; vsn 1.0.0 embeds
 * the same text in its JSON frame, vsn 2.0.0 (kind-4 binary frame) carries it as the payload bytes.
 */

export type Vsn = '1.0.0' | '2.0.0';
export const CHANNEL = 'realtime:bench';
const MARKER = Buffer.from('"t": "', 'latin1');

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
      this.opts.tally.stamped(buf, at + MARKER.length, now);
      return;
    }
    if (this.joined) {
      // vsn 1.0.0 broadcast (JSON text); replies to heartbeats carry no stamp.
      const at = buf.indexOf(MARKER, p);
      if (at !== -1 && at + MARKER.length + STAMP_LEN <= e) this.opts.tally.stamped(buf, at + MARKER.length, now);
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
