import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ClusterBus, ClusterMembers } from '../../src/cluster/bus.js';
import { createLogger } from '../../src/observability/logger.js';
import { parseMessage, PresenceSync } from '../../src/presence/cluster-sync.js';
import { newReplicaId, TenantPresence } from '../../src/presence/tenant-presence.js';
import type { PubSubMessage } from '../../src/shared/messages.js';

const log = createLogger('silent');
const TOPIC = 'public|room';

/** A bus whose messages wait in one inbox per node until the test delivers, duplicates, reorders or drops them. */
class HeldBus {
  readonly inbox = new Map<string, string[]>();
  private readonly handlers = new Map<string, (payload: string) => void>();

  forNode(node: string): ClusterBus {
    this.inbox.set(node, []);
    return {
      publish: (_channel, payload) => {
        for (const [other, box] of this.inbox) if (other !== node) box.push(payload);
      },
      listen: async (_channel, handler) => void this.handlers.set(node, handler),
      unlisten: async () => void this.handlers.delete(node),
    };
  }

  deliver(node: string, index: number, keep = false): void {
    const box = this.inbox.get(node)!;
    if (box.length === 0) return;
    const i = index % box.length;
    const payload = box[i]!;
    if (!keep) box.splice(i, 1);
    this.handlers.get(node)?.(payload);
  }

  drop(node: string, index: number): void {
    const box = this.inbox.get(node)!;
    if (box.length > 0) box.splice(index % box.length, 1);
  }

  /** Everything waiting, in order, lossless. */
  drain(): void {
    for (const node of this.inbox.keys()) while (this.inbox.get(node)!.length > 0) this.deliver(node, 0);
  }
}

class Members implements ClusterMembers {
  readonly listeners: ((c: { joined: readonly string[]; left: readonly string[] }) => void)[] = [];
  constructor(
    readonly self: string,
    readonly all: string[],
  ) {}
  live(): readonly string[] {
    return this.all;
  }
  isLive(name: string): boolean {
    return this.live().includes(name);
  }
  onChange(listener: (c: { joined: readonly string[]; left: readonly string[] }) => void): () => void {
    this.listeners.push(listener);
    return () => undefined;
  }
}

interface Node {
  name: string;
  presence: TenantPresence;
  sync: PresenceSync;
  diffs: PubSubMessage[];
}

function cluster(n: number, snapshotPieceBytes?: number): { bus: HeldBus; nodes: Node[]; names: string[] } {
  const bus = new HeldBus();
  const names = Array.from({ length: n }, (_, i) => `node-${i}`);
  const nodes = names.map((name) => {
    const presence = new TenantPresence('t1', newReplicaId(name));
    const diffs: PubSubMessage[] = [];
    const sync = new PresenceSync({
      bus: bus.forNode(name),
      members: new Members(name, names),
      channel: () => 'presence',
      running: () => [presence],
      publisher: { publishLocal: (msg) => void diffs.push(msg) },
      batchMs: 10,
      log,
      snapshotPieceBytes,
    });
    return { name, presence, sync, diffs };
  });
  for (const node of nodes) void node.sync.start();
  return { bus, nodes, names };
}

/** Lossless rounds with beacons and snapshot requests allowed: what follows any outage. */
function heal(bus: HeldBus, nodes: Node[], from: number): void {
  for (let round = 1; round <= 4; round++) {
    for (const node of nodes) node.sync.tick(from + round * 10_000);
    bus.drain();
  }
}

function view(node: Node): string {
  return JSON.stringify(node.presence.replica.topics().sort().map((t) => [t, node.presence.replica.list(t)]));
}

type Op =
  | { k: 'track'; node: number; pid: number; key: number; meta: number }
  | { k: 'untrack'; node: number; pid: number; key: number }
  | { k: 'close'; node: number; pid: number }
  | { k: 'tick'; node: number }
  | { k: 'deliver'; node: number; index: number }
  | { k: 'duplicate'; node: number; index: number }
  | { k: 'drop'; node: number; index: number };

