/**
 * The embedder under test as a child process (`node --import tsx embedder/src/main.ts`), exactly
 * as `npm run embedder` and the local stack run it, configured through its environment. Also
 * reads its Prometheus metrics and its resident memory.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEmbedderConfig } from '../../embedder/src/config.js';
import { freePort, startProcess, waitForHttp } from '../../scripts/lib/procs.js';
import type { ManagedProcess } from '../../scripts/lib/procs.js';
import { parsePrometheus } from './prom.js';
import type { Sample } from './prom.js';
import { REPO_ROOT } from './paths.js';

export const BENCH_TOKEN = 'bench-service-token-0123456789abcdef';
const BENCH_KEYWORD_KEY = 'bench-keyword-index-key-0123456789abcdef';

export interface EmbedderSpec {
  /** EMBEDDING_MODEL_DIR: the folder holding the model folder. */
  modelDir: string;
  /** EMBEDDING_MODEL_NAME: the model folder. */
  modelName: string;
  dtype: 'fp32' | 'q8';
  /** EMBEDDER_MAX_BATCH_ITEMS (undefined: the embedder's default). */
  maxBatchItems?: number;
  /** EMBEDDER_MAX_BATCH_TOKENS (undefined: the embedder's default). */
  maxBatchTokens?: number;
  /** VECTOR_DATA_DIR for the embedded store. */
  dataDir: string;
  logFile: string;
  /** Extra node flags for the child, e.g. `--cpu-prof --cpu-prof-dir=…`. */
  nodeFlags?: string[];
  /** Extra environment (e.g. VECTOR_STORE=qdrant, QDRANT_URL for a Qdrant-backed soak). */
  env?: Record<string, string>;
}

export interface EmbedderProcess {
  url: string;
  pid: number;
  metrics(): Promise<Sample[]>;
  /** Resident set size of the embedder process, in bytes (from /proc). */
  rssBytes(): number;
  stop(): Promise<void>;
}

/**
 * Settings the bench's own embedders take from the caller's environment (for experiments, e.g. a
 * soak without the in-memory search index); `MALLOC_ARENA_MAX` defaults to the images' 2.
 */
export const PASSED_ENV = ['MALLOC_ARENA_MAX', 'VECTOR_MEMORY_INDEX_MAX_ROWS'] as const;

/** The environment the child gets: only what it needs, so the caller's shell cannot leak in. */
export function embedderEnv(spec: EmbedderSpec, port: number): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'production',
    EMBEDDER_HOST: '127.0.0.1',
    EMBEDDER_PORT: String(port),
    EMBEDDER_TOKEN: BENCH_TOKEN,
    KEYWORD_INDEX_KEY: BENCH_KEYWORD_KEY,
    EMBEDDING_MODEL_DIR: spec.modelDir,
    EMBEDDING_MODEL_NAME: spec.modelName,
    EMBEDDING_MODEL_VER: '1',
    EMBEDDING_DTYPE: spec.dtype,
    VECTOR_STORE: 'lancedb',
    VECTOR_DATA_DIR: spec.dataDir,
    // As the embedder's images and `npm run dev` run it (glibc heap arenas; bench/PERFORMANCE.md).
    MALLOC_ARENA_MAX: '2',
  };
  for (const key of PASSED_ENV) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, spec.env);
  if (spec.maxBatchItems !== undefined) env.EMBEDDER_MAX_BATCH_ITEMS = String(spec.maxBatchItems);
  if (spec.maxBatchTokens !== undefined)
    env.EMBEDDER_MAX_BATCH_TOKENS = String(spec.maxBatchTokens);
  return env;
}

/**
 * Fails loudly when this checkout's embedder does not read the batching variables (the bench
 * would otherwise measure the default batch cap and label it with another).
 */
export function assertBatchingConfigSupported(spec: EmbedderSpec): void {
  const config = parseEmbedderConfig(embedderEnv(spec, 0), REPO_ROOT) as unknown as {
    batching?: { maxBatchItems?: unknown; maxBatchTokens?: unknown };
  };
  const problems: string[] = [];
  if (spec.maxBatchItems !== undefined && config.batching?.maxBatchItems !== spec.maxBatchItems) {
    problems.push(`EMBEDDER_MAX_BATCH_ITEMS=${spec.maxBatchItems}`);
  }
  if (
    spec.maxBatchTokens !== undefined &&
    config.batching?.maxBatchTokens !== spec.maxBatchTokens
  ) {
    problems.push(`EMBEDDER_MAX_BATCH_TOKENS=${spec.maxBatchTokens}`);
  }
  if (problems.length > 0) {
    throw new Error(
      `The embedder's configuration does not honour ${problems.join(' and ')} (embedder/src/config.ts ` +
        'has no batching settings, or parses them differently): the batch-cap sweep cannot run.',
    );
  }
}

export async function startEmbedderProcess(spec: EmbedderSpec): Promise<EmbedderProcess> {
  assertBatchingConfigSupported(spec);
  mkdirSync(path.dirname(spec.logFile), { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: ManagedProcess = startProcess({
    name: `embedder(${spec.modelName},${spec.dtype},cap=${spec.maxBatchItems ?? 'default'})`,
    command: process.execPath,
    args: [...(spec.nodeFlags ?? []), '--import', 'tsx', path.join('embedder', 'src', 'main.ts')],
    cwd: REPO_ROOT,
    env: embedderEnv(spec, port),
    logFile: spec.logFile,
  });
  try {
    await waitForHttp(`${url}/readyz`, proc, 180_000);
  } catch (err) {
    await proc.stop().catch(() => undefined);
    throw new Error(
      `the embedder (${spec.modelName}, ${spec.dtype}) did not become ready: ${err instanceof Error ? err.message : String(err)}\n${proc.tail().slice(-15).join('\n')}`,
    );
  }
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error('the embedder process has no pid');
  return {
    url,
    pid,
    metrics: () => fetchMetrics(url),
    rssBytes: () => processRss(pid),
    stop: () => proc.stop('SIGTERM', 30_000),
  };
}

export async function fetchMetrics(url: string, token = BENCH_TOKEN): Promise<Sample[]> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.text();
  if (res.status !== 200) {
    throw new Error(
      `GET ${url}/metrics answered ${res.status}: the embedder must expose Prometheus metrics (heimdex_batch_size) so that the bench can check the batch cap`,
    );
  }
  return parsePrometheus(body);
}

/** VmRSS of a process, in bytes. */
export function processRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}
