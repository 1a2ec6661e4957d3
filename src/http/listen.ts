import net from 'node:net';
import { LISTEN_EXCLUSIVE_PORT, type TemplatedApp, type us_listen_socket } from './uws.js';

/** The HTTP port cannot be had: another process holds it, or the address is not ours to bind. */
export class ListenError extends Error {
  constructor(
    readonly host: string,
    readonly port: number,
    readonly reason: string | null,
  ) {
    super(describe(host, port, reason));
    this.name = 'ListenError';
  }
}

function describe(host: string, port: number, reason: string | null): string {
  const where = `${host}:${port}`;
  switch (reason) {
    case 'EADDRINUSE':
      return `port ${port} is already in use on ${host} (another Performer, or another program, listens there); stop it or choose another PORT`;
    case 'EACCES':
      return `not allowed to listen on ${where} (ports below 1024 need privileges); choose another PORT`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${host} is not an address of this machine; check HOST`;
    default:
      return `cannot listen on ${where}${reason ? ` (${reason})` : ''}; check HOST and PORT`;
  }
}

// The typings only declare listen(port, options, cb); the binding also takes (host, port, options, cb).
type ListenWithOptions = (
  host: string,
  port: number,
  options: number,
  cb: (socket: us_listen_socket | false) => void,
) => TemplatedApp;

/**
 * Listens without SO_REUSEPORT. uWS sets that option by default, so a second server on the same port would bind
 * as well and the kernel would split connections between the two (each with its own database).
 */
export async function listenExclusive(app: TemplatedApp, host: string, port: number): Promise<us_listen_socket> {
  const socket = await new Promise<us_listen_socket | false>((resolve) => {
    (app.listen as unknown as ListenWithOptions).call(app, host, port, LISTEN_EXCLUSIVE_PORT, resolve);
  });
  if (socket) return socket;
  // uWS reports failure without a reason; an exclusive bind by Node names it for the message.
  throw new ListenError(host, port, port === 0 ? null : await bindProblem(host, port));
}

/**
 * Fails fast, before anything slow (an embedded Postgres) starts, when the port is visibly taken. Only a hint:
 * the port can still be taken in between, which {@link listenExclusive} then reports.
 */
export async function assertPortAvailable(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const problem = await bindProblem(host, port);
  if (problem !== null) throw new ListenError(host, port, problem);
}

/** The error code of binding host:port exclusively right now, or null when the bind succeeds. */
function bindProblem(host: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}
