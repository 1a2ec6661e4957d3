import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  PgoutputDecodeError,
  createPgoutputContext,
  decodePgoutput,
  type PgoutputContext,
  type PgoutputProtocolVersion,
} from '../../src/replication/pgoutput/index.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function ctxOf(version: PgoutputProtocolVersion, inStream = false): PgoutputContext {
  const ctx = createPgoutputContext(version);
  if (inStream) {
    ctx.inStream = true;
    ctx.streamXid = 1;
  }
  return ctx;
}

/** Runs the decoder and fails the test on any exception that is not a PgoutputDecodeError. */
function decodeOrDecodeError(buf: Buffer, ctx: PgoutputContext): void {
  try {
    decodePgoutput(buf, ctx);
  } catch (err) {
    if (!(err instanceof PgoutputDecodeError)) throw err;
    expect(err.name).toBe('PgoutputDecodeError');
    expect(err.message.length).toBeGreaterThan(0);
  }
}

function expectDecodeError(buf: Buffer, pattern: RegExp, ctx: PgoutputContext = ctxOf(1)): PgoutputDecodeError {
  let caught: unknown;
  try {
    decodePgoutput(buf, ctx);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(PgoutputDecodeError);
  expect((caught as Error).message).toMatch(pattern);
  return caught as PgoutputDecodeError;
}

describe('pgoutput malformed input', () => {
  it('empty buffer', () => {
    expectDecodeError(Buffer.alloc(0), /empty pgoutput message/);
  });

  it.each(['5A', '00', 'FF', '77'])('unknown message type %s', (t) => {
    expectDecodeError(hex(t), /unknown pgoutput message type/);
  });

  it('truncated fixed-size field reports what and where', () => {
    const err = expectDecodeError(hex('42 00000016B374D848 0000'), /malformed Begin message: truncated commit timestamp/);
    expect(err.offset).toBe(9);
  });

  it('text column length past the end', () => {
    expectDecodeError(hex('49 00004000 4E 0001 74 7FFFFFFF 6869'), /text column length 2147483647 exceeds/);
  });

  it('negative binary column length', () => {
    expectDecodeError(hex('49 00004000 4E 0001 62 FFFFFFFF'), /negative binary column length/);
  });

  it('Message content length past the end', () => {
    expectDecodeError(hex('4D 00 0000000000000001 7000 00000010 6162'), /message content length 16 exceeds/);
  });

  it('column count that cannot fit is rejected before allocating', () => {
    expectDecodeError(hex('49 00004000 4E FFFF 6E'), /tuple column count 65535 cannot fit/);
    expectDecodeError(hex('52 00004000 7300 7400 64 FFFF 00'), /relation column count 65535 cannot fit/);
    expectDecodeError(hex('54 FFFFFFFF 00 00000001'), /truncated relation count 4294967295 cannot fit/);
  });

  it('unterminated string', () => {
    expectDecodeError(hex('4F 0000000000000064 6E6F6465'), /unterminated string for origin name/);
  });

  it('unknown tuple column kind', () => {
    expectDecodeError(hex('49 00004000 4E 0002 6E 78'), /unknown tuple column kind 0x78 in column 1/);
  });

  it('bad tuple markers', () => {
    expectDecodeError(hex('49 00004000 4B 0000'), /expected new tuple marker 'N'/);
    expectDecodeError(hex('55 00004000 58 0000'), /expected tuple marker 'K', 'O' or 'N'/);
    expectDecodeError(hex('55 00004000 4B 0000 4B 0000'), /expected new tuple marker 'N'/);
    expectDecodeError(hex('44 00004000 4E 0000'), /expected tuple marker 'K' or 'O'/);
  });

  it('unknown replica identity', () => {
    expectDecodeError(hex('52 00004000 7300 7400 78 0000'), /unknown replica identity 0x78/);
  });

  it('trailing bytes after a complete message', () => {
    expectDecodeError(hex('45 00'), /1 unexpected trailing byte/, ctxOf(2, true));
    expectDecodeError(hex('49 00004000 4E 0000 00 00'), /2 unexpected trailing byte/);
  });

  it('streamed data message too short for its xid', () => {
    expectDecodeError(hex('49 0000'), /truncated streamed xid/, ctxOf(2, true));
  });
});

const versionArb = fc.constantFrom<PgoutputProtocolVersion>(1, 2, 3, 4);
const TYPE_BYTES = [...'BCORYIUDTMSEcAbPKrp'].map((c) => c.charCodeAt(0));

// Hand-made valid messages to mutate; every type byte is represented.
const SEEDS: Array<[PgoutputProtocolVersion, boolean, string]> = [
  [1, false, '42 00000016B374D848 00000000000F4240 000004D2'],
  [1, false, '43 00 00000016B374D848 00000016B374D878 00000000000F4240'],
  [1, false, '4F 0000000000000064 6E6F64653100'],
  [1, false, '52 00004000 7075626C696300 757365727300 64 0002 01 696400 00000014 FFFFFFFF 00 6E616D6500 00000413 00000068'],
  [2, true, '59 000003E8 00004001 7075626C696300 6D6F6F6400'],
  [1, false, '49 00004000 4E 0004 6E 75 74 00000002 6869 62 00000003 DEADBE'],
  [2, true, '55 000003E8 00004000 4F 0001 74 00000001 78 4E 0001 74 00000001 79'],
  [1, false, '44 00004000 4B 0002 74 00000002 3432 6E'],
  [1, false, '54 00000003 03 00004000 00004001 00004002'],
  [1, false, '4D 01 0000000001000000 70667800 00000003 616263'],
  [2, false, '53 000003E8 01'],
  [2, true, '45'],
  [2, false, '63 000003E8 00 00000016B374D848 00000016B374D878 00000000000F4240'],
  [4, false, '41 000003E8 000003E9 00000016B374D848 00000000001E8480'],
  [3, false, '62 00000016B374D848 00000016B374D878 00000000000F4240 000004D2 7478312D67696400'],
  [3, false, '50 00 00000016B374D848 00000016B374D878 00000000000F4240 000004D2 7478312D67696400'],
  [3, false, '4B 00 00000016B374D848 00000016B374D878 00000000001E8480 000004D2 7478312D67696400'],
  [3, false, '72 00 00000016B374D848 00000016B374D878 00000000000F4240 00000000001E8480 000004D2 7478312D67696400'],
  [3, false, '70 00 00000016B374D848 00000016B374D878 00000000000F4240 000003E8 7478312D67696400'],
];

describe('pgoutput fuzzing', () => {
  it('seed messages are valid', () => {
    for (const [v, inStream, h] of SEEDS) expect(() => decodePgoutput(hex(h), ctxOf(v, inStream))).not.toThrow();
  });

  it('arbitrary bytes only ever throw PgoutputDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), versionArb, fc.boolean(), (bytes, v, inStream) => {
        decodeOrDecodeError(Buffer.from(bytes), ctxOf(v, inStream && v >= 2));
      }),
      { numRuns: 5000 },
    );
  });

  it('arbitrary bodies behind every known type byte only ever throw PgoutputDecodeError', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...TYPE_BYTES),
        fc.uint8Array({ maxLength: 80 }),
        versionArb,
        fc.boolean(),
        (type, body, v, inStream) => {
          decodeOrDecodeError(Buffer.concat([Buffer.from([type]), body]), ctxOf(v, inStream && v >= 2));
        },
      ),
      { numRuns: 10000 },
    );
  });

  it('mutated valid messages only ever throw PgoutputDecodeError', () => {
    const seed = fc.constantFrom(...SEEDS);
    const mutation = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(seed, mutation, fc.nat(), ([v, inStream, h], edits, cut) => {
        const buf = hex(h);
        for (const [pos, byte] of edits) buf[pos % buf.length] = byte;
        decodeOrDecodeError(buf.subarray(0, buf.length - (cut % 3)), ctxOf(v, inStream));
      }),
      { numRuns: 10000 },
    );
  });
});
