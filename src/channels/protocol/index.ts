import { decodeV1 } from './v1.js';
import { decodeV2Binary, decodeV2Text } from './v2.js';
import type { Vsn } from '../../shared/serializer.js';
import { FrameDecodeError, type Inbound } from './types.js';

export * from './types.js';
export { MAX_PAYLOAD_DEPTH, jsonTextDeeperThan, jsonValueDeeperThan } from './nesting.js';
export { decodeV1, encodeV1, encodeV1Raw } from './v1.js';
export { decodeV2Text, decodeV2Binary, encodeV2, encodeV2Raw, encodeUserBroadcast } from './v2.js';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Decodes one WebSocket frame for the connection's serializer. Throws FrameDecodeError on anything malformed. */
export function decodeFrame(vsn: Vsn, data: ArrayBuffer, isBinary: boolean): Inbound {
  const bytes = new Uint8Array(data);
  if (isBinary) {
    if (vsn === '1.0.0') throw new FrameDecodeError('binary frames need vsn 2.0.0');
    return decodeV2Binary(bytes);
  }
  const text = utf8.decode(bytes);
  return vsn === '1.0.0' ? decodeV1(text) : decodeV2Text(text);
}
