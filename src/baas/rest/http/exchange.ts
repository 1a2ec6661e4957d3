/**
 * One REST request's statements written to Postgres at once (extended protocol, one Sync), read back as raw text
 * fields: node-pg's custom query interface (a "Submittable", as pg-cursor uses), so the whole transaction costs one
 * network round trip and the result rows reach the caller one by one as they arrive, never as one result object.
 *
 * Without BEGIN the statements form Postgres's implicit transaction: settings made with set_config(…, true) last
 * until the Sync, which commits (or rolls back after an error). With `begin`, the transaction stays open after the
 * Sync for the caller's COMMIT or ROLLBACK.
 *
 * Backpressure: `pause()` stops reading the connection's socket, so Postgres blocks writing its rows (ClientWrite)
 * instead of Node buffering them; `resume()` reads on.
 */
import type { ResultFields } from '../sql/result.js';

export interface ExchangeStatement {
  text: string;
  values: ReadonlyArray<string | null>;
}

export interface ExchangePlan {
  /** `BEGIN …` to open an explicit transaction first, or nothing for the implicit one. */
  begin?: string;
  /** Run before the main statement, rows ignored (the settings). */
  before: ExchangeStatement[];
  main: ExchangeStatement;
  /** Written after the main statement, before the Sync (e.g. `ROLLBACK` for tx=rollback). */
  after?: string;
}

/** The parts of node-pg's Connection a Submittable drives (pg/lib/connection.js). */
interface Connection {
  stream: { cork?: () => void; uncork?: () => void; pause(): void; resume(): void };
  parse(query: { text: string; name?: string }): void;
  bind(config: { values: ReadonlyArray<string | null> }): void;
  describe(msg: { type: 'P'; name: string }): void;
  execute(config: { rows: number }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

export class RequestExchange {
  private stage = 0;
  private readonly mainStage: number;
  private connection: Connection | null = null;
  private failure: Error | null = null;
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  private paused = false;
  /** Settles after Postgres's ReadyForQuery (committed, or the transaction left open with `begin`). */
  readonly done: Promise<void>;

  constructor(
    private readonly plan: ExchangePlan,
    /** Each row of the main statement; throwing stops delivering rows and fails `done`. */
    private readonly onRow: (fields: ResultFields) => void,
  ) {
    this.mainStage = (plan.begin ? 1 : 0) + plan.before.length;
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  pause(): void {
    if (this.paused || !this.connection) return;
    this.paused = true;
    this.connection.stream.pause();
  }

  resume(): void {
    if (!this.paused || !this.connection) return;
    this.paused = false;
    this.connection.stream.resume();
  }

  /** node-pg calls this when the client is ready; returning nothing means submitted. */
  submit(connection: Connection): void {
    this.connection = connection;
    const simple = (text: string) => {
      connection.parse({ text });
      connection.bind({ values: [] });
      connection.execute({ rows: 0 });
    };
    connection.stream.cork?.();
    try {
      if (this.plan.begin) simple(this.plan.begin);
      for (const s of this.plan.before) {
        connection.parse({ text: s.text });
        connection.bind({ values: s.values });
        connection.execute({ rows: 0 });
      }
      connection.parse({ text: this.plan.main.text });
      connection.bind({ values: this.plan.main.values });
      connection.execute({ rows: 0 });
      if (this.plan.after) simple(this.plan.after);
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
  }

  handleRowDescription(): void {}

  handleDataRow(msg: { fields: ResultFields }): void {
    if (this.stage !== this.mainStage || this.failure) return;
    try {
      this.onRow(msg.fields);
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    }
  }

  handleCommandComplete(): void {
    this.stage++;
  }

  handleEmptyQuery(): void {
    this.stage++;
  }

  handlePortalSuspended(): void {}

  /** A Postgres error (the rest up to the Sync is skipped; node-pg drops us as its active query) or a socket error. */
  handleError(err: Error): void {
    this.resume();
    this.settle.reject(this.failure ?? err);
  }

  handleReadyForQuery(): void {
    this.resume();
    if (this.failure) this.settle.reject(this.failure);
    else this.settle.resolve();
  }

  handleCopyInResponse(connection: Connection): void {
    connection.sendCopyFail('COPY is not allowed in a REST request');
  }

  handleCopyData(): void {}
}
