import type { HttpRequest, HttpResponse } from './uws.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 206: 'Partial Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized',
  403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 416: 'Range Not Satisfiable',
  422: 'Unprocessable Entity', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
  546: 'Worker Limit',
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

  /** `closeConnection`: close once written, e.g. when the request body was not read to its end. */
  send(status: number, body: string | Uint8Array = '', contentType?: string, closeConnection = false): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.writeStatusAndHeaders(status, contentType);
      this.res.end(body, closeConnection);
    });
  }

  /**
   * Starts an answer whose body follows in pieces (the caller writes them to `res` and ends it): the status line
   * and the queued headers now. False when the client is gone or an answer was already started.
   */
  writeHead(status: number, contentType?: string): boolean {
    if (this.aborted || this.done) return false;
    this.done = true;
    this.res.cork(() => this.writeStatusAndHeaders(status, contentType));
    return true;
  }

  private writeStatusAndHeaders(status: number, contentType?: string): void {
    this.res.writeStatus(statusLine(status));
    if (contentType) this.res.writeHeader('content-type', contentType);
    for (const [k, v] of this.headers) this.res.writeHeader(k, v);
  }

  /** An answer without the queued headers that closes the connection once written (uWS stops reading it). */
  sendAndClose(status: number, body: string, contentType: string): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status)).writeHeader('content-type', contentType).end(body, true);
    });
  }

  json(status: number, body: unknown, closeConnection = false): void {
    this.send(status, JSON.stringify(body), 'application/json; charset=utf-8', closeConnection);
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
  const raw = req.getQuery() ?? '';
  let query: URLSearchParams | null = null;
  // Parsed on first use: most routes (all of /rest/v1) never read it.
  return {
    method: req.getMethod(),
    url: req.getUrl(),
    get query() {
      query ??= new URLSearchParams(raw);
      return query;
    },
    headers,
  };
}

/** Upstream's request body limit (Plug.Parsers' default `length`); a longer body is answered 413. */
export const MAX_REQUEST_BODY_BYTES = 8_000_000;

export class BodyTooLarge extends Error {}

/**
 * Reads the request body, refusing it past `limit` bytes: by Content-Length before a byte is read, else as soon as
 * the running total passes the limit (a chunked body). A refused request is answered 413 here and its connection
 * closed, so nothing past the limit is read or kept. Must be called synchronously inside the handler.
 */
export function readBody(res: HttpResponse, reply: Reply, headers: Record<string, string>, limit: number): Promise<Buffer> {
  return boundedRead(res, reply, headers, limit, limit) as Promise<Buffer>;
}

/**
 * As {@link readBody}, but bytes past `keepLimit` are only counted, not kept: the body then resolves to null (the
 * caller refuses it in its own words), and memory never holds more than `keepLimit` of it.
 */
export function readBodyUpTo(res: HttpResponse, reply: Reply, headers: Record<string, string>, limit: number, keepLimit: number): Promise<Buffer | null> {
  return boundedRead(res, reply, headers, limit, keepLimit);
}

/** Answers 413 when the Content-Length header announces more than `limit` bytes; true when it did. */
export function refusedByContentLength(reply: Reply, headers: Record<string, string>, limit: number): boolean {
  const declared = Number(headers['content-length']);
  if (!(declared > limit)) return false;
  refuseTooLarge(reply, headers);
  return true;
}

function boundedRead(res: HttpResponse, reply: Reply, headers: Record<string, string>, limit: number, keepLimit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => collectBody(res, reply, headers, limit, keepLimit, resolve, reject));
}

/**
 * As {@link readBody}, without a promise: `done` runs inside uWS's last data callback, so a handler can go on
 * synchronously (no microtask hop, no promise per request). On a refusal (413, already answered) or an abort,
 * `done` is never called. Must be called synchronously inside the handler.
 */
export function readBodyThen(res: HttpResponse, reply: Reply, headers: Record<string, string>, limit: number, done: (body: Buffer) => void): void {
  collectBody(res, reply, headers, limit, limit, done as (body: Buffer | null) => void, () => undefined);
}

