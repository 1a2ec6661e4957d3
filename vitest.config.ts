import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start servers and databases; under load a logical slot creation can wait on other test
    // files' transactions in the shared cluster for several seconds.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // One file at a time: the files share one Postgres cluster, and creating a logical replication slot waits for
    // every transaction running in it, so files running side by side stall each other's servers.
    maxWorkers: 1,
    globalSetup: ['test/support/global-setup.ts'],
  },
});
