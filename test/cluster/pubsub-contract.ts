/**
 * The contract every pub/sub driver passes (src/cluster/): a function of the driver under test, so that each driver
 * runs the same suite (test/cluster/<driver>.test.ts). The single-node part holds for any driver; the cross-node part
 * is defined for drivers that connect several nodes (the Redis driver of the cluster issue), each node being one
 * driver instance with its own handler.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PubSub, PubSubHandler } from '../../src/cluster/pubsub.js';
import type { ConnectionId, Envelope, PubSubMessage } from '../../src/shared/messages.js';
import { presenceTopicKey, topicKey } from '../../src/shared/topic-keys.js';

export interface DriverUnderTest {
  /** How many connected nodes the driver can start (the local driver: 1). */
  readonly maxNodes: number;
  /**
   * Whether one node's publishes reach another node in publish order across topic keys, or per key only (Redis
   * Cluster: each channel's sharded subscription may ride its own connection). Default: across keys.
   */
  readonly orderAcrossKeys?: boolean;
  /** Starts one driver instance per handler, all connected to each other. */
  start(handlers: readonly PubSubHandler[]): Promise<PubSub[]>;
  /** Resolves once everything published, subscribed or unsubscribed so far has taken effect on every node. */
  settle(nodes: readonly PubSub[]): Promise<void>;
}

interface Received {
  msg: PubSubMessage;
  exclude: ConnectionId | null;
}

/** A node's handler, recording what it was handed. */
class Recorder implements PubSubHandler {
  readonly received: Received[] = [];
  deliver(msg: PubSubMessage, exclude: ConnectionId | null): void {
    this.received.push({ msg, exclude });
  }
  take(): Received[] {
    return this.received.splice(0);
  }
}

const json = (event: string, payload: unknown): Envelope => ({ type: 'json', event, payloadJson: JSON.stringify(payload) });

function message(subTopic: string, env: Envelope, tenantId = 't1', isPrivate = false): PubSubMessage {
  return { tenantId, key: topicKey(tenantId, subTopic, isPrivate), subTopic, env };
}

/** What a message looks like after the trip, however the driver carried it (bytes compared as bytes). */
function comparable(m: PubSubMessage): unknown {
  const env = m.env.type === 'user' ? { ...m.env, payload: [...m.env.payload] } : m.env;
  return { ...m, env };
}

