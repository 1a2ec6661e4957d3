import { handshakeJwtMessage } from '../auth/jwt.js';
import type { AppContext } from '../context.js';
import { Connection, type SocketData } from '../channels/socket.js';
import type { Vsn } from '../shared/serializer.js';
import type { Module } from './module.js';
import { readRequest, statusLine } from './respond.js';
import { uws, type HttpRequest, type HttpResponse, type TemplatedApp, type us_socket_context_t } from './uws.js';

export const WEBSOCKET_PATHS = ['/socket/websocket', '/realtime/v1/websocket'];

interface HandshakeError {
  status: number;
  error: string;
  code: string;
}

/** Shared by every socket whose upgrade carried no x-* header (most): nothing writes to it. */
const NO_HEADERS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/**
 * The Phoenix socket. The handshake checks tenant, token and limits in upstream's order; a failure is an HTTP
 * response with upstream's status and `{"error": ...}` body, sent after the connect error backoff.
 */
export const websocketModule: Module = { name: 'websocket', mount: mountWebSocket };

function mountWebSocket(app: TemplatedApp, ctx: AppContext): void {
  const behavior = {
    maxPayloadLength: ctx.config.maxFrameBytes,
    idleTimeout: ctx.config.idleTimeoutSeconds,
    // Upstream closes sockets that send nothing for 60 s; automatic pings would keep silent clients alive.
    sendPingsAutomatically: false,
    // Never a silent drop: a socket past WEBSOCKET_MAX_BUFFERED_BYTES is told and closed by Connection.keepsUp. uWS's
    // own limit is only a memory backstop far above it, and a socket that reaches it is cut at once (a gap-free
    // prefix, then a disconnect) instead of silently skipping frames and carrying on.
    maxBackpressure: hardBackpressureLimit(ctx.config.maxBufferedBytes),
    closeOnBackpressureLimit: 1, // a boolean; typed as a number by the bindings
    compression: uws.DISABLED,
    upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => upgrade(ctx, res, req, context),
    open: (ws: import('./uws.js').WebSocket<SocketData>) => ws.getUserData().conn.opened(ws),
    message: (ws: import('./uws.js').WebSocket<SocketData>, data: ArrayBuffer, isBinary: boolean) =>
      ws.getUserData().conn.onFrame(data, isBinary),
    close: (ws: import('./uws.js').WebSocket<SocketData>) => ws.getUserData().conn.onClosed(),
  };
  for (const path of WEBSOCKET_PATHS) app.ws<SocketData>(path, behavior);
}

/**
 * uWS's backpressure limit: what one write burst (a loop turn of changes, or the broadcasts between two sweeps) may
 * add past the soft bound before the socket is cut.
 */
export function hardBackpressureLimit(maxBufferedBytes: number): number {
  return 4 * maxBufferedBytes + 16 * 1024 * 1024;
}

function upgrade(ctx: AppContext, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  const info = readRequest(req);
  const secKey = info.headers['sec-websocket-key'] ?? '';
  const secProtocol = info.headers['sec-websocket-protocol'] ?? '';
  const secExtensions = info.headers['sec-websocket-extensions'] ?? '';
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });

  let log = ctx.log;
  const fail = (e: HandshakeError) => {
    log.warn({ error_code: e.code, status: e.status, host: info.headers.host }, 'websocket handshake refused');
    const timer = setTimeout(() => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(statusLine(e.status)).writeHeader('content-type', 'application/json').end(JSON.stringify({ error: e.error }));
      });
    }, ctx.config.connectErrorBackoffMs);
    timer.unref();
  };

  const vsnParam = info.query.get('vsn');
  const vsn: Vsn | null = vsnParam === null || vsnParam === '1.0.0' ? '1.0.0' : vsnParam === '2.0.0' ? '2.0.0' : null;
  if (vsn === null) {
    res.cork(() => res.writeStatus(statusLine(403)).end());
    return;
  }
  const tenant = ctx.registry.resolve(info.headers.host ?? '');
  if (!tenant) return fail({ status: 404, error: 'Tenant not found', code: 'TenantNotFound' });
  log = tenant.log;
  if (tenant.settings.suspend) {
    return fail({ status: 403, error: 'Realtime was disabled for this tenant', code: 'RealtimeDisabledForTenant' });
  }
  const token = info.headers['x-api-key'] ?? info.query.get('apikey');
  if (!token) return fail({ status: 401, error: 'API key is missing', code: 'MissingAPIKey' });

  const found: Record<string, string> = {};
  for (const [k, v] of Object.entries(info.headers)) if (k.startsWith('x-')) found[k] = v;
  const xHeaders = Object.keys(found).length > 0 ? found : NO_HEADERS;

  tenant.verifier.verify(token, { requireRoleAndExp: true }).then(
    (result) => {
      if (aborted) return;
      if (!result.ok) {
        const code = result.error.kind === 'malformed' ? 'MalformedJWT' : 'InvalidJWTToken';
        return fail({ status: 401, error: handshakeJwtMessage(result.error), code });
      }
      const limits = tenant.settings.limits;
      if (tenant.clusterUsers() >= limits.maxConcurrentUsers) {
        return fail({ status: 429, error: 'Too many connected users', code: 'ConnectionRateLimitReached' });
      }
      if (tenant.joins.rate > limits.maxJoinsPerSecond) {
        return fail({ status: 429, error: 'Too many joins per second', code: 'JoinsRateLimitReached' });
      }
      const conn = new Connection(ctx, tenant, vsn, token, result.claims, xHeaders);
      res.cork(() => res.upgrade<SocketData>({ conn }, secKey, secProtocol, secExtensions, context));
    },
    (err: unknown) => {
      ctx.log.error({ err, error_code: 'ErrorConnectingToWebsocket' }, 'handshake failed');
      fail({ status: 500, error: 'Error connecting to Realtime', code: 'ErrorConnectingToWebsocket' });
    },
  );
}