function collectBody(
  res: HttpResponse,
  reply: Reply,
  headers: Record<string, string>,
  limit: number,
  keepLimit: number,
  done: (body: Buffer | null) => void,
  fail: (err: Error) => void,
): void {
  if (refusedByContentLength(reply, headers, limit)) return fail(new BodyTooLarge());
  // One copy of each chunk as it comes, one concatenation at the end; null once past keepLimit.
  let chunks: Buffer[] | null = [];
  let size = 0;
  let settled = false;
  reply.onAbort(() => {
    if (!settled) fail(new Error('request aborted'));
    settled = true;
  });
  res.onData((chunk, isLast) => {
    if (settled) return;
    size += chunk.byteLength;
    if (size > limit) {
      settled = true;
      chunks = null;
      refuseTooLarge(reply, headers);
      return fail(new BodyTooLarge());
    }
    if (chunks !== null && size > keepLimit) chunks = null;
    // uWS reuses the chunk's memory after this callback returns: one copy (ArrayBuffer.slice), wrapped as is.
    if (chunks !== null) chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    settled = true;
    done(chunks === null ? null : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
  });
}

/**
 * Upstream's 413: Plug.Parsers raises before any route plug runs, so Phoenix renders it with the error view, in HTML
 * unless the Accept header asks for JSON, and without the route's headers. The connection is closed: the rest of the
 * body is not read.
 */
function refuseTooLarge(reply: Reply, headers: Record<string, string>): void {
  const text = 'Request Entity Too Large';
  if (errorFormat(headers.accept) === 'json') reply.sendAndClose(413, JSON.stringify(text), 'application/json; charset=utf-8');
  else reply.sendAndClose(413, text, 'text/html; charset=utf-8');
}

/**
 * The format Phoenix's `accepts(conn, ["html", "json"])` picks for an error page: html without an Accept header or
 * for "any type"; otherwise the first entry with q=1 that names one of the two, else the best-q entry that does, else
 * html (the error renderer's fallback for a header it cannot satisfy).
 */
export function errorFormat(accept: string | undefined): 'html' | 'json' {
  if (accept === undefined || accept.trim() === '' || accept === '*/*') return 'html';
  const ranked: { q: number; entry: string; format: 'html' | 'json' | null }[] = [];
  for (const entry of accept.split(',')) {
    const [range, ...params] = entry.trim().split(';');
    const [type, subtype] = range.trim().toLowerCase().split('/');
    if (!type || subtype === undefined) continue;
    const qParam = params.map((p) => p.trim().split('=')).find(([k]) => k.trim() === 'q');
    // Float.parse semantics: a numeric prefix counts, anything unparsable is 1.
    const parsedQ = qParam ? parseFloat(qParam[1] ?? '') : 1;
    const q = Number.isNaN(parsedQ) ? 1 : parsedQ;
    const format = formatFor(type, subtype.trim());
    if (q === 1 && format !== null) return format;
    ranked.push({ q, entry: entry.trim(), format });
  }
  ranked.sort((a, b) => b.q - a.q || (a.entry < b.entry ? -1 : a.entry > b.entry ? 1 : 0));
  return ranked.find((r) => r.format !== null)?.format ?? 'html';
}

function formatFor(type: string, subtype: string): 'html' | 'json' | null {
  if (type === '*' && subtype === '*') return 'html';
  if (subtype === '*') return type === 'text' ? 'html' : type === 'application' ? 'json' : null;
  if (type === 'text' && (subtype === 'html' || subtype === 'htm')) return 'html';
  if (type === 'application' && subtype === 'json') return 'json';
  return null;
}

export function corsHeaders(reply: Reply): Reply {
  return reply
    .header('access-control-allow-origin', '*')
    .header('access-control-allow-methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS')
    .header('access-control-allow-headers', 'authorization, x-client-info, apikey, content-type, x-api-key');
}