const N = 3;
const idx = fc.nat({ max: N - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant('track' as const), node: idx, pid: fc.nat({ max: 2 }), key: fc.nat({ max: 2 }), meta: fc.nat({ max: 3 }) }),
  fc.record({ k: fc.constant('untrack' as const), node: idx, pid: fc.nat({ max: 2 }), key: fc.nat({ max: 2 }) }),
  fc.record({ k: fc.constant('close' as const), node: idx, pid: fc.nat({ max: 2 }) }),
  fc.record({ k: fc.constant('tick' as const), node: idx }),
  fc.record({ k: fc.constant('deliver' as const), node: idx, index: fc.nat({ max: 20 }) }),
  fc.record({ k: fc.constant('duplicate' as const), node: idx, index: fc.nat({ max: 20 }) }),
  fc.record({ k: fc.constant('drop' as const), node: idx, index: fc.nat({ max: 20 }) }),
);

function run(ops: Op[], bus: HeldBus, nodes: Node[]): void {
  let now = 0;
  for (const o of ops) {
    const node = nodes[o.node]!;
    switch (o.k) {
      case 'track':
        node.presence.track(TOPIC, `pid${o.pid}`, `key${o.key}`, { v: o.meta });
        break;
      case 'untrack':
        node.presence.untrack(TOPIC, `pid${o.pid}`, `key${o.key}`);
        break;
      case 'close':
        node.presence.untrackAll(`pid${o.pid}`);
        break;
      case 'tick':
        node.sync.tick((now += 100));
        break;
      case 'deliver':
        bus.deliver(node.name, o.index);
        break;
      case 'duplicate':
        bus.deliver(node.name, o.index, true);
        break;
      case 'drop':
        bus.drop(node.name, o.index);
        break;
    }
  }
}

