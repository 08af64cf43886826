/**
 * Runs in Node before the workerd test runner starts: real PostgreSQL (migrated), the WebSocket
 * proxy the Neon driver needs locally, and the embedder with the real model. Their addresses are
 * handed to the Worker as bindings (see worker/vitest.config.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { runMigrations } from '../../db/migrate.js';
import { startLocalPostgres } from '../../scripts/lib/postgres.js';
import { freePort, startProcess, waitForHttp } from '../../scripts/lib/procs.js';
import { REPO_ROOT } from '../../scripts/lib/stack.js';
import { startWsProxy } from '../../scripts/lib/wsproxy.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    wsProxy: string;
    embedderUrl: string;
    embedderToken: string;
    devJwtSecret: string;
  }
}

export default async function setup(project: TestProject) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heimdex-worker-test-'));
  fs.chmodSync(dataDir, 0o755);
  const pg = await startLocalPostgres({
    dataDir: path.join(dataDir, 'pg'),
    port: await freePort(),
  });
  await runMigrations(pg.url);
  const proxy = await startWsProxy();
  const embedderToken = crypto.randomBytes(24).toString('base64url');
  const port = await freePort();
  const embedder = startProcess({
    name: 'embedder',
    command: process.execPath,
    args: ['--import', 'tsx', 'embedder/src/main.ts'],
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      EMBEDDER_HOST: '127.0.0.1',
      EMBEDDER_PORT: String(port),
      EMBEDDER_TOKEN: embedderToken,
      EMBEDDING_MODEL_DIR: path.resolve(REPO_ROOT, '../shared/models'),
      EMBEDDING_MODEL_NAME: 'potion-base-2M',
      EMBEDDING_MODEL_VER: '1',
      VECTOR_DATA_DIR: path.join(dataDir, 'vectors'),
      QDRANT_URL: '',
      LOG_LEVEL: 'warn',
    },
    logFile: path.join(dataDir, 'embedder.log'),
  });
  const embedderUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${embedderUrl}/readyz`, embedder, 120_000);

  project.provide('databaseUrl', pg.url);
  project.provide('wsProxy', proxy.address);
  project.provide('embedderUrl', embedderUrl);
  project.provide('embedderToken', embedderToken);
  project.provide('devJwtSecret', crypto.randomBytes(32).toString('base64url'));

  return async () => {
    await embedder.stop();
    await proxy.close();
    await pg.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}
