import WebSocket from 'ws';

/**
 * A lean vsn 2.0.0 Phoenix client for the presence bench: requests are matched to replies by ref, presence_diff
 * frames are only counted (recognised by their event bytes, never parsed), so the load generator spends its time
 * on the wire rather than in JSON.parse.
 */

export interface Reply {
  status: string;
  response: unknown;
}

export interface Counters {
  /** presence_diff frames received (deliveries). */
  diffs: number;
  /** presence_state frames received. */
  states: number;
  /** `system` pushes (a limit tripped: the run is not valid). */
  systems: number;
}

const DIFF_MARK = Buffer.from('"presence_diff"');
const STATE_MARK = Buffer.from('"presence_state"');
const SYSTEM_MARK = Buffer.from('"system"');
/** The event is the 4th element of a V2 array: within the first bytes after the topic. */
const HEAD = 160;

export class BenchClient {
  private nextRef = 1;
  private readonly pending = new Map<string, (r: Reply) => void>();

  private constructor(
    private readonly ws: WebSocket,
    private readonly counters: Counters,
  ) {
    ws.on('message', (data: Buffer) => this.onFrame(data));
  }

  static connect(url: string, counters: Counters): Promise<BenchClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once('open', () => resolve(new BenchClient(ws, counters)));
      ws.once('error', reject);
    });
  }

  private onFrame(data: Buffer): void {
    const head = data.subarray(0, HEAD);
    if (head.includes(DIFF_MARK)) {
      this.counters.diffs++;
      return;
    }
    if (head.includes(STATE_MARK)) {
      this.counters.states++;
      return;
    }
    if (head.includes(SYSTEM_MARK)) {
      this.counters.systems++;
      return;
    }
    const msg = JSON.parse(data.toString('utf8')) as [string | null, string | null, string, string, Reply];
    if (msg[3] !== 'phx_reply' || msg[1] === null) return;
    const waiter = this.pending.get(msg[1]);
    if (waiter) {
      this.pending.delete(msg[1]);
      waiter(msg[4]);
    }
  }

  /** Sends a push and resolves with its reply. */
  request(joinRef: string | null, topic: string, event: string, payload: unknown): Promise<Reply> {
    const ref = String(this.nextRef++);
    return new Promise((resolve) => {
      this.pending.set(ref, resolve);
      this.ws.send(JSON.stringify([joinRef, ref, topic, event, payload]));
    });
  }

  join(topic: string, joinRef: string, presenceEnabled: boolean, key: string): Promise<Reply> {
    return this.request(joinRef, topic, 'phx_join', { config: { presence: { enabled: presenceEnabled, key } } });
  }

  track(topic: string, joinRef: string, meta: Record<string, unknown>): Promise<Reply> {
    return this.request(joinRef, topic, 'presence', { type: 'presence', event: 'track', payload: meta });
  }

  leave(topic: string, joinRef: string): Promise<Reply> {
    return this.request(joinRef, topic, 'phx_leave', {});
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.ws.readyState === WebSocket.CLOSED) return resolve();
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}
