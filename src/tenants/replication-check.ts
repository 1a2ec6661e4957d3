import type pg from 'pg';
import type { Logger } from '../observability/logger.js';
import { findReplicationProblem, type ReplicationProblem } from '../replication/prerequisites.js';

/**
 * Whether a tenant's database can do logical replication, checked at most once per interval and shared by whoever
 * asks (the database-broadcast child, Postgres Changes subscriptions). A problem is logged once when it appears and
 * once when it goes away, instead of as a failed connection attempt per retry.
 */
export class ReplicationCheck {
  /** The problem the last check found; null when it found none or nothing was checked yet. */
  problem: ReplicationProblem | null = null;
  private last: { at: number; result: Promise<ReplicationProblem | null> } | null = null;

  constructor(
    private readonly database: () => Promise<pg.Pool>,
    private readonly log: Logger,
    private readonly recheckMs: number,
  ) {}

  /** The current problem, checked anew when the last check is older than the interval. Rejects when the database is unreachable. */
  run(): Promise<ReplicationProblem | null> {
    const now = Date.now();
    if (this.last && now - this.last.at < this.recheckMs) return this.last.result;
    const result = (async () => this.note(await findReplicationProblem(await this.database())))();
    const entry = { at: now, result };
    this.last = entry;
    // A failed check (database down) is not remembered: the next caller tries again.
    result.catch(() => {
      if (this.last === entry) this.last = null;
    });
    return result;
  }

  private note(problem: ReplicationProblem | null): ReplicationProblem | null {
    const before = this.problem;
    this.problem = problem;
    if (problem && problem.message !== before?.message) {
      this.log.error({ error_code: problem.errorCode, setting: problem.setting, value: problem.actual, required: problem.required }, problem.message);
    } else if (!problem && before) {
      this.log.info({ setting: before.setting }, 'logical replication is available now');
    }
    return problem;
  }
}
