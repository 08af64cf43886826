/**
 * Worker tests run inside workerd (the Workers Vitest integration), against real dependencies
 * started by the global setup in Node: embedded PostgreSQL through the WebSocket proxy (exactly as
 * the Neon driver talks to Neon) and the embedder with the real potion model.
 */
import path from 'node:path';
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { defineConfig } from 'vitest/config';
import { REPO_ROOT as root } from '../scripts/lib/paths.js';

export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: path.join(root, 'wrangler.toml') },
      miniflare: {
        bindings: {
          ENVIRONMENT: 'test',
          AUTH_PROVIDER: 'dev',
          DEV_JWT_SECRET: inject<string>('devJwtSecret'),
          DATABASE_URL: inject<string>('databaseUrl'),
          NEON_WS_PROXY: inject<string>('wsProxy'),
          EMBEDDER_URL: inject<string>('embedderUrl'),
          EMBEDDER_TOKEN: inject<string>('embedderToken'),
          EMBEDDING_MODEL_NAME: 'potion-base-2M',
          EMBEDDING_MODEL_VER: '1',
          OUTBOX_SWEEP_AGE_SECONDS: '0',
          QUEUE_RETRY_BASE_SECONDS: '1',
          LOG_LEVEL: 'error',
          TEXT_ENCRYPTION_KEY: inject<string>('textEncryptionKey'),
        },
      },
    })),
  ],
  test: {
    root,
    include: ['worker/test/**/*.test.ts'],
    globalSetup: [path.join(root, 'worker/test/global-setup.ts')],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
