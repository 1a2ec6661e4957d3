import { createRequire } from 'node:module';
import type * as UwsTypes from 'uWebSockets.js';

/** Loads the native uWebSockets.js binding directly, as src/http/uws.ts does (no JavaScript fallback). */
export function loadUws(): typeof UwsTypes {
  const require = createRequire(import.meta.url);
  return require(`uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`) as typeof UwsTypes;
}
