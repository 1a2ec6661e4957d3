import { PgoutputDecodeError } from './errors.js';

/**
 * Bounds-checked big-endian cursor over one message. Every read checks the
 * remaining length first so malformed input surfaces as PgoutputDecodeError
 * instead of a RangeError from Buffer or a silent out-of-range read.
 */
export class MessageReader {
  pos = 0;
  /** Label used in error messages, e.g. "Insert". */
  label = 'message';

  constructor(readonly buf: Buffer) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(reason: string, offset: number = this.pos): never {
    throw new PgoutputDecodeError(`malformed ${this.label} message: ${reason}`, offset);
  }

  private need(n: number, what: string): void {
    if (this.buf.length - this.pos < n) {
      this.fail(`truncated ${what}: need ${n} byte(s), have ${this.remaining}`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  /** Int16 counts are never negative in valid input, so read them unsigned. */
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** OIDs and xids are unsigned 32-bit. */
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** LSNs are unsigned 64-bit. */
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Timestamps are signed 64-bit. */
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** NUL-terminated UTF-8 string. */
  cstring(what: string): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) this.fail(`unterminated string for ${what}`);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  /** Int32 length prefix, validated against what is left. */
  length(what: string): number {
    const at = this.pos;
    // Inline check: building a "<what> length" label here would allocate per column.
    if (this.buf.length - at < 4) this.fail(`truncated ${what} length: need 4 byte(s), have ${this.remaining}`);
    const n = this.buf.readInt32BE(at);
    this.pos += 4;
    if (n < 0) this.fail(`negative ${what} length ${n}`, at);
    if (n > this.remaining) this.fail(`${what} length ${n} exceeds remaining ${this.remaining} byte(s)`, at);
    return n;
  }

  /** A view, not a copy: the caller's buffer must outlive the result. */
  slice(n: number): Buffer {
    const s = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  utf8(n: number): string {
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /**
   * Rejects a count that could not fit in the remaining bytes, so a bogus
   * count cannot trigger a huge allocation or a long loop.
   */
  count(n: number, minBytesEach: number, what: string): void {
    if (n * minBytesEach > this.remaining) {
      this.fail(`${what} count ${n} cannot fit in remaining ${this.remaining} byte(s)`);
    }
  }

  end(): void {
    if (this.pos !== this.buf.length) this.fail(`${this.remaining} unexpected trailing byte(s)`);
  }
}
