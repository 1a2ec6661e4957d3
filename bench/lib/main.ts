/**
 * Runs a bench's main function with the safety net every bench needs: a watchdog that ends the process after
 * `hardLimitMs`, SIGINT/SIGTERM and uncaught errors handled, and `cleanup` (child processes, the embedded
 * Postgres, scratch directories) run on every way out, so nothing outlives the run.
 */
export function runBench(name: string, main: () => Promise<void>, o: { hardLimitMs: number; cleanup: () => Promise<void> }): void {
  const exit = (code: number) => void o.cleanup().catch(() => undefined).finally(() => process.exit(code));
  const watchdog = setTimeout(() => {
    console.error(`${name} bench: over its ${Math.round(o.hardLimitMs / 1000)} s hard limit, aborting`);
    exit(2);
  }, o.hardLimitMs);
  watchdog.unref();
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    process.once(event, (err: unknown) => {
      console.error(`${name} bench: ${event}`, err);
      exit(1);
    });
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      console.error(`${name} bench: ${sig}, cleaning up`);
      exit(130);
    });
  }
  main().then(
    () => exit(0),
    (err: unknown) => {
      console.error(err);
      exit(1);
    },
  );
}
