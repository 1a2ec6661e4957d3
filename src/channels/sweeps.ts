import type { TenantRuntime } from '../tenants/tenant.js';

/** How often every socket's unsent bytes are checked against WEBSOCKET_MAX_BUFFERED_BYTES. */
const SLOW_READER_SWEEP_MS = 250;

/**
 * The periodic looks at this node's sockets: upstream's sweeper (a socket that has had no channel for a whole period
 * holds resources for nothing) and the slow-reader sweep (broadcasts are published by uWS with no per-socket call, so
 * a socket that stopped reading is found here, told and closed, well before uWS's own limit would cut it).
 */
export function startSocketSweeps(tenants: { running(): TenantRuntime[] }, noChannelTimeoutMs: number): { stop(): void } {
  const noChannel = setInterval(() => {
    const cutoff = Date.now() - noChannelTimeoutMs;
    for (const tenant of tenants.running()) {
      for (const socket of [...tenant.sockets]) {
        const idle = socket.idleSince;
        if (idle !== null && idle <= cutoff) socket.disconnect(1000, null);
      }
    }
  }, noChannelTimeoutMs);
  noChannel.unref();
  const slowReaders = setInterval(() => {
    for (const tenant of tenants.running()) for (const socket of [...tenant.sockets]) socket.keepsUp();
  }, SLOW_READER_SWEEP_MS);
  slowReaders.unref();
  return {
    stop() {
      clearInterval(noChannel);
      clearInterval(slowReaders);
    },
  };
}
