import net from 'node:net';

export interface RawHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * HTTP/1.1 over a bare TCP socket, for requests no HTTP client will send: a Content-Length the body never reaches, a
 * chunked body left unfinished. It shows whether the server answered before the body was complete.
 */
export class RawHttp {
  private received = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  /** Resolves when the server closes the connection (or it fails). */
  readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (data: Buffer) => {
      this.received = Buffer.concat([this.received, data]);
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    // A reset after the answer is not a test failure; the answer (or its absence) is what tests check.
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<RawHttp> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawHttp(socket)));
      socket.once('error', reject);
    });
  }

  /** Writes and waits until the bytes are handed to the kernel. */
  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** The first complete response (a body delimited by Content-Length), or a rejection when none comes in `ms`. */
  response(ms = 10_000): Promise<RawHttpResponse> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error('no response from the server'));
      }, ms);
      const check = () => {
        const parsed = parseResponse(this.received);
        if (!parsed) return;
        clearTimeout(timer);
        this.waiter = null;
        resolve(parsed);
      };
      this.waiter = check;
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function parseResponse(data: Buffer): RawHttpResponse | null {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const body = data.subarray(end + 4);
  if (body.length < length) return null;
  return { status: Number(statusLine.split(' ')[1]), headers, body: body.subarray(0, length).toString('utf8') };
}
