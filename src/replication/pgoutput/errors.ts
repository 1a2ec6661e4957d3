/**
 * The only error type the pgoutput decoder throws. Callers can treat any other
 * exception escaping the decoder as a bug rather than bad input.
 */
export class PgoutputDecodeError extends Error {
  override readonly name = 'PgoutputDecodeError';
  /** Byte offset within the message where decoding failed, when known. */
  readonly offset: number | undefined;

  constructor(message: string, offset?: number) {
    super(offset === undefined ? message : `${message} (at byte offset ${offset})`);
    this.offset = offset;
  }
}
