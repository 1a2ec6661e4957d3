/**
 * The owner's side of Postgres Changes across nodes. A subscriber connected to another node is put on record and
 * served by this node's engine through a proxy (RemoteSubscriber): the engine matches, checks RLS (batched per
 * table and claims, as for local subscribers) and groups it like any other; what the engine hands it, the proxy
 * sends to the subscriber's node. A group with members on other nodes has its events sent once to each such node
 * (GroupRelay), which hands them to its members through its own fan-out.
 */
import type { Logger } from '../observability/logger.js';
import type { ChangesEngine, LiveSubscriber } from '../replication/changes-engine.js';
import type { Binding } from '../replication/changes/index.js';
import { ChangeQueue } from '../replication/changes-subscribers.js';
import type { LocalPublisher, OutgoingChange, PubSubMessage } from '../shared/messages.js';
import { wireChanges, type ToOwner, type ToSubscriberNode } from './changes-wire.js';
import type { TenantRuntime } from './tenant.js';

type Send = (node: string, msg: ToSubscriberNode) => void;

/** For each group key, the other nodes with members in it (counted). */
class GroupRelay {
  private readonly byKey = new Map<string, Map<string, number>>();

  constructor(
    private readonly self: string,
    private readonly send: Send,
  ) {}

  add(key: string, node: string): void {
    let nodes = this.byKey.get(key);
    if (!nodes) this.byKey.set(key, (nodes = new Map()));
    nodes.set(node, (nodes.get(node) ?? 0) + 1);
  }

  remove(key: string, node: string): void {
    const nodes = this.byKey.get(key);
    const n = nodes?.get(node);
    if (!nodes || n === undefined) return;
    if (n > 1) nodes.set(node, n - 1);
    else nodes.delete(node);
    if (nodes.size === 0) this.byKey.delete(key);
  }

  /** A group's events, once to each other node with members. */
  forward(msg: PubSubMessage): void {
    const nodes = this.byKey.get(msg.key);
    if (!nodes || msg.env.type !== 'changes') return;
    const { legacy, items } = msg.env;
    const wire = wireChanges(items);
    for (const node of nodes.keys()) this.send(node, { t: 'group', from: this.self, tenant: msg.tenantId, key: msg.key, topic: msg.subTopic, legacy, items: wire });
  }

  dropTenant(tenant: string): void {
    for (const key of [...this.byKey.keys()]) if (key.startsWith(`${tenant}|`)) this.byKey.delete(key);
  }
}

/** A subscriber on another node, as this node's engine sees it. */
class RemoteSubscriber implements LiveSubscriber {
  private readonly queued = new ChangeQueue();
  /** Where its commits start, as the engine put it on record (what a repeated request is answered with). */
  start: bigint | null = null;

  constructor(
    readonly node: string,
    private readonly self: string,
    private readonly tenant: string,
    readonly instance: string,
    readonly topic: string,
    readonly legacy: boolean,
    readonly bindings: readonly Binding[],
    public claims: Record<string, unknown>,
    private readonly send: Send,
    private readonly relay: GroupRelay,
  ) {}

  deliverMany(items: readonly OutgoingChange[]): void {
    this.queued.add(items);
  }

  flush(): void {
    const items = this.queued.take();
    if (items) this.send(this.node, { t: 'items', from: this.self, tenant: this.tenant, instance: this.instance, items: wireChanges(items) });
  }

  enterFanout(key: string): void {
    this.relay.add(key, this.node);
    this.send(this.node, { t: 'enter', from: this.self, tenant: this.tenant, instance: this.instance, key });
  }

  exitFanout(key: string): void {
    this.relay.remove(key, this.node);
    this.send(this.node, { t: 'exit', from: this.self, tenant: this.tenant, instance: this.instance, key });
  }

  notify(status: 'ok' | 'error', message: string): void {
    this.send(this.node, { t: 'notify', from: this.self, tenant: this.tenant, instance: this.instance, status, message });
  }
}

export interface ChangesOwnerOptions {
  self: string;
  send: Send;
  /** The tenant's runtime on this node, started if need be; null for an unknown tenant. */
  runTenant: (tenant: string) => TenantRuntime | null;
  /** The tenant's runtime if it runs here (never starts it). */
  peekTenant: (tenant: string) => TenantRuntime | null;
  /** The tenant's engine (created on first use, with this side's publisher). */
  engineOf: (runtime: TenantRuntime) => ChangesEngine;
  log: Logger;
}

