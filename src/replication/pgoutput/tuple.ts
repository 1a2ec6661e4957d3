import type { MessageReader } from './reader.js';
import type { OldTuple, TupleColumn, TupleData } from './types.js';

// Shared because these kinds carry no payload; saves one object per column.
export const NULL_COLUMN: TupleColumn = Object.freeze({ kind: 'null' });
export const UNCHANGED_COLUMN: TupleColumn = Object.freeze({ kind: 'unchanged' });

const KIND_NULL = 0x6e; // 'n'
const KIND_UNCHANGED = 0x75; // 'u'
const KIND_TEXT = 0x74; // 't'
const KIND_BINARY = 0x62; // 'b'

export const TUPLE_NEW = 0x4e; // 'N'
export const TUPLE_KEY = 0x4b; // 'K'
export const TUPLE_OLD = 0x4f; // 'O'

export function readTupleData(r: MessageReader): TupleData {
  const n = r.u16('tuple column count');
  r.count(n, 1, 'tuple column');
  const cols: TupleColumn[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const kind = r.u8('tuple column kind');
    switch (kind) {
      case KIND_NULL:
        cols[i] = NULL_COLUMN;
        break;
      case KIND_UNCHANGED:
        cols[i] = UNCHANGED_COLUMN;
        break;
      case KIND_TEXT:
        cols[i] = { kind: 'text', value: r.utf8(r.length('text column')) };
        break;
      case KIND_BINARY:
        cols[i] = { kind: 'binary', value: r.slice(r.length('binary column')) };
        break;
      default:
        r.fail(`unknown tuple column kind 0x${hex(kind)} in column ${i}`, at);
    }
  }
  return cols;
}

/** The tuple following a 'K' or 'O' marker the caller has already read and validated. */
export function readOldTuple(r: MessageReader, marker: number): OldTuple {
  return { kind: marker === TUPLE_KEY ? 'key' : 'full', tuple: readTupleData(r) };
}

export function expectByte(r: MessageReader, expected: number, what: string): void {
  const at = r.pos;
  const b = r.u8(what);
  if (b !== expected) {
    r.fail(`expected ${what} '${String.fromCharCode(expected)}', got 0x${hex(b)}`, at);
  }
}

export function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
