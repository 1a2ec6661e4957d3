/**
 * The subscriber node's side of Postgres Changes across nodes: each channel's subscription is routed to the node
 * that owns its tenant. On the owner itself it goes to the local engine as on a single node; elsewhere it is put
 * on record by the owner (a `sub` request), and the owner's events for it arrive as messages that this node hands
 * to the channel (owed events) or to its group's members through the fan-out (group events).
 *
 * When the tenant's owner changes (announced by the new one), every subscription of the tenant here leaves its
 * groups and is subscribed again with the new owner under the same instance: the new owner continues it from its
 * record with every commit its predecessor did not confirm, so nothing is lost, and nothing is handed out twice
 * since a commit is confirmed only once handed out. Events are accepted only from the node this one routes the
 * subscription to, so a replaced owner's late messages are ignored.
 */
import type { Logger } from '../observability/logger.js';
import type { ChangesEngine, LiveSubscriber } from '../replication/changes-engine.js';
import type { LocalPublisher, OutgoingChange, PubSubMessage } from '../shared/messages.js';
import { unwireChanges, type ToOwner, type ToSubscriberNode } from './changes-wire.js';
import type { TenantRuntime } from './tenant.js';

/** How long a `sub` request waits for the owner's answer. */
const REPLY_TIMEOUT_MS = 5000;
/** How long a subscription waits for its tenant to have an owner. */
const OWNER_WAIT_MS = 15_000;
const RETRY_MS = 1000;

export interface ChangesRoutesOptions {
  self: string;
  send: (node: string, msg: ToOwner) => void;
  /** The node holding the tenant's lease now and its fencing number, or null. */
  holder: (tenant: string) => Promise<{ node: string; fence: number } | null>;
  engineOf: (runtime: TenantRuntime) => ChangesEngine;
  /** This node's pub/sub, for group events arriving from the owner. */
  local: LocalPublisher;
  log: Logger;
}

interface Route {
  readonly sub: LiveSubscriber;
  readonly runtime: TenantRuntime;
  /** The node this subscription is routed to (null while looking for one), and its fencing number then. */
  owner: string | null;
  fence: number | null;
  /** Bumped by every (re)attachment: answers to an older one are ignored. */
  gen: number;
  /** Group keys the channel joined through this route. */
  readonly keys: Set<string>;
  /** The commit position of the last event it got: a new owner continues it past that. */
  lastLsn: bigint | null;
  local: { engine: ChangesEngine; member: LiveSubscriber } | null;
  closed: boolean;
  /** Until the subscription is confirmed: settles subscribe() with the outcome of the latest attachment. */
  pending: ((outcome: { problem: string | null } | { error: unknown }) => void) | null;
}

export class ChangesRoutes {
  private readonly routes = new Map<string, Route>();
  /** Routes by the group keys they joined. */
  private readonly byKey = new Map<string, Set<Route>>();
  private readonly waiting = new Map<number, (reply: Extract<ToSubscriberNode, { t: 'reply' }> | null) => void>();
  private nextId = 1;

  constructor(private readonly opts: ChangesRoutesOptions) {}

  /**
   * Subscribes a channel; resolves with upstream's error text (final) or null. Throws when it may work later. When
   * the tenant's owner changes before the answer, the answer of the owner it moved to decides (the first one's is
   * stale): the channel is confirmed only once the owner that serves it has it on record.
   */
  async subscribe(runtime: TenantRuntime, sub: LiveSubscriber): Promise<string | null> {
    const route: Route = { sub, runtime, owner: null, fence: null, gen: 0, keys: new Set(), lastLsn: null, local: null, closed: false, pending: null };
    this.routes.set(sub.instance, route);
    const outcome = new Promise<{ problem: string | null } | { error: unknown }>((resolve) => (route.pending = resolve));
    this.attempt(route);
    const result = await outcome;
    if ('problem' in result && result.problem === null) return null;
    // Not served: whoever may have it on record (an owner that answered late, a newer one) lets it go.
    this.unsubscribe(sub, false);
    if ('error' in result) throw result.error;
    return result.problem;
  }

