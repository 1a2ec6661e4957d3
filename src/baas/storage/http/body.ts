/**
 * Request bodies as Node streams, straight from the uWS socket: each chunk is copied once (uWS reuses its memory),
 * into a pooled buffer when it is large (../chunks.ts), and pushed on; when the consumer falls behind (push returns false) the socket is paused, and resumed when the
 * consumer reads again, so an upload of any size holds only a few chunks in memory. An aborted request errors the
 * stream, which makes whatever it is piped into fail and clean up.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { Reply } from '../../../http/respond.js';
import type { HttpResponse } from '../../../http/uws.js';
import { chunkPool } from '../chunks.js';
import { errors } from '../errors.js';

/** Node's default is 16 KiB; uWS hands chunks of up to 512 KiB, so a larger mark avoids pausing on every chunk. */
const BODY_HIGH_WATER_MARK = 1024 * 1024;

export class RequestAborted extends Error {
  constructor() {
    super('request aborted');
  }
}

/** The body of `res` as a Readable. Must be called synchronously inside the uWS handler. */
export function bodyStream(res: HttpResponse, reply: Reply): Readable {
  let paused = false;
  const stream = new Readable({
    highWaterMark: BODY_HIGH_WATER_MARK,
    read() {
      if (paused && !reply.aborted && !reply.done) {
        paused = false;
        res.resume();
      }
    },
  });
  // Whoever consumes the stream sees its errors through pipeline(); until then (auth, bucket checks) an abort must
  // not be an 'error' without a listener, which Node would throw out of the process.
  stream.on('error', () => undefined);
  reply.onAbort(() => stream.destroy(new RequestAborted()));
  res.onData((chunk, isLast) => {
    if (stream.destroyed) return;
    const more = stream.push(chunkPool.copy(new Uint8Array(chunk)));
    if (isLast) stream.push(null);
    else if (!more && !paused) {
      paused = true;
      res.pause();
    }
  });
  return stream;
}

/**
 * Counts the bytes going through; past `limit` it fails with EntityTooLarge, so an upload without (or lying about)
 * Content-Length is cut at the limit. Nothing is hashed: the ETag is the object's version (see upload.ts), which
 * saves an MD5 pass over every byte (a sixth of the CPU of a large upload, measured).
 */
export class MeteredBytes extends Transform {
  size = 0;

  constructor(private readonly limit: number) {
    super({ highWaterMark: BODY_HIGH_WATER_MARK });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.limit) return callback(errors.entityTooLarge());
    callback(null, chunk);
  }
}
