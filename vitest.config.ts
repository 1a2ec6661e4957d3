import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start servers and databases; under load a logical slot creation can wait on other test
    // files' transactions in the shared cluster for several seconds.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start real servers and databases; two cores cannot run many at once.
    maxWorkers: 2,
    globalSetup: ['test/support/global-setup.ts'],
  },
});
