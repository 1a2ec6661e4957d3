import WebSocket from 'ws';

/**
 * A bare WebSocket client that records every frame, for tests that check exact frames and malformed input.
 */
export class RawClient {
  readonly frames: (string | Buffer)[] = [];
  private waiters: { match: (f: string | Buffer) => boolean; resolve: (f: string | Buffer) => void }[] = [];
  closeCode: number | null = null;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const frame = isBinary ? data : data.toString('utf8');
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(frame)) return true;
        w.resolve(frame);
        return false;
      });
    });
    this.closed = new Promise((resolve) => ws.on('close', (code) => resolve((this.closeCode = code))));
  }

  static connect(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const client = new RawClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
      });
      ws.once('error', reject);
    });
  }

  send(frame: string | Uint8Array | unknown[]): void {
    this.ws.send(Array.isArray(frame) ? JSON.stringify(frame) : frame);
  }

  /** The next frame (already received or future) that matches. */
  next(match: (frame: string | Buffer) => boolean, ms = 3000): Promise<string | Buffer> {
    const seen = this.frames.find(match);
    if (seen !== undefined) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (f: string | Buffer) => {
          clearTimeout(timer);
          this.frames.splice(this.frames.indexOf(f), 1);
          resolve(f);
        },
      };
      // A waiter that timed out must not swallow a later frame meant for the next one.
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error('timed out waiting for a frame'));
      }, ms);
      this.waiters.push(waiter);
    });
  }

  /** Next V2 text frame with the given ref (a reply). */
  async reply(ref: string, ms?: number): Promise<unknown[]> {
    const f = await this.next((x) => typeof x === 'string' && (JSON.parse(x) as unknown[])[1] === ref, ms);
    return JSON.parse(f as string) as unknown[];
  }

  async nextText(pred: (msg: unknown) => boolean = () => true, ms?: number): Promise<unknown> {
    const f = await this.next((x) => typeof x === 'string' && pred(JSON.parse(x)), ms);
    return JSON.parse(f as string);
  }

  close(): void {
    this.ws.close();
  }
}

/** Handshake attempt that is expected to fail: its HTTP status and parsed body. */
export async function failedHandshake(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  try {
    const c = await RawClient.connect(url, headers);
    c.close();
    throw new Error('handshake unexpectedly succeeded');
  } catch (err) {
    const e = err as { status?: number; body?: string };
    if (e.status === undefined) throw err;
    return { status: e.status, body: e.body ? JSON.parse(e.body) : null };
  }
}
