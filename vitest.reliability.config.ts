import { defineConfig } from 'vitest/config';

// The reliability and security suite (docs/RELIABILITY.md): the real stack under concurrency,
// crashes, outages, poison items, hostile input and load. The *.fast.test.ts files also run in
// `npm test` (through vitest.e2e.config.ts); the rest (embedder outage, load) only here.
// One file at a time: each starts its own stack and they share the machine's cores.
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 240_000,
  },
});
