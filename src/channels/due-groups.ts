/** Items due at one time, on one timer. */
export interface DueGroup<T> {
  readonly dueMs: number;
  readonly members: Set<T>;
  readonly timer: NodeJS.Timeout;
}

/**
 * Work due at a time, for many items on few timers: items due at the same millisecond share one timer. A timer per
 * item (a Timeout, its closure and context: ~220 B) adds up over thousands of idle channels, and their token checks
 * fall due together: every channel joined with the same token (the anon key, one user's token on several channels)
 * is due at the same moment.
 */
export class DueGroups<T> {
  private readonly groups = new Map<number, DueGroup<T>>();

  constructor(private readonly fire: (item: T) => void) {}

  /** Schedules `item` at `dueMs` (epoch ms); the group returned is what {@link cancel} takes. */
  add(dueMs: number, item: T): DueGroup<T> {
    let group = this.groups.get(dueMs);
    if (!group) {
      const members = new Set<T>();
      const timer = setTimeout(() => {
        this.groups.delete(dueMs);
        for (const member of members) this.fire(member);
      }, Math.max(0, dueMs - Date.now()));
      timer.unref();
      group = { dueMs, members, timer };
      this.groups.set(dueMs, group);
    }
    group.members.add(item);
    return group;
  }

  /** Unschedules `item`; the last one out stops the group's timer. Harmless once the group fired. */
  cancel(group: DueGroup<T>, item: T): void {
    if (!group.members.delete(item) || group.members.size > 0 || this.groups.get(group.dueMs) !== group) return;
    clearTimeout(group.timer);
    this.groups.delete(group.dueMs);
  }

  /** Distinct due times scheduled (timers alive). */
  get size(): number {
    return this.groups.size;
  }
}
