import type pg from 'pg';
import { openLoop } from '../lib/open-loop.js';
import { PHASE_MEASURE, stampText } from '../lib/stamp.js';
import { nowUs } from '../lib/time.js';
import type { Shape } from './types.js';

/**
 * The Postgres Changes bench's producers: node-postgres sessions inserting rows `(id, owner, body)` with prepared
 * statements. Row ids are unique over the run; owners cycle over K users (row id -> owners[id % K]); `body` starts
 * with the stamp of its transaction (../lib/stamp.ts), padded to `bodyLen`.
 */
export interface Produced {
  rows: number;
  txns: number;
  /** Deliveries the rows should make (expectedFor of each row). */
  expected: number;
  startUs: number;
  firstCommitUs: number;
  lastCommitUs: number;
  /** Commit acknowledgement of each transaction (monotonic µs). */
  acks: Float64Array;
  capped: boolean;
}

export class Producers {
  private nextId = 1;

  constructor(
    readonly clients: readonly pg.Client[],
    readonly owners: readonly string[],
    private readonly o: { batch: number; batchConns: number; singleConns: number; bodyLen: number },
  ) {}

  /** Ids handed out so far + 1: the first id of the next insert. */
  take(count: number): number {
    const first = this.nextId;
    this.nextId += count;
    return first;
  }

  body(phase: number, sendUs: number, txn: number): string {
    const s = stampText(phase, sendUs, txn);
    return s + 'x'.repeat(Math.max(0, this.o.bodyLen - s.length));
  }

  insertOne(c: pg.Client, table: string, id: number, text: string): Promise<unknown> {
    return c.query({ name: `one_${table}`, text: `INSERT INTO public.${table} (id, owner, body) VALUES ($1, $2, $3)`, values: [id, this.owners[id % this.owners.length], text] });
  }

  insertMany(c: pg.Client, table: string, firstId: number, count: number, text: string): Promise<unknown> {
    return c.query({
      name: `many_${table}`,
      text:
        `INSERT INTO public.${table} (id, owner, body) SELECT g, ($2::uuid[])[1 + (g % ${this.owners.length})::int], $3 ` +
        'FROM generate_series($1::bigint, $1::bigint + $4::int - 1) g',
      values: [firstId, this.owners, text, count],
    });
  }

  /** Closed loop: `rows` rows as fast as the connections go (bounded by `capMs`), 100 or 1 per transaction. */
  async produce(table: string, shape: Shape, rows: number, capMs: number, expectedFor: (id: number) => number): Promise<Produced> {
    const perTxn = shape === 'batch' ? this.o.batch : 1;
    const conns = this.clients.slice(0, shape === 'batch' ? this.o.batchConns : this.o.singleConns);
    const maxTxns = Math.ceil(rows / perTxn) + 1;
    const out = produced(nowUs(), maxTxns);
    const deadline = out.startUs + capMs * 1000;
    let issued = 0;
    let txn = 0;
    await Promise.all(
      conns.map(async (c) => {
        for (let i = 0; i < maxTxns && issued < rows; i++) {
          if (nowUs() >= deadline) {
            out.capped = true;
            break;
          }
          const n = Math.min(perTxn, rows - issued);
          issued += n;
          const first = this.take(n);
          const t = txn++;
          const text = this.body(PHASE_MEASURE, nowUs(), t);
          await (n === 1 ? this.insertOne(c, table, first, text) : this.insertMany(c, table, first, n, text));
          committed(out, t, first, n, expectedFor);
        }
      }),
    );
    return out;
  }

  /**
   * Open loop for latency: one row per transaction at `rate`/s for `ms`, stamped with its scheduled time (queueing in
   * the load generator counts). Issuing stops 2 s after the window at the latest.
   */
  async paced(table: string, rate: number, ms: number, expectedFor: (id: number) => number): Promise<Produced> {
    const intervalUs = 1e6 / rate;
    const t0 = nowUs() + 1000;
    const total = Math.floor((ms * 1000) / intervalUs);
    const out = produced(t0, total + 1);
    const loop = await openLoop({
      conns: this.clients.slice(0, this.o.singleConns),
      total,
      t0,
      intervalUs,
      hardEndUs: t0 + ms * 1000 + 2_000_000,
      issue: async (c, t, scheduledUs) => {
        const id = this.take(1);
        await this.insertOne(c, table, id, this.body(PHASE_MEASURE, scheduledUs, t));
        committed(out, t, id, 1, expectedFor);
      },
    });
    out.capped = loop.capped;
    return out;
  }
}

function produced(startUs: number, maxTxns: number): Produced {
  return { rows: 0, txns: 0, expected: 0, startUs, firstCommitUs: 0, lastCommitUs: 0, acks: new Float64Array(maxTxns), capped: false };
}

/** Transaction `t` (rows first..first+n-1) acknowledged now. */
function committed(out: Produced, t: number, first: number, n: number, expectedFor: (id: number) => number): void {
  const ack = nowUs();
  out.acks[t] = ack;
  if (out.firstCommitUs === 0 || ack < out.firstCommitUs) out.firstCommitUs = ack;
  if (ack > out.lastCommitUs) out.lastCommitUs = ack;
  out.rows += n;
  out.txns++;
  for (let id = first; id < first + n; id++) out.expected += expectedFor(id);
}
