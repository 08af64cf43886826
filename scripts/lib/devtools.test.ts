import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool, neonConfig } from '@neondatabase/serverless';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { runMigrations } from '../../db/migrate.js';
import { startLocalPostgres } from './postgres.js';
import type { LocalPostgres } from './postgres.js';
import { freePort } from './procs.js';
import { loadDevSecrets } from './secrets.js';
import { startWsProxy } from './wsproxy.js';
import type { WsProxy } from './wsproxy.js';

describe('dev secrets', () => {
  it('are generated once, persisted with mode 0600, and overridable by env', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-secrets-'));
    const a = loadDevSecrets(dir, {});
    const b = loadDevSecrets(dir, {});
    expect(b).toEqual(a);
    expect(a.devJwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(fs.statSync(path.join(dir, 'dev-secrets.json')).mode & 0o777).toBe(0o600);
    expect(loadDevSecrets(dir, { DEV_JWT_SECRET: 'x'.repeat(40) }).devJwtSecret).toBe(
      'x'.repeat(40),
    );
    fs.rmSync(dir, { recursive: true });
  });
});

describe('embedded PostgreSQL + WebSocket proxy + Neon driver', () => {
  let pg: LocalPostgres;
  let proxy: WsProxy;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-pg-'));
    fs.chmodSync(dir, 0o755);
    pg = await startLocalPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort() });
    proxy = await startWsProxy();
    neonConfig.webSocketConstructor =
      WebSocket as unknown as typeof neonConfig.webSocketConstructor;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await pg?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('applies migrations idempotently', async () => {
    await runMigrations(pg.url);
    await runMigrations(pg.url);
  });

  it('lets the Neon serverless driver query through the proxy', async () => {
    neonConfig.wsProxy = (host, port) => `${proxy.address}?address=${host}:${port}`;
    const pool = new Pool({ connectionString: pg.url });
    try {
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM jobs');
      expect(rows[0]).toEqual({ n: 0 });
    } finally {
      await pool.end();
    }
  });

  it('refuses to proxy to a non-loopback address', async () => {
    const ws = new WebSocket(`ws://${proxy.address}?address=10.0.0.1:5432`);
    const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    expect(code).toBe(1008);
  });
});
