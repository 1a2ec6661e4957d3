import type { HttpRequest, HttpResponse } from './uws.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Entity', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
}

/**
 * A uWS response wrapped so handlers can answer after awaiting: it remembers an abort and corks every write.
 */
export class Reply {
  aborted = false;
  done = false;
  private readonly headers: [string, string][] = [];
  private abortListeners: (() => void)[] = [];

  constructor(readonly res: HttpResponse) {
    res.onAborted(() => {
      this.aborted = true;
      for (const listener of this.abortListeners) listener();
      this.abortListeners = [];
    });
  }

  onAbort(listener: () => void): void {
    if (this.aborted) listener();
    else this.abortListeners.push(listener);
  }

  header(name: string, value: string): this {
    this.headers.push([name, value]);
    return this;
  }

  send(status: number, body: string | Uint8Array = '', contentType?: string): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status));
      if (contentType) this.res.writeHeader('content-type', contentType);
      for (const [k, v] of this.headers) this.res.writeHeader(k, v);
      this.res.end(body);
    });
  }

  json(status: number, body: unknown): void {
    this.send(status, JSON.stringify(body), 'application/json; charset=utf-8');
  }
}

/** Request facts copied out of the uWS request, which is only valid until the handler first returns or awaits. */
export interface RequestInfo {
  method: string;
  url: string;
  query: URLSearchParams;
  headers: Record<string, string>;
}

export function readRequest(req: HttpRequest): RequestInfo {
  const headers: Record<string, string> = {};
  req.forEach((k, v) => {
    headers[k] = v;
  });
  return { method: req.getMethod(), url: req.getUrl(), query: new URLSearchParams(req.getQuery() ?? ''), headers };
}

export class BodyTooLarge extends Error {}

/** Reads the request body up to `limit` bytes; must be called synchronously inside the handler. */
export function readBody(res: HttpResponse, reply: Reply, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    reply.onAbort(() => reject(new Error('request aborted')));
    res.onData((chunk, isLast) => {
      if (size > limit) return;
      size += chunk.byteLength;
      if (size > limit) {
        reject(new BodyTooLarge());
        return;
      }
      // uWS reuses the chunk's memory after this callback returns.
      chunks.push(Buffer.from(new Uint8Array(chunk.slice(0))));
      if (isLast) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
  });
}

export function corsHeaders(reply: Reply): Reply {
  return reply
    .header('access-control-allow-origin', '*')
    .header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
    .header('access-control-allow-headers', 'authorization, x-client-info, apikey, content-type, x-api-key');
}
