import type { RelationColumn } from '../../src/replication/pgoutput/index.js';

/**
 * pgoutput messages as a walsender sends them for the micro-benchmarks: a Relation message and Insert messages of
 * the row shape the end-to-end benches insert (`id bigint, owner uuid, body text, at timestamptz`).
 */
export const RELATION_ID = 16_384;

export const COLUMNS: RelationColumn[] = [
  { flags: 1, isKey: true, name: 'id', typeOid: 20, typeModifier: -1 },
  { flags: 0, isKey: false, name: 'owner', typeOid: 2950, typeModifier: -1 },
  { flags: 0, isKey: false, name: 'body', typeOid: 25, typeModifier: -1 },
  { flags: 0, isKey: false, name: 'at', typeOid: 1184, typeModifier: -1 },
];

const str = (s: string) => Buffer.concat([Buffer.from(s), Buffer.alloc(1)]);
const u8 = (v: number) => Buffer.from([v]);
const i16 = (v: number) => (b => (b.writeInt16BE(v), b))(Buffer.alloc(2));
const i32 = (v: number) => (b => (b.writeInt32BE(v), b))(Buffer.alloc(4));

/** `R`: relation id, namespace, name, replica identity, columns. */
export function relationMessage(): Buffer {
  const cols = COLUMNS.flatMap((c) => [u8(c.flags), str(c.name), i32(c.typeOid), i32(c.typeModifier)]);
  return Buffer.concat([u8(0x52), i32(RELATION_ID), str('public'), str('bench'), u8(0x64), i16(COLUMNS.length), ...cols]);
}

/** `I`: a new tuple of text values. */
export function insertMessage(values: readonly (string | null)[]): Buffer {
  const cols = values.flatMap((v) => (v === null ? [u8(0x6e)] : [u8(0x74), i32(Buffer.byteLength(v)), Buffer.from(v)]));
  return Buffer.concat([u8(0x49), i32(RELATION_ID), u8(0x4e), i16(values.length), ...cols]);
}

/** The values of row `id`, with a body of `bodyLen` characters. */
export function rowValues(id: number, bodyLen = 100): string[] {
  return [String(id), '6f1c7a3e-2b1d-4c55-9a0e-8d7b6c5a4f3e', 'm'.padEnd(bodyLen, 'x'), '2026-12-06 03:00:00.123456+00'];
}
