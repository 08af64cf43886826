import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/paths.js';
import type { EmbedderConfig, ModelConfig } from '../src/config.js';
import { Batcher } from '../src/core/batcher.js';
import type { BatchLimits } from '../src/core/batcher.js';
import { EmbeddingModel, emptyEmbedding, toOutcome } from '../src/core/model.js';
import type { EmbedKind, EmbedOutcome } from '../src/core/model.js';

export { REPO_ROOT as repoRoot };

export const DOG = 'A large furry dog is running in the park';

/** The payload keys of a stored point, sorted (what the Worker may read back). */
export const PAYLOAD_KEYS = [
  'asset_id',
  'chunk_count',
  'chunk_end',
  'chunk_index',
  'chunk_start',
  'embedded_at',
  'job_id',
  'modality',
  'model',
  'model_ver',
  'org_id',
  'segment_id',
  'segment_point_id',
  'seq',
  'text_len',
  'token_count',
  'truncated',
  'truncated_len',
];

/** One item of a POST /internal/embed body for `org`: DOG as asset a1, segment s1, with `over`. */
export function embedItem(org: string, over: Record<string, unknown> = {}) {
  return {
    job_id: randomUUID(),
    seq: 1,
    org_id: org,
    asset_id: 'a1',
    segment_id: 's1',
    text: DOG,
    model: POTION,
    model_ver: '1',
    ...over,
  };
}

/** A POST /internal/search body for `org`: DOG as the query, with `over`. */
export function searchBody(org: string, over: Record<string, unknown> = {}) {
  return { org_id: org, query_text: DOG, ...over };
}

/** POST /internal/search through `call` (a `client`): searchBody(org, over). */
export function postSearch(call: Client, org: string, over: Record<string, unknown> = {}) {
  return call('POST', '/internal/search', searchBody(org, over));
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `everyMs` until it returns true (or fails the test after `timeoutMs`). */
export async function until(
  probe: () => Promise<boolean>,
  what: string,
  timeoutMs = 5000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}
/** The shared models folder: CI clones the repository with `shared/` beside it. */
export const modelDir = path.resolve(REPO_ROOT, '../shared/models');
export const POTION = 'potion-base-2M';
/** The model the tests serve: potion-base-2M from the shared models folder, fp32 on the CPU. */
export const POTION_CONFIG: ModelConfig = {
  name: POTION,
  version: '1',
  dir: modelDir,
  device: 'cpu',
  dtype: 'fp32',
};
export const loadPotion = () => EmbeddingModel.load(POTION_CONFIG);
export const TOKEN = 'test-service-token-0123456789abcdef';
/** The keyword index's key in tests (KEYWORD_INDEX_KEY). */
export const KEYWORD_KEY = 'test-keyword-index-key-0123456789abcdef';

/** The batch limits of `testConfig` (and of the service's defaults). */
export const TEST_BATCH_LIMITS: BatchLimits = { maxBatchTokens: 16_384, maxBatchItems: 64 };

/**
 * Embeds `texts` on the path the service takes (core/service.ts): tokenize, refuse a text without
 * tokens (`empty_embedding`), forward passes through a Batcher over the model, normalise.
 * Outcomes are in input order.
 */
export async function embedTexts(
  model: EmbeddingModel,
  texts: readonly string[],
  kind: EmbedKind,
  limits: BatchLimits = TEST_BATCH_LIMITS,
): Promise<EmbedOutcome[]> {
  const encodings = texts.map((text) => model.tokenize(text, kind));
  const outcomes = encodings.map((e) => emptyEmbedding(e.stats));
  const live = encodings.flatMap((e, i) => (e.stats.token_count > 0 ? [i] : []));
  const batcher = new Batcher(model, limits);
  try {
    const { vectors } = await batcher.submit(
      live.map((i) => encodings[i]!),
      kind,
    );
    live.forEach((i, row) => {
      outcomes[i] = toOutcome(vectors[row], encodings[i]!.stats);
    });
  } finally {
    await batcher.close();
  }
  return outcomes;
}

export function testConfig(
  overrides: Partial<EmbedderConfig> & { dataDir: string },
): EmbedderConfig {
  const { dataDir, ...rest } = overrides;
  return {
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    keywordIndexKey: KEYWORD_KEY,
    model: { ...POTION_CONFIG },
    extraModels: [],
    batching: { ...TEST_BATCH_LIMITS, maxQueuedItems: 4096 },
    faultsFile: null,
    store: { kind: 'lancedb', dataDir, vectorSize: null, memoryIndexMaxRows: 50_000 },
    validateOnStartup: true,
    logLevel: 'info',
    ...rest,
  };
}

export async function tempDir(
  prefix: string,
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `heimdex-${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Every file's bytes under `dir`, recursively. */
export async function readTree(dir: string): Promise<{ file: string; bytes: Buffer }[]> {
  const out: { file: string; bytes: Buffer }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.push({ file, bytes: await readFile(file) });
  }
  return out;
}

export { cosine } from '../src/core/vector.js';

/** A seeded pseudo-random generator of numbers in [-1, 1) (a fixed LCG: the same seed, the same data). */
export function seededRand(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return max;
}

/** Response bodies in tests are read field by field; assertions check their shape. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export type Client = ReturnType<typeof client>;

/** A small JSON client for the embedder's HTTP API. */
export function client(baseUrl: string, token: string | null = TOKEN) {
  return async function call(
    method: string,
    route: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Headers; json: Json }> {
    const res = await fetch(baseUrl + route, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...headers,
      },
      ...(body === undefined
        ? {}
        : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : null };
  };
}