  unsubscribe(sub: LiveSubscriber, keepRecord: boolean): void {
    const route = this.routes.get(sub.instance);
    if (!route || route.sub !== sub) return;
    this.drop(route);
    const tenant = route.runtime.id;
    if (route.local) void route.local.engine.unsubscribe(route.local.member, { keepRecord });
    else if (route.owner !== null && route.owner !== this.opts.self) {
      this.opts.send(route.owner, { t: 'unsub', from: this.opts.self, tenant, instance: sub.instance, keep: keepRecord });
    }
    if (keepRecord) return;
    // The tenant may have a newer owner that holds changes for this subscriber (it had not moved yet): it lets go.
    void this.opts.holder(tenant).then(
      (holder) => {
        if (holder !== null && holder.node !== route.owner) this.opts.send(holder.node, { t: 'unsub', from: this.opts.self, tenant, instance: sub.instance, keep: false });
      },
      () => undefined,
    );
  }

  async updateClaims(sub: LiveSubscriber, claims: Record<string, unknown>): Promise<void> {
    const route = this.routes.get(sub.instance);
    if (!route) return;
    if (route.local) return route.local.engine.updateClaims(route.local.member, claims);
    if (route.owner !== null) this.opts.send(route.owner, { t: 'claims', from: this.opts.self, tenant: route.runtime.id, instance: sub.instance, claims });
  }

  /**
   * A node runs a tenant's streams now under `fence`: subscriptions routed elsewhere, or to an earlier ownership of the
   * same node (its engine started afresh, after a lapsed lease say), move to it.
   */
  ownerAnnounced(tenant: string, node: string, fence: number): void {
    for (const route of this.routes.values()) {
      if (route.runtime.id !== tenant || route.owner === null || route.closed) continue;
      if (route.owner !== node || (route.fence !== null && route.fence < fence)) this.reroute(route, node, fence);
    }
  }

  /** A message from an owner. */
  receive(msg: ToSubscriberNode): void {
    if (msg.t === 'reply') return this.waiting.get(msg.id)?.(msg);
    if (msg.t === 'group') {
      // For the members here that are routed to its sender.
      const members = [...(this.byKey.get(msg.key) ?? [])].filter((r) => r.owner === msg.from && r.local === null);
      if (members.length === 0) return;
      const items = unwireChanges(msg.items);
      for (const route of members) seen(route, items);
      this.opts.local.publishLocal({ tenantId: msg.tenant, key: msg.key, subTopic: msg.topic, env: { type: 'changes', legacy: msg.legacy, items } }, null);
      return;
    }
    const route = this.routes.get(msg.instance);
    if (!route || route.owner !== msg.from || route.local !== null) return;
    const { sub } = route;
    switch (msg.t) {
      case 'items': {
        const items = unwireChanges(msg.items);
        seen(route, items);
        sub.deliverMany(items);
        sub.flush();
        return;
      }
      case 'enter':
        this.enter(route, msg.key);
        return;
      case 'exit':
        this.exit(route, msg.key);
        return;
      case 'notify':
        sub.notify(msg.status, msg.message);
        return;
    }
  }

  private drop(route: Route): void {
    route.closed = true;
    route.gen++;
    const pending = route.pending;
    route.pending = null;
    pending?.({ error: new Error('the channel left before its subscription was confirmed') });
    if (this.routes.get(route.sub.instance) === route) this.routes.delete(route.sub.instance);
    this.leaveGroups(route);
  }

  /** A group event of the local engine (its publisher): the members here have got it. */
  observeLocalGroup(msg: PubSubMessage): void {
    if (msg.env.type !== 'changes') return;
    const routes = this.byKey.get(msg.key);
    if (routes) for (const route of routes) seen(route, msg.env.items);
  }

  private enter(route: Route, key: string): void {
    route.keys.add(key);
    let routes = this.byKey.get(key);
    if (!routes) this.byKey.set(key, (routes = new Set()));
    routes.add(route);
    route.sub.enterFanout(key);
  }

  private exit(route: Route, key: string): void {
    route.keys.delete(key);
    const routes = this.byKey.get(key);
    if (routes?.delete(route) && routes.size === 0) this.byKey.delete(key);
    route.sub.exitFanout(key);
  }

  private leaveGroups(route: Route): void {
    for (const key of [...route.keys]) this.exit(route, key);
  }

  /** Leaves the old owner's groups and subscribes again with `node`, retrying until it works or the channel closes. */
  private reroute(route: Route, node: string, fence: number): void {
    this.leaveGroups(route);
    // The old owner's engine has stopped (or is gone); the record stays for the new owner to continue.
    if (route.local) void route.local.engine.unsubscribe(route.local.member, { keepRecord: true });
    route.local = null;
    route.owner = node;
    route.fence = fence;
    this.attempt(route);
  }

