import type { Binding } from './changes/index.js';
import { claimsText } from './changes-dispatch.js';
import { ChangeQueue, type ChangesSubscriber, type OutgoingChange } from './changes-subscribers.js';

/**
 * What a live subscriber offers so that a group of identical subscribers can be served by one native fan-out
 * (implemented by the channel layer on a uWS topic).
 */
export interface FanoutMember extends ChangesSubscriber {
  /** Members with the same serializer get byte-identical frames. */
  readonly serializer: string;
  /** Starts (stops) receiving what is published to a fan-out topic. */
  enterFanout(topic: string): void;
  exitFanout(topic: string): void;
  /** Encodes the items once for this member's serializer and publishes them to every socket in the topic. */
  publish(topic: string, items: readonly OutgoingChange[]): void;
  /**
   * False when the member's socket has fallen too far behind: it has then been told, and is leaving (its channel
   * unsubscribes), so it gets nothing more instead of a silent subset.
   */
  keepsUp(): boolean;
}

let groupsMade = 0;

/**
 * Live subscribers whose events are always identical: the same topic, bindings and claims. The dispatcher
 * matches, checks and builds for the group once; its frames reach the members through one uWS publish per frame
 * and serializer instead of one send per socket. A member alone with its serializer is written to directly.
 */
export class SubscriberGroup<M extends FanoutMember> implements ChangesSubscriber {
  readonly instance: string;
  readonly topic: string;
  readonly legacy: boolean;
  readonly bindings: readonly Binding[];
  claims: Record<string, unknown>;
  private readonly bySerializer = new Map<string, Set<M>>();
  private readonly queued = new ChangeQueue();
  private members = 0;

  constructor(
    readonly key: string,
    first: M,
  ) {
    this.instance = `group-${++groupsMade}`;
    this.topic = first.topic;
    this.legacy = first.legacy;
    this.bindings = first.bindings;
    this.claims = first.claims;
  }

  /** How many subscribers the group stands for. */
  get weight(): number {
    return this.members;
  }

  add(member: M): void {
    let set = this.bySerializer.get(member.serializer);
    if (!set) this.bySerializer.set(member.serializer, (set = new Set()));
    if (set.has(member)) return;
    set.add(member);
    this.members += 1;
    member.enterFanout(this.fanoutTopic(member.serializer));
  }

  remove(member: M): void {
    const set = this.bySerializer.get(member.serializer);
    if (!set?.delete(member)) return;
    if (set.size === 0) this.bySerializer.delete(member.serializer);
    this.members -= 1;
    member.exitFanout(this.fanoutTopic(member.serializer));
  }

  deliverMany(items: readonly OutgoingChange[]): void {
    this.queued.add(items);
  }

  flush(): void {
    const items = this.queued.take();
    if (!items) return;
    for (const [serializer, set] of [...this.bySerializer]) {
      // uWS publishes without a word to a socket over its limit: one that fell behind is told and removed first.
      const members = [...set].filter((m) => m.keepsUp());
      if (members.length === 0) continue;
      if (members.length === 1) {
        members[0]!.deliverMany(items);
        members[0]!.flush();
      } else {
        members[0]!.publish(this.fanoutTopic(serializer), items);
      }
    }
  }

  private fanoutTopic(serializer: string): string {
    return `pgc|${this.instance}|${serializer}`;
  }
}

/** The groups of one engine's live subscribers, keyed by what makes their events identical. */
export class SubscriberGroups<M extends FanoutMember> {
  private readonly byKey = new Map<string, SubscriberGroup<M>>();
  private readonly groupOf = new Map<M, SubscriberGroup<M>>();

  join(member: M): void {
    if (this.groupOf.has(member)) return;
    const key = groupKey(member);
    let group = this.byKey.get(key);
    if (!group) this.byKey.set(key, (group = new SubscriberGroup(key, member)));
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
