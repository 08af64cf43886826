/**
 * Runs in Node before the workerd test runner starts: real PostgreSQL (migrated), the WebSocket
 * proxy the Neon driver needs locally, and the embedder with the real model. Their addresses are
 * handed to the Worker as bindings (see worker/vitest.config.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import type { TestProject } from 'vitest/node';
import { runMigrations } from '../../db/migrate.js';
import { startLocalPostgres } from '../../scripts/lib/postgres.js';
import { freePort, startProcess, waitForHttp } from '../../scripts/lib/procs.js';
import { REPO_ROOT } from '../../scripts/lib/paths.js';
import { startWsProxy } from '../../scripts/lib/wsproxy.js';
import { rerankerEnv } from '../../test/helpers/paths.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    wsProxy: string;
    embedderUrl: string;
    embedderToken: string;
    devJwtSecret: string;
    jwks: JwksFixture;
    textEncryptionKey: string;
  }
}

/** A real JWKS endpoint for AUTH_PROVIDER=jwks tests: its keys, and how often it was fetched. */
export interface JwksFixture {
  /** Base URL; `${url}/jwks.json` serves the public keys (any query string). */
  url: string;
  issuer: string;
  audience: string;
  /** Private keys (JWK, with kid and alg) whose public halves the endpoint serves. */
  rsa: JWK;
  ec: JWK;
  /** A key of the same kind the endpoint does NOT serve (kid unknown to the JWKS). */
  stranger: JWK;
}

/**
 * Starts an HTTP server on 127.0.0.1 serving an RS256 and an ES256 public key as a JWKS, the way
 * an identity provider (e.g. Supabase) does. `GET /fetches?path=…` reports how many times a JWKS
 * path was fetched, so tests can observe the Worker's key caching.
 */
async function startJwksServer(): Promise<{ fixture: JwksFixture; close: () => Promise<void> }> {
  const privateJwk = async (alg: 'RS256' | 'ES256', kid: string): Promise<JWK> => {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  };
  const rsa = await privateJwk('RS256', 'rsa-1');
  const ec = await privateJwk('ES256', 'ec-1');
  const stranger = await privateJwk('RS256', 'rsa-unknown');
  const publicJwk = (k: JWK): JWK => {
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = k;
    return pub;
  };
  const body = JSON.stringify({ keys: [publicJwk(rsa), publicJwk(ec)] });
  const fetches = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/jwks.json') {
      fetches.set(url.search, (fetches.get(url.search) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else if (url.pathname === '/fetches') {
      const key = url.searchParams.get('search') ?? '';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ count: fetches.get(key) ?? 0 }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    fixture: {
      url: `http://127.0.0.1:${port}`,
      issuer: 'https://auth.heimdex.test/auth/v1',
      audience: 'authenticated',
      rsa,
      ec,
      stranger,
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
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
      KEYWORD_INDEX_KEY: crypto.randomBytes(32).toString('base64url'),
      EMBEDDING_MODEL_DIR: path.resolve(REPO_ROOT, '../shared/models'),
      EMBEDDING_MODEL_NAME: 'potion-base-2M',
      EMBEDDING_MODEL_VER: '1',
      // POST /v1/rerank: the ms-marco-MiniLM-shaped cross-encoder (built on first use).
      ...rerankerEnv(),
      VECTOR_DATA_DIR: path.join(dataDir, 'vectors'),
      QDRANT_URL: '',
      LOG_LEVEL: 'warn',
    },
    logFile: path.join(dataDir, 'embedder.log'),
  });
  const embedderUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${embedderUrl}/readyz`, embedder, 120_000);
  const jwks = await startJwksServer();

  project.provide('databaseUrl', pg.url);
  project.provide('wsProxy', proxy.address);
  project.provide('embedderUrl', embedderUrl);
  project.provide('embedderToken', embedderToken);
  project.provide('devJwtSecret', crypto.randomBytes(32).toString('base64url'));
  project.provide('jwks', jwks.fixture);
  project.provide('textEncryptionKey', crypto.randomBytes(32).toString('base64'));

  return async () => {
    await jwks.close();
    await embedder.stop();
    await proxy.close();
    await pg.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
}
