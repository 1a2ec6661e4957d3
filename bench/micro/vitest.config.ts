import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * `npm run bench:micro`: micro-benchmarks of the pure hot paths (`vitest bench`), without the test suite's global
 * setup (no Postgres). `npm test`'s `vitest run` never sees these files: its config includes test/**\/*.test.ts only.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: [],
    benchmark: { include: ['bench/micro/**/*.bench.ts'] },
  },
});
