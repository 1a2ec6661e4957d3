import { randomBytes } from 'node:crypto';
import type { LocalPublisher, OutgoingChange } from '../shared/messages.js';
import { changesTopicKey } from '../shared/topic-keys.js';
import type { Binding } from './changes/index.js';
import { claimsText } from './changes-dispatch.js';
import { ChangeQueue, type ChangesSubscriber } from './changes-subscribers.js';

/**
 * What a live subscriber offers so that a group of identical subscribers can be served by one fan-out: it receives
 * what is published for the group's topic key while it is a member.
 */
export interface FanoutMember extends ChangesSubscriber {
  /** Starts (stops) receiving what is published for a group's topic key. */
  enterFanout(key: string): void;
  exitFanout(key: string): void;
}

let groupsMade = 0;
/** Group keys travel to other nodes (the owner relays a group's events): unique to this process. */
const PROCESS_TAG = randomBytes(6).toString('hex');

/**
 * Live subscribers whose events are always identical: the same topic, bindings and claims. The dispatcher
 * matches, checks and builds for the group once; its events are published once for the group's topic key, and the
 * channels' fan-out hands them to the members (one uWS publish per frame and serializer).
 */
export class SubscriberGroup<M extends FanoutMember> implements ChangesSubscriber {
  readonly instance: string;
  readonly topic: string;
  readonly legacy: boolean;
  readonly bindings: readonly Binding[];
  claims: Record<string, unknown>;
  /** Where the members receive the group's events. */
  readonly fanoutKey: string;
  private readonly members = new Set<M>();
  private readonly queued = new ChangeQueue();

  constructor(
    readonly key: string,
    first: M,
    private readonly tenantId: string,
    private readonly pubsub: LocalPublisher,
  ) {
    this.instance = `group-${PROCESS_TAG}-${++groupsMade}`;
    this.topic = first.topic;
    this.legacy = first.legacy;
    this.bindings = first.bindings;
    this.claims = first.claims;
    this.fanoutKey = changesTopicKey(tenantId, this.instance);
  }

  /** How many subscribers the group stands for. */
  get weight(): number {
    return this.members.size;
  }

  add(member: M): void {
    if (this.members.has(member)) return;
    this.members.add(member);
    member.enterFanout(this.fanoutKey);
  }

  remove(member: M): void {
    if (!this.members.delete(member)) return;
    member.exitFanout(this.fanoutKey);
  }

  deliverMany(items: readonly OutgoingChange[]): void {
    this.queued.add(items);
  }

  /** What was queued goes out as one message; group ids are this node's own, so it is published on this node. */
  flush(): void {
    const items = this.queued.take();
    if (!items) return;
    this.pubsub.publishLocal({ tenantId: this.tenantId, key: this.fanoutKey, subTopic: this.topic, env: { type: 'changes', legacy: this.legacy, items } }, null);
  }
}

/** The groups of one engine's live subscribers, keyed by what makes their events identical. */
export class SubscriberGroups<M extends FanoutMember> {
  private readonly byKey = new Map<string, SubscriberGroup<M>>();
  private readonly groupOf = new Map<M, SubscriberGroup<M>>();

  constructor(
    private readonly tenantId: string,
    private readonly pubsub: LocalPublisher,
  ) {}

  join(member: M): void {
    if (this.groupOf.has(member)) return;
    const key = groupKey(member);
    let group = this.byKey.get(key);
    if (!group) this.byKey.set(key, (group = new SubscriberGroup(key, member, this.tenantId, this.pubsub)));
    group.add(member);
    this.groupOf.set(member, group);
  }

  leave(member: M): void {
    const group = this.groupOf.get(member);
    if (!group) return;
    this.groupOf.delete(member);
    group.remove(member);
    if (group.weight === 0) this.byKey.delete(group.key);
  }

  has(member: M): boolean {
    return this.groupOf.has(member);
  }

  /** After the member's claims changed: it may belong elsewhere now. */
  rejoin(member: M): void {
    this.leave(member);
    this.join(member);
  }

  /** The groups, as the dispatcher's subscribers. */
  list(): SubscriberGroup<M>[] {
    return [...this.byKey.values()];
  }

  get count(): number {
    return this.byKey.size;
  }
}

function groupKey(member: FanoutMember): string {
  return `${member.topic}\u0001${member.legacy ? 1 : 0}\u0001${JSON.stringify(member.bindings)}\u0001${claimsText(member.claims)}`;
}