  /**
   * Attaches the route to the tenant's owner; only the latest attachment's outcome counts. Before the channel is
   * confirmed it settles subscribe(); after, a failure is retried until it works or the channel closes.
   */
  private attempt(route: Route): void {
    const gen = ++route.gen;
    const latest = () => route.gen === gen && !route.closed;
    this.attach(route, gen).then(
      (problem) => {
        if (!latest()) return;
        const pending = route.pending;
        route.pending = null;
        if (pending) pending({ problem });
        else if (problem !== null) route.sub.notify('error', problem);
      },
      (err: unknown) => {
        if (!latest()) return;
        const pending = route.pending;
        route.pending = null;
        if (pending) return pending({ error: err });
        this.opts.log.debug({ err, tenant: route.runtime.id }, 'moving a postgres_changes subscription to the new owner failed; retrying');
        setTimeout(() => latest() && this.attempt(route), RETRY_MS).unref();
      },
    );
  }

  private async attach(route: Route, gen: number): Promise<string | null> {
    const holder = await this.ownerOf(route.runtime.id);
    if (route.gen !== gen || route.closed) return null;
    const owner = holder.node;
    route.owner = owner;
    route.fence = Math.max(route.fence ?? 0, holder.fence);
    const { sub, runtime } = route;
    if (owner === this.opts.self) {
      if (runtime.streamOwner === null || !runtime.streamOwner.valid()) throw new Error('this node does not run the tenant\'s streams yet');
      const engine = this.opts.engineOf(runtime);
      const problem = await engine.validate(sub.bindings, sub.claims);
      if (problem !== null || route.gen !== gen) return problem;
      const member = this.localMember(route);
      route.local = { engine, member };
      started(route, await engine.subscribe(member, { after: route.lastLsn }));
      return null;
    }
    const id = this.nextId++;
    const reply = await new Promise<Extract<ToSubscriberNode, { t: 'reply' }> | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), REPLY_TIMEOUT_MS);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.opts.send(owner, {
        t: 'sub',
        from: this.opts.self,
        tenant: runtime.id,
        id,
        instance: sub.instance,
        topic: sub.topic,
        legacy: sub.legacy,
        bindings: [...sub.bindings],
        claims: sub.claims,
        after: route.lastLsn === null ? null : route.lastLsn.toString(),
      });
    }).finally(() => this.waiting.delete(id));
    if (reply === null) throw new Error(`the tenant's owner (${owner}) did not answer`);
    if (reply.retry !== null) throw new Error(reply.retry);
    if (reply.problem === null && route.gen === gen) started(route, reply.start === null ? null : BigInt(reply.start));
    return reply.problem;
  }

  private async ownerOf(tenant: string): Promise<{ node: string; fence: number }> {
    const deadline = Date.now() + OWNER_WAIT_MS;
    for (;;) {
      const node = await this.opts.holder(tenant).catch(() => null);
      if (node !== null) return node;
      if (Date.now() > deadline) throw new Error('no node runs this tenant\'s replication yet');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The channel as the local engine sees it: group keys it joins are remembered, to leave them on a move. */
  private localMember(route: Route): LiveSubscriber {
    const { sub } = route;
    // Handed to the channel only when written: an engine that stops owning before its flush drops what it queued.
    let queued: OutgoingChange[] = [];
    return {
      get instance() {
        return sub.instance;
      },
      get topic() {
        return sub.topic;
      },
      get legacy() {
        return sub.legacy;
      },
      get bindings() {
        return sub.bindings;
      },
      get claims() {
        return sub.claims;
      },
      set claims(claims) {
        sub.claims = claims;
      },
      deliverMany: (items) => void queued.push(...items),
      flush: () => {
        if (queued.length === 0) return;
        const items = queued;
        queued = [];
        seen(route, items);
        sub.deliverMany(items);
        sub.flush();
      },
      notify: (status, message) => sub.notify(status, message),
      enterFanout: (key) => this.enter(route, key),
      exitFanout: (key) => this.exit(route, key),
    };
  }
}

/**
 * The owner put it on record owing it the commits from `start` on: nothing before is its own, so a move to another
 * owner before any event arrived says so (else the new owner would hand it everything it holds, older commits too).
 */
function started(route: Route, start: bigint | null): void {
  if (start === null || start === 0n) return;
  const before = start - 1n;
  if (route.lastLsn === null || before > route.lastLsn) route.lastLsn = before;
}

/** Remembers the newest commit among events a route's channel got. */
function seen(route: Route, items: readonly OutgoingChange[]): void {
  for (const item of items) if (item.commitLsn !== undefined && (route.lastLsn === null || item.commitLsn > route.lastLsn)) route.lastLsn = item.commitLsn;
}
