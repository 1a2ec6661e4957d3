import type pg from 'pg';

/** A pool client on loan, with its connection failures caught (see {@link guardLent}). */
export interface Loan {
  readonly client: pg.PoolClient;
  /** The connection error the client reported while lent, if any. */
  readonly failure: Error | undefined;
  /** Returns the client; one whose connection failed (or `err`) is discarded rather than reused. */
  release(err?: Error): void;
}

/**
 * Guards a client just taken from a pool. pg-pool takes its own 'error' listener off a client while it is lent,
 * so a connection the server ends between two of the borrower's queries (shutdown, failover, pg_terminate_backend)
 * would be an uncaught 'error' event and take the whole process down. Here the error is kept; the borrower's next
 * query fails instead, and the client is discarded on release.
 */
export function guardLent(client: pg.PoolClient): Loan {
  let failure: Error | undefined;
  const onError = (err: Error) => {
    failure ??= err;
  };
  client.on('error', onError);
  let released = false;
  return {
    client,
    get failure() {
      return failure;
    },
    release(err?: Error) {
      if (released) return;
      released = true;
      client.removeListener('error', onError);
      client.release(err ?? failure);
    },
  };
}

/** Runs fn with a guarded client of the pool and gives the client back. */
export async function withLentClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const loan = guardLent(await pool.connect());
  let failed: Error | undefined;
  try {
    return await fn(loan.client);
  } catch (err) {
    failed = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    // A failed borrower may leave a transaction open: such a client is not handed to anyone else.
    loan.release(failed);
  }
}

/**
 * An idle pool client's error without the client pg-pool attaches to it (`err.client`: connection settings,
 * socket, and the backend's cancel key), for logging. pg-pool has already dropped that client from the pool.
 */
export function withoutPoolClient(err: Error): Error {
  Reflect.deleteProperty(err, 'client');
  return err;
}
