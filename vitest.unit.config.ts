import { defineConfig } from 'vitest/config';

// Pure unit and component tests that run in Node: the embedder, db helpers, scripts and the
// bench's own helpers (the bench itself runs with `npm run bench`).
// Worker code is tested inside workerd (worker/vitest.config.ts); the full stack in test/e2e.
export default defineConfig({
  test: {
    include: [
      'embedder/test/**/*.test.ts',
      'db/**/*.test.ts',
      'scripts/**/*.test.ts',
      'bench/**/*.test.ts',
      'eval/**/*.test.ts',
    ],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