describe('presence replicated across nodes', () => {
  it('converges on every node under reordering, duplication and loss, once messages flow again (snapshots whole or in pieces)', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.constantFrom(undefined, 150, 400), (ops, pieceBytes) => {
        const { bus, nodes } = cluster(N, pieceBytes);
        run(ops, bus, nodes);
        heal(bus, nodes, 1_000_000);
        const first = view(nodes[0]!);
        for (const node of nodes) expect(view(node)).toBe(first);
        // Every entry a node tracked and still holds is seen everywhere.
        const own = nodes.reduce((n, node) => n + node.presence.replica.localEntries('pid0').length + node.presence.replica.localEntries('pid1').length + node.presence.replica.localEntries('pid2').length, 0);
        expect(nodes[0]!.presence.size).toBe(own);
      }),
      { numRuns: 300 },
    );
  });

  it("drops a node's entries everywhere once it leaves, whatever of its messages are still on the way", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.nat({ max: N - 1 }), (ops, dead) => {
        const { bus, nodes, names } = cluster(N);
        run(ops, bus, nodes);
        const deadName = nodes[dead]!.name;
        const survivors = nodes.filter((n) => n.name !== deadName);
        // Its messages still in flight arrive after the others were told (the worst order).
        for (const node of survivors) node.sync.nodeLeft(deadName);
        bus.inbox.delete(deadName);
        names.splice(dead, 1);
        heal(bus, survivors, 1_000_000);
        const first = view(survivors[0]!);
        for (const node of survivors) {
          expect(view(node)).toBe(first);
          for (const topic of node.presence.replica.topics()) {
            for (const e of node.presence.replica.entries(topic)) expect(e.replica.startsWith(`${deadName}/`)).toBe(false);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a tenant that starts on a node catches up from the others, and sends leaves of a dead node as diffs', () => {
    const { bus, nodes } = cluster(2);
    const [a, b] = nodes as [Node, Node];
    b.sync.tick(0);
    a.presence.track(TOPIC, 'p', 'alice', { x: 1 });
    a.sync.tick(1);
    bus.drain();
    expect(b.presence.replica.list(TOPIC)).toHaveProperty('alice');
    expect(b.diffs.map((d) => JSON.parse((d.env as { payloadJson: string }).payloadJson).joins)).toEqual([expect.objectContaining({ alice: expect.anything() })]);
    // A third node starts late: its first tick asks for snapshots.
    const late = new TenantPresence('t1', newReplicaId('node-late'));
    const sync = new PresenceSync({ bus: bus.forNode('node-late'), members: new Members('node-late', ['node-0', 'node-1', 'node-late']), channel: () => 'presence', running: () => [late], publisher: { publishLocal: () => undefined }, batchMs: 10, log });
    void sync.start();
    sync.tick(5);
    bus.drain();
    bus.drain();
    expect(late.replica.list(TOPIC)).toHaveProperty('alice');
    b.sync.nodeLeft('node-0');
    expect(b.presence.replica.list(TOPIC)).toEqual({});
    expect(JSON.parse((b.diffs.at(-1)!.env as { payloadJson: string }).payloadJson).leaves).toHaveProperty('alice');
  });

  it('sends a large snapshot in bounded pieces, and counts it as merged only once every piece arrived', () => {
    const { bus, nodes } = cluster(2, 16 * 1024);
    const [a, b] = nodes as [Node, Node];
    /** Hands a node what waits for it, as received at `now`. */
    const deliverAt = (node: Node, now: number) => {
      const box = bus.inbox.get(node.name)!;
      while (box.length > 0) node.sync.receive(box.shift()!, now);
    };
    a.sync.tick(0);
    b.sync.tick(0);
    deliverAt(a, 0);
    deliverAt(b, 0);
    deliverAt(a, 0);
    deliverAt(b, 0);
    for (let i = 0; i < 3000; i++) a.presence.track(TOPIC, `p${i}`, `user-${i}`, { name: `user number ${i}` });
    // Its delta is lost: b learns of a's state from a snapshot, asked for when a's beacon shows what it missed.
    a.sync.tick(10);
    bus.drop(b.name, 0);
    a.sync.tick(5000);
    deliverAt(b, 5000);
    expect(bus.inbox.get(a.name)!.map((m) => JSON.parse(m).t)).toEqual(['want']);
    deliverAt(a, 5000);
    const pieces = bus.inbox.get(b.name)!;
    expect(pieces.length).toBeGreaterThan(3);
    for (const m of pieces) expect(JSON.parse(m)).toMatchObject({ t: 'snap', parts: pieces.length });
    for (const m of pieces) expect(m.length).toBeLessThanOrEqual(16 * 1024 + 300);
    // One piece is lost: b has the others' presences, and does not count a's number as merged.
    bus.drop(b.name, 1);
    deliverAt(b, 5000);
    expect(b.presence.size).toBeGreaterThan(0);
    expect(b.presence.size).toBeLessThan(3000);
    // a's next beacon still shows b it lacks a's number: it asks again and gets every piece.
    a.sync.tick(10_000);
    deliverAt(b, 10_000);
    expect(bus.inbox.get(a.name)!.map((m) => JSON.parse(m).t)).toEqual(['want']);
    deliverAt(a, 10_000);
    deliverAt(b, 10_000);
    expect(view(b)).toBe(view(a));
    expect(b.presence.size).toBe(3000);
  });

  it('refuses malformed messages whole', () => {
    expect(() => parseMessage('{"t":"delta","n":"a","tenant":"t","r":"a/1","seq":1,"s":{"v":2}}')).toThrow(TypeError);
    expect(() => parseMessage('{"t":"nope","n":"a","tenant":"t"}')).toThrow(TypeError);
    expect(() => parseMessage('[]')).toThrow(TypeError);
    expect(parseMessage('{"t":"want","n":"a","tenant":"t","to":null}')).toEqual({ t: 'want', n: 'a', tenant: 't', to: null });
  });
});
