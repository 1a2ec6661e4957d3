/**
 * Writing a REST answer whose body arrives in pieces (one per result row). Small answers are collected and sent
 * whole, with Content-Length, once the transaction is over, so an error late in the statement still gets its
 * proper status. An answer that grows past STREAM_AFTER_BYTES is streamed (chunked): status and headers go out,
 * then the pieces in batches; when the client reads slower than Postgres produces, uWS reports backpressure and
 * reading the database connection pauses until the socket drains (onWritable), so Node holds about one batch
 * per answer, not the result. An error after the headers went out can only cut the connection (the client sees a
 * truncated body, never a well-formed wrong one).
 */
import type { Reply } from '../../../http/respond.js';

/** Answers up to this size are sent whole; larger ones are streamed. */
export const STREAM_AFTER_BYTES = 256 * 1024;
const WRITE_BATCH_BYTES = 64 * 1024;

/** Pausing and resuming the source of the pieces (the database connection). */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

/** For tests and metrics: the most body text one streamed answer held in Node at once (characters). */
export const streamStats = { highWater: 0, streamed: 0 };

export class AnswerWriter {
  private pieces: string[] = [];
  private size = 0;
  private streaming = false;
  private blocked = false;
  private head: { status: number; contentType: string | undefined } | null = null;
  private flow: FlowControl | null = null;

  constructor(
    private readonly reply: Reply,
    /** Whether this answer may be streamed (reads: nothing to commit after the body went out). */
    private readonly mayStream: boolean,
  ) {
    reply.onAbort(() => {
      // Nobody to write to: drop what is held and let the rest of the result drain.
      this.pieces = [];
      this.size = 0;
      this.flow?.resume();
    });
  }

  /** The source, once it exists. */
  attach(flow: FlowControl): void {
    this.flow = flow;
  }

  /** Status and content type, known from the first row; the reply's queued headers go with them. */
  setHead(status: number, contentType: string | null): void {
    this.head = { status, contentType: contentType ?? undefined };
  }

  get started(): boolean {
    return this.streaming;
  }

  write(piece: string): void {
    if (piece === '' || this.reply.aborted) return;
    this.pieces.push(piece);
    this.size += piece.length;
    if (this.streaming) {
      if (this.size > streamStats.highWater) streamStats.highWater = this.size;
      if (this.size >= WRITE_BATCH_BYTES) this.flush();
    } else if (this.mayStream && this.head && this.size >= STREAM_AFTER_BYTES) {
      this.startStreaming(this.head);
    }
  }

  /** Everything was written: send the answer whole, or end the stream. */
  finish(): void {
    if (!this.streaming) {
      const head = this.head ?? { status: 200, contentType: undefined };
      this.reply.send(head.status, this.pieces.join(''), head.contentType);
      return;
    }
    if (this.reply.aborted) return;
    const rest = this.pieces.join('');
    this.pieces = [];
    this.size = 0;
    this.reply.res.cork(() => this.reply.res.end(rest));
  }

  /** The answer failed after streaming began: cut the connection (the headers already said success). */
  cut(): void {
    if (this.streaming && !this.reply.aborted) this.reply.res.close();
  }

  private startStreaming(head: { status: number; contentType: string | undefined }): void {
    if (!this.reply.writeHead(head.status, head.contentType)) return;
    this.streaming = true;
    streamStats.streamed++;
    this.reply.res.onWritable(() => {
      this.blocked = false;
      this.flush();
      if (!this.blocked) this.flow?.resume();
      return true;
    });
    this.flush();
  }

  private flush(): void {
    if (this.blocked || this.reply.aborted || this.size === 0) return;
    const chunk = this.pieces.join('');
    this.pieces = [];
    this.size = 0;
    let sent = true;
    this.reply.res.cork(() => {
      sent = this.reply.res.write(chunk);
    });
    if (!sent) {
      this.blocked = true;
      this.flow?.pause();
    }
  }
}
