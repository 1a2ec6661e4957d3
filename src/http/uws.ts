import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';

/**
 * Loads the native uWebSockets.js binding directly. The package's own entry point silently falls back to a slow
 * JavaScript implementation when the binding does not load; Performer refuses to run that way.
 */
function loadNative(): typeof UwsTypes {
  const require = createRequire(import.meta.url);
  const file = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    return require(file) as typeof UwsTypes;
  } catch (e) {
    throw new Error(
      `The native uWebSockets.js binding (${file}) does not load on Node ${process.version}: ${(e as Error).message}. ` +
        'Performer does not run on the JavaScript fallback; use Node 20 on linux/darwin x64 or arm64.',
    );
  }
}

export const uws = loadNative();

/**
 * listen() option that leaves SO_REUSEPORT off. The binding exports it as a plain number (the typings only
 * declare an enum, which does not exist at run time); a binding without it cannot listen exclusively.
 */
export const LISTEN_EXCLUSIVE_PORT: number = (() => {
  const value = (uws as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT?: unknown }).LIBUS_LISTEN_EXCLUSIVE_PORT;
  if (typeof value !== 'number') throw new Error('this uWebSockets.js binding has no LIBUS_LISTEN_EXCLUSIVE_PORT');
  return value;
})();
export type { TemplatedApp, WebSocket, HttpResponse, HttpRequest, us_listen_socket, us_socket_context_t } from 'uWebSockets.js';
