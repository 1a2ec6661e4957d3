/**
 * When a changes engine confirms a position: with the status update that follows the frames, and only once the
 * frames the fan-out paces over later loop turns have left (and, in a cluster, what went to other nodes reached Redis).
 */
import { describe, expect, it } from 'vitest';
import { ClusterAck, type AckHost } from '../../src/replication/changes-ack.js';
import type { ReplicationStream } from '../../src/replication/stream.js';
import { createLogger } from '../../src/observability/logger.js';

function gate(): { promise: Promise<void>; open(): void } {
  let open = () => undefined as void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open: () => open() };
}

function harness(host: Partial<AckHost>) {
  const events: string[] = [];
  const stream = { ack: (lsn: bigint) => void events.push(`ack ${lsn}`), flush: () => void events.push('flush') } as unknown as ReplicationStream;
  const ack = new ClusterAck({ stream: () => stream, owns: () => true, log: createLogger('silent'), ...host });
  return { ack, events };
}

describe('confirming a handed-out position', () => {
  it('confirms with the status update at once when nothing waits in the fan-out', () => {
    const h = harness({ drained: () => null });
    h.ack.confirm(5n);
    expect(h.events).toEqual([]);
    h.ack.sendStatus();
    expect(h.events).toEqual(['ack 5', 'flush']);
    expect(h.ack.acking).toBeNull();
  });

  it('waits for the frames the fan-out holds, then confirms; what comes meanwhile waits its own turn', async () => {
    const first = gate();
    const second = gate();
    const gates = [first, second];
    const h = harness({ drained: () => gates.shift()?.promise ?? null });
    h.ack.confirm(5n);
    h.ack.sendStatus();
    h.ack.confirm(9n);
    h.ack.sendStatus();
    await Promise.resolve();
    expect(h.events).toEqual([]);
    expect(h.ack.acking).not.toBeNull();
    first.open();
    await first.promise;
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.events).toEqual(['ack 5', 'flush']);
    second.open();
    await h.ack.acking;
    expect(h.events).toEqual(['ack 5', 'flush', 'ack 9', 'flush']);
  });

  it('in a cluster waits for both Redis and the fan-out, and confirms nothing once the tenant is not owned', async () => {
    const redis = gate();
    const fanout = gate();
    let owns = true;
    const h = harness({ published: () => redis.promise, drained: () => fanout.promise, owns: () => owns });
    h.ack.confirm(7n);
    h.ack.sendStatus();
    fanout.open();
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.events).toEqual([]);
    owns = false;
    redis.open();
    await h.ack.acking;
    expect(h.events).toEqual(['flush']);
  });
});
