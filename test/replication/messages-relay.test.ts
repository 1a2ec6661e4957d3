import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import type { PubSubMessage } from '../../src/shared/messages.js';
import { MessagesRelay } from '../../src/replication/messages-relay.js';
import { epochMsToPgTimestamp, type RelationMessage, type TupleData } from '../../src/replication/pgoutput/index.js';

const messages: RelationMessage = {
  tag: 'relation',
  xid: null,
  relationId: 1,
  namespace: 'realtime',
  name: 'messages',
  replicaIdentity: 'default',
  columns: ['id', 'topic', 'extension', 'payload', 'event', 'private', 'inserted_at', 'binary_payload'].map((name) => ({
    flags: 0,
    isKey: false,
    name,
    typeOid: 25,
    typeModifier: -1,
  })),
};

function row(n: number, insertedAt = '2026-11-25 10:00:00'): TupleData {
  const text = (value: string) => ({ kind: 'text' as const, value });
  return [text(`id-${n}`), text('room'), text('broadcast'), text(`{"n": ${n}}`), text('e'), text('f'), text(insertedAt), { kind: 'null' }];
}

/** An observer that keeps what it was given. */
function recorder(): { observe(v: number): void; values: number[] } {
  const values: number[] = [];
  return { values, observe: (v) => values.push(v) };
}

function relay(): { relay: MessagesRelay; sent: string[] } {
  const sent: string[] = [];
  const r = new MessagesRelay({
    tenantId: 't',
    publish: (msg: PubSubMessage) => sent.push(Buffer.from(msg.env.type === 'user' ? msg.env.payload : new Uint8Array()).toString()),
    log: createLogger('silent'),
    payloadLimitBytes: () => 1000,
  });
  return { relay: r, sent };
}

describe('MessagesRelay', () => {
  it('broadcasts nothing before the first stream of the run started, nor what committed before that', () => {
    const { relay: r, sent } = relay();
    expect(r.claim(100n)).toBe(false);
    r.startsAt(200n);
    r.startsAt(50n); // later streams do not move the start back
    expect(r.claim(150n)).toBe(false);
    expect(r.claim(200n)).toBe(true);
    expect(sent).toEqual([]);
  });

  it('gives each transaction to the first stream that reaches it, and only forward', () => {
    const { relay: r, sent } = relay();
    r.startsAt(10n);
    const a = r.reader();
    const b = r.reader();
    for (const [reader, lsn, n] of [[a, 20n, 1], [b, 20n, 1], [b, 30n, 2], [a, 30n, 2], [a, 40n, 3], [b, 35n, 99]] as const) {
      reader.begin(lsn);
      reader.insert(messages, row(n));
      reader.commit();
    }
    expect(sent).toEqual(['{"n": 1}', '{"n": 2}', '{"n": 3}']);
  });

  it('claims a transaction at its commit: one a stream stopped in the middle of stays for the other stream', () => {
    const { relay: r, sent } = relay();
    r.startsAt(10n);
    const stopping = r.reader();
    const other = r.reader();
    stopping.begin(20n);
    stopping.insert(messages, row(1));
    // `stopping` goes away here, before the commit.
    other.begin(20n);
    other.insert(messages, row(1));
    other.insert(messages, row(2));
    other.commit();
    expect(sent).toEqual(['{"n": 1}', '{"n": 2}']);
  });

  it('measures each broadcast it hands out once: payload bytes, and milliseconds since commit and since inserted_at', () => {
    const payloadBytes = recorder();
    const latencyCommittedAt = recorder();
    const latencyInsertedAt = recorder();
    const sent: PubSubMessage[] = [];
    const r = new MessagesRelay({
      tenantId: 't',
      publish: (msg) => sent.push(msg),
      log: createLogger('silent'),
      payloadLimitBytes: () => 1000,
      metrics: { payloadBytes, latencyCommittedAt, latencyInsertedAt },
    });
    r.startsAt(10n);
    const a = r.reader();
    const b = r.reader();
    const committedMs = Date.now() - 5000;
    const insertedMs = committedMs - 2000;
    const insertedText = new Date(insertedMs).toISOString().replace('T', ' ').replace('Z', '');
    for (const reader of [a, b]) {
      reader.begin(20n, epochMsToPgTimestamp(committedMs));
      reader.insert(messages, row(1, insertedText));
      reader.insert(messages, row(22, insertedText));
      reader.commit();
    }
    const after = Date.now();
    // Two rows, once each, although both streams read the transaction.
    expect(sent).toHaveLength(2);
    expect(payloadBytes.values).toEqual([8, 9]);
    expect(latencyCommittedAt.values).toHaveLength(2);
    expect(latencyInsertedAt.values).toHaveLength(2);
    for (const v of latencyCommittedAt.values) expect(v >= 5000 && v <= after - committedMs).toBe(true);
    for (const v of latencyInsertedAt.values) expect(v >= 7000 && v <= after - insertedMs).toBe(true);
  });

  it('measures nothing for rows it drops', () => {
    const payloadBytes = recorder();
    const r = new MessagesRelay({
      tenantId: 't',
      publish: () => undefined,
      log: createLogger('silent'),
      payloadLimitBytes: () => 5,
      metrics: { payloadBytes, latencyCommittedAt: recorder(), latencyInsertedAt: recorder() },
    });
    r.startsAt(10n);
    const reader = r.reader();
    reader.begin(20n, epochMsToPgTimestamp(Date.now()));
    reader.insert(messages, row(1));
    reader.commit();
    expect(payloadBytes.values).toEqual([]);
  });
});
