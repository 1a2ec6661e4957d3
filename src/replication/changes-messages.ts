import type pg from 'pg';
import { withLentClient } from '../db/lend.js';
import type { Logger } from '../observability/logger.js';
import { ensureMessagesPublication, MESSAGES_PUBLICATION, type DatabaseBroadcast } from './db-broadcast.js';
import { MessagesReader } from './messages-relay.js';
import type { Lsn, PgTimestamp, RelationMessage, TupleData } from './pgoutput/index.js';
import type { ReplicationStream } from './stream.js';

/** How long each step of handing realtime.messages back may take at most. */
const HANDBACK_MS = 10_000;
/** How long a stream starting with the tenant waits for the database-broadcast pipeline to exist. */
const PIPELINE_WAIT_MS = 2000;

/**
 * realtime.messages read by Postgres Changes' stream for the tenant's database-broadcast pipeline (see
 * MessagesRelay): the stream subscribes to the messages publication too, hands those rows to the relay, and the
 * pipeline's own walsender stops. Before the stream stops, the pipeline takes the rows back.
 */
export class CarriedMessages {
  private readonly reader: MessagesReader;
  private handedOff = false;

  private constructor(
    private readonly pipeline: DatabaseBroadcast,
    private readonly log: Logger,
  ) {
    this.reader = pipeline.relay.reader();
  }

  /**
   * For a stream over `publication`, when it can carry the messages: not when that publication could publish
   * realtime.messages or its partitions itself (FOR ALL TABLES, any table of the realtime schema), whose rows are
   * changes then too; those stay with the pipeline's own stream.
   */
  static async lookup(opts: {
    pipeline: () => DatabaseBroadcast | null;
    pool: () => Promise<pg.Pool>;
    publication: string;
    log: Logger;
  }): Promise<CarriedMessages | null> {
    // At tenant start the changes stream may come up a moment before the pipeline does: wait for it, briefly.
    let pipeline = opts.pipeline();
    for (let waited = 0; !pipeline && waited < PIPELINE_WAIT_MS; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
      pipeline = opts.pipeline();
    }
    if (!pipeline) return null;
    try {
      const pool = await opts.pool();
      const { rows } = await pool.query<{ apart: boolean }>(
        `SELECT NOT p.puballtables AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables t
                                                    WHERE t.pubname = p.pubname AND t.schemaname = 'realtime') AS apart
           FROM pg_catalog.pg_publication p WHERE p.pubname = $1`,
        [opts.publication],
      );
      return rows[0]?.apart === true ? new CarriedMessages(pipeline, opts.log) : null;
    } catch (err) {
      opts.log.warn({ err }, 'could not check the publication for realtime.messages; database broadcasts keep their own stream');
      return null;
    }
  }

  /** The publications the stream subscribes to. */
  publications(own: string): string[] {
    return [own, MESSAGES_PUBLICATION];
  }

  /** Before each connection: the messages publication must exist for START_REPLICATION to name it. */
  async preparePublication(pool: pg.Pool): Promise<void> {
    await withLentClient(pool, ensureMessagesPublication);
  }

  /** The stream is starting at `startLsn`: the pipeline may stop its own stream once it has caught up with it. */
  started(stream: ReplicationStream, startLsn: Lsn): void {
    if (this.handedOff) return;
    this.handedOff = true;
    this.pipeline.handOff({
      get status() {
        return stream.status;
      },
      fromLsn: startLsn,
      get handledLsn() {
        return stream.handledLsn;
      },
    });
  }

  begin(commitLsn: Lsn, commitTime: PgTimestamp): void {
    this.reader.begin(commitLsn, commitTime);
  }

  commit(): void {
    this.reader.commit();
  }

  /** True (and the row handled) when `relation` is realtime.messages: not a change for subscribers. */
  take(relation: RelationMessage, tag: 'insert' | 'update' | 'delete', tuple: TupleData | null): boolean {
    if (!MessagesReader.isMessages(relation)) return false;
    if (tag === 'insert' && tuple) this.reader.insert(relation, tuple);
    return true;
  }

  /**
   * Before the stream stops: the pipeline starts its own stream again, and this one first handles everything
   * committed before that came up (bounded: a stream that is down cannot).
   */
  async handBack(stream: ReplicationStream | null): Promise<void> {
    const from = await this.pipeline.takeBack(HANDBACK_MS);
    if (from === null || !stream) return;
    const deadline = Date.now() + HANDBACK_MS;
    while (stream.handledLsn < from && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (stream.handledLsn < from) this.log.warn('stopping before realtime.messages were handed back in full; broadcasts committed meanwhile may be missed');
  }
}
