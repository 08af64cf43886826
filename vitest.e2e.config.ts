import { defineConfig } from 'vitest/config';

// End-to-end tests: start the real processes (embedded PostgreSQL, the embedder with the real
// model, wrangler dev) and drive the public API. One file at a time: they share the 2 cores.
export default defineConfig({
  test: {
    // The fast subset of the reliability suite (test/reliability/*.fast.test.ts) runs here too.
    include: ['test/e2e/**/*.test.ts', 'test/reliability/*.fast.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 240_000,
  },
});
