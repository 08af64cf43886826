import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool, neonConfig } from '@neondatabase/serverless';
import { jwtVerify } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MIGRATIONS_DIR, runMigrations } from '../../db/migrate.js';
import { startLocalPostgres } from './postgres.js';
import type { LocalPostgres } from './postgres.js';
import { freePort } from './procs.js';
import { loadDevSecrets } from './secrets.js';
import { mintDevToken } from './token.js';
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

/** The public schema's tables, columns and indexes, and how many migrations drizzle recorded. */
async function schemaOf(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const columns = await client.query<{ table_name: string; column_name: string; type: string }>(
      `SELECT table_name, column_name, data_type AS type FROM information_schema.columns
        WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
    );
    const indexes = await client.query<{ indexdef: string }>(
      `SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname`,
    );
    const applied = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations',
    );
    return {
      tables: [...new Set(columns.rows.map((r) => r.table_name))],
      columns: columns.rows,
      indexes: indexes.rows.map((r) => r.indexdef),
      applied: applied.rows[0]?.n,
    };
  } finally {
    await client.end();
  }
}

describe('dev tokens', () => {
  const secret = 'y'.repeat(40);
  const verify = async (token: string) =>
    (await jwtVerify(token, new TextEncoder().encode(secret), { algorithms: ['HS256'] })).payload;

  it('carry the org at org_id by default, and at the AUTH_TENANT_CLAIM path when given', async () => {
    expect(await verify(await mintDevToken({ secret, org: 'acme' }))).toMatchObject({
      org_id: 'acme',
      sub: 'dev-user',
    });
    const nested = await verify(
      await mintDevToken({ secret, org: 'acme', tenantClaim: 'app_metadata.org_id' }),
    );
    expect(nested).toMatchObject({ app_metadata: { org_id: 'acme' } });
    expect(nested).not.toHaveProperty('org_id');
  });

  it('expire after ttlSeconds', async () => {
    const claims = await verify(await mintDevToken({ secret, org: 'acme', ttlSeconds: 120 }));
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(120);
  });
});

describe('embedded PostgreSQL + WebSocket proxy + Neon driver', () => {
  let db: LocalPostgres;
  let proxy: WsProxy;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-pg-'));
    fs.chmodSync(dir, 0o755);
    db = await startLocalPostgres({ dataDir: path.join(dir, 'pg'), port: await freePort() });
    proxy = await startWsProxy();
    neonConfig.webSocketConstructor =
      WebSocket as unknown as typeof neonConfig.webSocketConstructor;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await db?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('applies every migration once, and a second run changes nothing', async () => {
    const journal = JSON.parse(
      fs.readFileSync(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8'),
    ) as { entries: unknown[] };
    await runMigrations(db.url);
    const first = await schemaOf(db.url);
    expect(first.tables).toEqual(expect.arrayContaining(['batches', 'jobs', 'outbox']));
    expect(first.applied).toBe(journal.entries.length);

    await runMigrations(db.url);
    expect(await schemaOf(db.url)).toEqual(first);
  });

  it('lets the Neon serverless driver query through the proxy', async () => {
    neonConfig.wsProxy = (host, port) => `${proxy.address}?address=${host}:${port}`;
    const pool = new Pool({ connectionString: db.url });
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