export function describePubSubContract(name: string, driver: DriverUnderTest): void {
  describe(`pub/sub contract: ${name}`, () => {
    let running: PubSub[] = [];
    const startNodes = async (count: number) => {
      const recorders = Array.from({ length: count }, () => new Recorder());
      running = await driver.start(recorders);
      return { nodes: running, recorders };
    };
    afterEach(async () => {
      await Promise.all(running.map((n) => n.close()));
      running = [];
    });

    it('hands a publish to its own node before returning, with the sender to exclude', async () => {
      const { nodes, recorders } = await startNodes(1);
      const a = message('room', json('broadcast', { n: 1 }));
      const b = message('room', json('broadcast', { n: 2 }));
      nodes[0]!.publish(a, 17);
      expect(recorders[0]!.received).toHaveLength(1);
      nodes[0]!.publish(b, null);
      expect(recorders[0]!.take().map((r) => [comparable(r.msg), r.exclude])).toEqual([
        [comparable(a), 17],
        [comparable(b), null],
      ]);
    });

    it('hands a local publish to its own node before returning, with the sender to exclude', async () => {
      const { nodes, recorders } = await startNodes(1);
      const diff = { tenantId: 't1', key: presenceTopicKey('t1', 'room', false), subTopic: 'room', env: json('presence_diff', { joins: {}, leaves: {} }) };
      nodes[0]!.publishLocal(diff, 3);
      nodes[0]!.publishLocal(diff, null);
      expect(recorders[0]!.take().map((r) => [comparable(r.msg), r.exclude])).toEqual([
        [comparable(diff), 3],
        [comparable(diff), null],
      ]);
    });

    it('keeps the order of publishes, local or not, across keys and tenants', async () => {
      const { nodes, recorders } = await startNodes(1);
      const sent: PubSubMessage[] = [];
      for (let i = 0; i < 50; i++) {
        const m = message(`room-${i % 3}`, json('broadcast', { i }), i % 2 === 0 ? 't1' : 't2', i % 5 === 0);
        sent.push(m);
        if (i % 4 === 0) nodes[0]!.publishLocal(m, null);
        else nodes[0]!.publish(m, null);
      }
      expect(recorders[0]!.take().map((r) => comparable(r.msg))).toEqual(sent.map(comparable));
    });

    it('delivers on its own node whatever the interest it was told', async () => {
      const { nodes, recorders } = await startNodes(1);
      const node = nodes[0]!;
      const m = message('room', json('broadcast', {}));
      node.publish(m, null);
      node.subscribe(m.key);
      node.publish(m, null);
      node.unsubscribe(m.key);
      await driver.settle(nodes);
      node.publish(m, null);
      expect(recorders[0]!.take()).toHaveLength(3);
    });

    it('carries every envelope kind intact: JSON text, binary and text user payloads, meta or none, changes', async () => {
      const { nodes, recorders } = await startNodes(1);
      const envs: Envelope[] = [
        json('broadcast', { text: 'ünïcödé \u2028', nested: [1, { a: null }] }),
        { type: 'user', userEvent: 'bin', encoding: 0, payload: new Uint8Array([0, 255, 0xc3, 0x28, 10]), metaJson: '{"id":"00000000-0000-0000-0000-000000000001"}' },
        { type: 'user', userEvent: 'text', encoding: 1, payload: Buffer.from('{"a":1}'), metaJson: null },
        { type: 'user', userEvent: 'empty', encoding: 0, payload: new Uint8Array(0), metaJson: null },
        {
          type: 'changes',
          legacy: false,
          items: [
            { type: 'INSERT', data: '{"record":{"id":1}}', idsJson: '[12345,678]' },
            { type: 'DELETE', data: '{"old_record":{"id":1}}', idsJson: '[12345]' },
          ],
        },
        { type: 'changes', legacy: true, items: [{ type: 'UPDATE', data: '{"record":{"id":2}}', idsJson: null }] },
      ];
      for (const env of envs) nodes[0]!.publish(message('room', env), null);
      expect(recorders[0]!.take().map((r) => comparable(r.msg))).toEqual(envs.map((env) => comparable(message('room', env))));
    });

    it('delivers nothing once closed, and publishing then is harmless', async () => {
      const { nodes, recorders } = await startNodes(1);
      await nodes[0]!.close();
      nodes[0]!.publish(message('room', json('broadcast', {})), null);
      nodes[0]!.publishLocal(message('room', json('broadcast', {})), null);
      await driver.settle(nodes);
      expect(recorders[0]!.received).toEqual([]);
    });

    if (driver.maxNodes < 2) return;

    describe('across nodes', () => {
      it('reaches the other nodes with interest in the key, with the sender to exclude (ids are cluster-unique), and no others', async () => {
        const { nodes, recorders } = await startNodes(3);
        const m = message('room', json('broadcast', { n: 1 }));
        nodes[1]!.subscribe(m.key);
        await driver.settle(nodes);
        nodes[0]!.publish(m, 9);
        await driver.settle(nodes);
        expect(recorders.map((r) => r.take().map((x) => [comparable(x.msg), x.exclude]))).toEqual([[[comparable(m), 9]], [[comparable(m), 9]], []]);
      });

      it('carries every envelope kind across intact, binary payloads byte for byte', async () => {
        const { nodes, recorders } = await startNodes(2);
        const envs: Envelope[] = [
          json('broadcast', { text: 'ünïcödé \u2028', nested: [1, { a: null }] }),
          { type: 'user', userEvent: 'bin', encoding: 0, payload: new Uint8Array([0, 255, 0xc3, 0x28, 10]), metaJson: '{"id":"x"}' },
          { type: 'user', userEvent: 'text', encoding: 1, payload: Buffer.from('{"a":1}'), metaJson: null },
          { type: 'user', userEvent: 'empty', encoding: 0, payload: new Uint8Array(0), metaJson: null },
          { type: 'changes', legacy: false, items: [{ type: 'INSERT', data: '{"record":{"id":1}}', idsJson: '[1,2]' }] },
          { type: 'changes', legacy: true, items: [{ type: 'UPDATE', data: '{}', idsJson: null }] },
        ];
        const sent = envs.map((env, i) => message('room', env, 'tenant-ü', i % 2 === 0));
        for (const m of sent) nodes[1]!.subscribe(m.key);
        await driver.settle(nodes);
        for (const m of sent) nodes[0]!.publish(m, null);
        await driver.settle(nodes);
        // Intactness is what is checked here, not order across keys (see orderAcrossKeys).
        const byText = (list: unknown[]) => list.map((m) => JSON.stringify(m)).sort();
        expect(byText(recorders[1]!.take().map((r) => comparable(r.msg)))).toEqual(byText(sent.map(comparable)));
      });

      it('has a node\'s interest in effect everywhere once interestReady resolves', async () => {
        const { nodes, recorders } = await startNodes(2);
        for (let i = 0; i < 20; i++) {
          const m = message(`ready-${i}`, json('broadcast', { i }));
          nodes[1]!.subscribe(m.key);
          await nodes[1]!.interestReady(m.key);
          nodes[0]!.publish(m, null);
        }
        await driver.settle(nodes);
        // Interest is what is checked here, not order (see orderAcrossKeys).
        expect(recorders[1]!.take().map((r) => r.msg.subTopic).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `ready-${i}`).sort());
      });

      it('keeps a local publish on its node', async () => {
        const { nodes, recorders } = await startNodes(2);
        const m = message('room', json('presence_diff', {}));
        nodes[1]!.subscribe(m.key);
        await driver.settle(nodes);
        nodes[0]!.publishLocal(m, null);
        await driver.settle(nodes);
        expect(recorders.map((r) => r.take().length)).toEqual([1, 0]);
      });

      it('stops reaching a node once it has no interest left', async () => {
        const { nodes, recorders } = await startNodes(2);
        const m = message('room', json('broadcast', {}));
        nodes[1]!.subscribe(m.key);
        await driver.settle(nodes);
        nodes[1]!.unsubscribe(m.key);
        await driver.settle(nodes);
        nodes[0]!.publish(m, null);
        await driver.settle(nodes);
        expect(recorders.map((r) => r.take().length)).toEqual([1, 0]);
      });

      it('keeps the order of one node publishes on every other node', async () => {
        const { nodes, recorders } = await startNodes(2);
        const keys = ['a', 'b'].map((t) => topicKey('t1', t, false));
        for (const key of keys) nodes[1]!.subscribe(key);
        await driver.settle(nodes);
        const sent = Array.from({ length: 100 }, (_, i) => message(i % 2 === 0 ? 'a' : 'b', json('broadcast', { i })));
        for (const m of sent) nodes[0]!.publish(m, null);
        await driver.settle(nodes);
        const got = recorders[1]!.take().map((r) => comparable(r.msg));
        if (driver.orderAcrossKeys === false) {
          for (const sub of ['a', 'b']) {
            const of = (list: unknown[]) => list.filter((m) => (m as PubSubMessage).subTopic === sub);
            expect(of(got)).toEqual(of(sent.map(comparable)));
          }
        } else {
          expect(got).toEqual(sent.map(comparable));
        }
      });
    });
  });
}
