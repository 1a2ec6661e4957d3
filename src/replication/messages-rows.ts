import type { Envelope, PubSubMessage } from '../shared/messages.js';
import { topicKey } from '../shared/topic-keys.js';
import type { Logger } from '../observability/logger.js';
import type { RelationMessage, TupleData } from './pgoutput/index.js';

// Rows of realtime.messages (spec §4.6) as pgoutput delivers them, turned into user broadcasts.

/** The text of one realtime.messages row as pgoutput sends it in text mode; null for SQL NULL. */
export interface MessageRowText {
  id: string | null;
  topic: string | null;
  extension: string | null;
  event: string | null;
  payload: string | null;
  binaryPayload: string | null;
  private: string | null;
  insertedAt: string | null;
}

export type RowOutcome = { ok: true; msg: PubSubMessage; size: number } | { ok: false; reason: 'not_broadcast' | 'missing_fields' | 'too_large' | 'bad_payload' };

/**
 * Turns a realtime.messages row into the pub/sub message of spec §4.6: a user broadcast to the row's topic in the
 * private or public namespace, JSON rows with encoding 1 (the stored jsonb text, which carries the injected id),
 * binary rows with encoding 0, meta `{"id": row id}`.
 */
export function rowToPubSub(tenantId: string, row: MessageRowText, payloadLimitBytes: number): RowOutcome {
  if (row.extension !== 'broadcast') return { ok: false, reason: 'not_broadcast' };
  const { id, topic, event, insertedAt } = row;
  if (id === null || topic === null || event === null || insertedAt === null || row.private === null) {
    return { ok: false, reason: 'missing_fields' };
  }
  let payload: Uint8Array;
  let encoding: 0 | 1;
  if (row.payload !== null) {
    payload = Buffer.from(row.payload, 'utf8');
    encoding = 1;
  } else if (row.binaryPayload !== null) {
    const bytes = decodeByteaText(row.binaryPayload);
    if (bytes === null) return { ok: false, reason: 'bad_payload' };
    payload = bytes;
    encoding = 0;
  } else {
    return { ok: false, reason: 'missing_fields' };
  }
  if (payload.length > payloadLimitBytes) return { ok: false, reason: 'too_large' };
  const isPrivate = row.private === 't';
  const env: Envelope = { type: 'user', userEvent: event, encoding, payload, metaJson: JSON.stringify({ id }) };
  return { ok: true, size: payload.length, msg: { tenantId, key: topicKey(tenantId, topic, isPrivate), subTopic: topic, env } };
}

/**
 * A `timestamp without time zone` as pgoutput sends it in text (ISO DateStyle, `2026-11-25 10:00:00.123456`),
 * read as UTC; NaN when it is not one (`infinity`, BC dates).
 */
export function timestampTextToEpochMs(text: string): number {
  return Date.parse(`${text.replace(' ', 'T')}Z`);
}

/** bytea's text output: hex (`\x0a1b`, the default) or the legacy escape format. Null when malformed. */
export function decodeByteaText(text: string): Buffer | null {
  if (text.startsWith('\\x')) {
    const hex = text.slice(2);
    if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
    return Buffer.from(hex, 'hex');
  }
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x5c) {
      if (c > 0xff) return null;
      out.push(c);
      continue;
    }
    if (text[i + 1] === '\\') {
      out.push(0x5c);
      i += 1;
      continue;
    }
    const octal = text.slice(i + 1, i + 4);
    if (!/^[0-3][0-7]{2}$/.test(octal)) return null;
    out.push(parseInt(octal, 8));
    i += 3;
  }
  return Buffer.from(out);
}

type Field = keyof MessageRowText;
export type ColumnIndex = Record<Field, number>;

const COLUMN_OF: Record<Field, string> = {
  id: 'id',
  topic: 'topic',
  extension: 'extension',
  event: 'event',
  payload: 'payload',
  binaryPayload: 'binary_payload',
  private: 'private',
  insertedAt: 'inserted_at',
};

/** Column positions in realtime.messages as announced; null for any other relation. */
export function columnIndex(relation: RelationMessage): ColumnIndex | null {
  if (relation.namespace !== 'realtime' || relation.name !== 'messages') return null;
  const index = {} as ColumnIndex;
  for (const field of Object.keys(COLUMN_OF) as Field[]) {
    index[field] = relation.columns.findIndex((c) => c.name === COLUMN_OF[field]);
  }
  return index;
}

export function readRow(index: ColumnIndex, tuple: TupleData): MessageRowText {
  const text = (i: number): string | null => {
    const col = i < 0 ? undefined : tuple[i];
    return col?.kind === 'text' ? col.value : null;
  };
  return {
    id: text(index.id),
    topic: text(index.topic),
    extension: text(index.extension),
    event: text(index.event),
    payload: text(index.payload),
    binaryPayload: text(index.binaryPayload),
    private: text(index.private),
    insertedAt: text(index.insertedAt),
  };
}

/** Drop logging that cannot flood: one line per reason per 5 s, with how many were dropped since. */
export class DropLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly log: Logger) {}

  note(reason: string): void {
    const now = Date.now();
    const entry = this.last.get(reason);
    if (entry && now - entry.at < 5000) {
      entry.suppressed += 1;
      return;
    }
    this.last.set(reason, { at: now, suppressed: 0 });
    this.log.warn(
      { error_code: 'UnableToBroadcastChanges', reason, suppressed: entry?.suppressed ?? 0 },
      'database broadcast row dropped',
    );
  }
}
