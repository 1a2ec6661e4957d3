import pg from 'pg';
import { topicKey, type Envelope } from '../channels/fanout.js';
import type { PubSubMessage } from '../cluster/pubsub.js';
import type { Logger } from '../observability/logger.js';
import type { RelationMessage, TupleData } from './pgoutput/index.js';
import { ReplicationStream, type ReplicationEvent, type ReplicationStatus, type ReplicationStreamOptions } from './stream.js';

// Broadcast from the database (spec §4.6): rows inserted into realtime.messages become user broadcasts.

export const MESSAGES_PUBLICATION = 'supabase_realtime_messages_publication';
export const MESSAGES_SLOT_PREFIX = 'supabase_realtime_messages_replication_slot_';

export interface DatabaseBroadcastOptions {
  databaseUrl: string;
  tenantId: string;
  /** Hands a message to pub/sub, e.g. `(msg) => ctx.pubsub.publish(msg, null)`. Called synchronously, in commit order. */
  publish: (msg: PubSubMessage) => void;
  log: Logger;
  /** Largest payload (bytes) broadcast; a function is read per row so limit changes apply at once. */
  payloadLimitBytes: number | (() => number);
  /** The tenant's events limiter: false drops the row. */
  allow?: () => boolean;
  /** SLOT_NAME_SUFFIX; lower-cased, characters outside [a-z0-9_] become '_'. Empty by default (name ends in '_'). */
  slotSuffix?: string;
  /** Stream tuning (tests use short backoffs). */
  replication?: Pick<ReplicationStreamOptions, 'backoff' | 'statusIntervalMs' | 'receiveTimeoutMs'>;
}

export interface DatabaseBroadcast {
  readonly slot: string;
  /** 'up' once the replication connection streams: what `replication_ready` waits for. */
  readonly status: ReplicationStatus;
  onStatus(listener: (status: ReplicationStatus, error: unknown) => void): () => void;
  stop(): Promise<void>;
}

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
 * Starts the tenant's database broadcast pipeline: a temporary slot over the messages publication, every
 * inserted broadcast row published to its topic namespace. Never throws; connection trouble shows in status.
 */
export function startDatabaseBroadcast(opts: DatabaseBroadcastOptions): DatabaseBroadcast {
  const slot = messagesSlotName(opts.slotSuffix ?? '');
  const log = opts.log.child({ replication: 'broadcast_from_database' });
  const drops = new DropLog(log);
  const limit = typeof opts.payloadLimitBytes === 'function' ? opts.payloadLimitBytes : () => opts.payloadLimitBytes as number;
  const columns = new WeakMap<RelationMessage, ColumnIndex | null>();

  const stream: ReplicationStream = new ReplicationStream({
    connection: opts.databaseUrl,
    publications: [MESSAGES_PUBLICATION],
    slot,
    temporary: true,
    autoAck: true,
    log,
    ...opts.replication,
    prepare: async () => {
      const client = new pg.Client({ connectionString: opts.databaseUrl, connectionTimeoutMillis: 10_000 });
      // A connection the server ends between queries reports here, not as an uncaught event; the query fails.
      client.on('error', (err) => log.debug({ err }, 'messages publication check: connection error'));
      await client.connect();
      try {
        const outcome = await ensureMessagesPublication(client);
        if (outcome !== 'ok') log.info({ publication: MESSAGES_PUBLICATION, outcome }, 'messages publication prepared');
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    handler: (event: ReplicationEvent) => {
      const message = event.message;
      if (message.tag !== 'insert') return;
      const relation = stream.relations.get(message.relationId);
      if (!relation) return;
      let index = columns.get(relation);
      if (index === undefined) columns.set(relation, (index = columnIndex(relation)));
      if (index === null) return;
      const outcome = rowToPubSub(opts.tenantId, readRow(index, message.new), limit());
      if (!outcome.ok) {
        if (outcome.reason !== 'not_broadcast') drops.note(outcome.reason);
        return;
      }
      if (opts.allow && !opts.allow()) {
        drops.note('rate_limited');
        return;
      }
      opts.publish(outcome.msg);
    },
  });
  stream.start();
  return {
    slot,
    get status() {
      return stream.status;
    },
    onStatus: (listener) => stream.onStatus(listener),
    stop: () => stream.stop(),
  };
}

export function messagesSlotName(suffix: string): string {
  return `${MESSAGES_SLOT_PREFIX}${suffix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`.slice(0, 63);
}

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

/**
 * Makes sure the publication exists and holds exactly realtime.messages (published via the partition root, with
 * inserts); otherwise creates or recreates it. Safe against concurrent callers.
 */
export async function ensureMessagesPublication(client: pg.ClientBase): Promise<'ok' | 'created' | 'recreated'> {
  const { rows } = await client.query<{ fine: boolean }>(
    `SELECT p.pubinsert AND p.pubviaroot AND NOT p.puballtables
            AND EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r
                         WHERE r.prpubid = p.oid AND r.prrelid = 'realtime.messages'::regclass)
            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r
                             WHERE r.prpubid = p.oid AND r.prrelid <> 'realtime.messages'::regclass
                               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                                                WHERE i.inhrelid = r.prrelid
                                                  AND i.inhparent = 'realtime.messages'::regclass))
            AND (to_regclass('pg_catalog.pg_publication_namespace') IS NULL
                 OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace n WHERE n.pnpubid = p.oid)) AS fine
       FROM pg_catalog.pg_publication p WHERE p.pubname = $1`,
    [MESSAGES_PUBLICATION],
  );
  if (rows[0]?.fine) return 'ok';
  const outcome = rows.length === 0 ? 'created' : 'recreated';
  await client.query('BEGIN');
  try {
    await client.query(`DROP PUBLICATION IF EXISTS ${MESSAGES_PUBLICATION}`);
    await client.query(`CREATE PUBLICATION ${MESSAGES_PUBLICATION} FOR TABLE realtime.messages WITH (publish_via_partition_root = true)`);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Another node created it between our check and our create.
    if ((err as { code?: string }).code === '42710' || (err as { code?: string }).code === '23505') return 'ok';
    throw err;
  }
  return outcome;
}

type Field = keyof MessageRowText;
type ColumnIndex = Record<Field, number>;

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
function columnIndex(relation: RelationMessage): ColumnIndex | null {
  if (relation.namespace !== 'realtime' || relation.name !== 'messages') return null;
  const index = {} as ColumnIndex;
  for (const field of Object.keys(COLUMN_OF) as Field[]) {
    index[field] = relation.columns.findIndex((c) => c.name === COLUMN_OF[field]);
  }
  return index;
}

function readRow(index: ColumnIndex, tuple: TupleData): MessageRowText {
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
class DropLog {
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
