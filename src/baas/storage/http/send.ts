/**
 * Streams a blob to the client through uWS with backpressure (tryEnd / onWritable, as uWS's own streaming example):
 * when the socket's buffer is full the source is paused and the unsent rest of the chunk kept, then resumed once the
 * socket drains. A client that goes away destroys the source; a source that fails after the headers went out closes
 * the connection, so the client sees a short body rather than a wrong one. A chunk whose bytes uWS took (sent, or
 * copied into its own buffer) is handed back to the pool it may come from (../chunks.ts).
 */
import type { Readable } from 'node:stream';
import type { Reply } from '../../../http/respond.js';
import { chunkPool } from '../chunks.js';

export function sendStream(reply: Reply, status: number, contentType: string, source: Readable | null, length: number): Promise<void> {
  const res = reply.res;
  return new Promise<void>((resolve) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      source?.destroy();
      resolve();
    };
    const started = reply.writeHead(status, contentType);
    if (started && (source === null || length === 0)) {
      res.cork(() => {
        if (source === null) res.endWithoutBody(length);
        else res.end();
      });
    }
    if (!started || source === null || length === 0) return finish();
    reply.onAbort(finish);
    let pending: Buffer | null = null;
    let pendingOffset = 0;
    res.onWritable((offset) => {
      if (pending === null) return true;
      const [ok, done] = res.tryEnd(pending.subarray(offset - pendingOffset), length);
      // Every byte of the chunk is uWS's now (sent or copied): its memory may take the next one.
      if (ok || done) chunkPool.giveBack(pending);
      if (done) finish();
      else if (ok) {
        pending = null;
        source.resume();
      }
      return ok;
    });
    source.on('data', (chunk: Buffer) => {
      if (finished) return;
      let ok = false;
      let done = false;
      res.cork(() => {
        pendingOffset = res.getWriteOffset();
        [ok, done] = res.tryEnd(chunk, length);
      });
      if (ok || done) chunkPool.giveBack(chunk);
      if (done) return finish();
      if (!ok) {
        pending = chunk;
        source.pause();
      }
    });
    source.once('error', () => {
      if (!finished && !reply.aborted) res.close();
      finish();
    });
    source.once('end', () => {
      // A blob shorter than announced: the response cannot be completed honestly.
      if (!finished && pending === null && !reply.aborted) {
        res.close();
        finish();
      }
    });
  });
}