export class ChangesOwnerSide {
  private readonly relay: GroupRelay;
  private readonly proxies = new Map<string, { proxy: RemoteSubscriber; engine: ChangesEngine }>();
  /** Requests about one subscriber run one after the other. */
  private readonly busy = new Map<string, Promise<void>>();

  constructor(private readonly opts: ChangesOwnerOptions) {
    this.relay = new GroupRelay(opts.self, opts.send);
  }

  /** What this node's engines publish to: this node's members, and the other nodes' through the relay. */
  publisher(local: LocalPublisher): LocalPublisher {
    return {
      publishLocal: (msg, exclude) => {
        local.publishLocal(msg, exclude);
        this.relay.forward(msg);
      },
    };
  }

  handle(msg: ToOwner): void {
    const prev = this.busy.get(msg.instance) ?? Promise.resolve();
    const next = prev.then(() => this.apply(msg)).catch((err: unknown) => this.opts.log.warn({ err, tenant: msg.tenant }, 'a remote postgres_changes request failed'));
    this.busy.set(msg.instance, next);
    void next.finally(() => this.busy.get(msg.instance) === next && this.busy.delete(msg.instance));
  }

  /** A subscriber node left the cluster: its subscribers are gone. */
  nodeLeft(node: string): void {
    for (const [instance, { proxy, engine }] of this.proxies) {
      if (proxy.node !== node) continue;
      this.proxies.delete(instance);
      void engine.unsubscribe(proxy);
    }
  }

  /** This node stopped running the tenant's streams: its proxies went with the engine. */
  stopped(tenant: string): void {
    this.relay.dropTenant(tenant);
    for (const [instance, { engine }] of this.proxies) if (engine.tenantId === tenant) this.proxies.delete(instance);
  }

  private async apply(msg: ToOwner): Promise<void> {
    const existing = this.proxies.get(msg.instance);
    if (msg.t === 'unsub') {
      if (existing?.proxy.node !== msg.from) {
        // Not served here yet (this node took the tenant over, the subscriber had not moved): held no longer.
        if (!msg.keep) await this.opts.peekTenant(msg.tenant)?.changes?.forgetPending(msg.instance);
        return;
      }
      this.proxies.delete(msg.instance);
      await existing.engine.unsubscribe(existing.proxy, { keepRecord: msg.keep });
      return;
    }
    if (msg.t === 'claims') {
      if (existing?.proxy.node === msg.from) await existing.engine.updateClaims(existing.proxy, msg.claims);
      return;
    }
    const reply = (problem: string | null, retry: string | null, start: bigint | null = null) =>
      this.opts.send(msg.from, { t: 'reply', from: this.opts.self, tenant: msg.tenant, id: msg.id, problem, retry, start: start === null ? null : start.toString() });
    const runtime = this.opts.runTenant(msg.tenant);
    if (runtime === null) return reply(null, 'unknown tenant');
    if (runtime.streamOwner === null || !runtime.streamOwner.valid()) return reply(null, 'this node does not run the tenant\'s streams');
    const engine = this.opts.engineOf(runtime);
    if (existing) {
      // Asked again by the same node of the same engine (its first answer was late): it is served already.
      if (existing.engine === engine && existing.proxy.node === msg.from) return reply(null, null, existing.proxy.start);
      this.proxies.delete(msg.instance);
      if (existing.engine === engine) await engine.unsubscribe(existing.proxy, { keepRecord: true });
    }
    const problem = await engine.validate(msg.bindings, msg.claims);
    if (problem) return reply(problem, null);
    const proxy = new RemoteSubscriber(msg.from, this.opts.self, msg.tenant, msg.instance, msg.topic, msg.legacy, msg.bindings, msg.claims, this.opts.send, this.relay);
    this.proxies.set(msg.instance, { proxy, engine });
    try {
      proxy.start = await engine.subscribe(proxy, { after: msg.after === null ? null : BigInt(msg.after) });
    } catch (err) {
      this.proxies.delete(msg.instance);
      return reply(null, (err as Error).message);
    }
    // A lease that lapsed meanwhile (a paused process): a newer owner serves it, this answer would be stale.
    if (!runtime.streamOwner?.valid()) return reply(null, 'this node does not run the tenant\'s streams');
    reply(null, null, proxy.start);
  }
}
