import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration suites start real servers and databases; two cores cannot run many at once.
    maxWorkers: 2,
    globalSetup: ['test/support/global-setup.ts'],
  },
});
