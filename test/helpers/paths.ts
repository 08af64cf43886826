import fs from 'node:fs';
import path from 'node:path';
import {
  CROSS_ENCODER_SHAPED,
  ensureCrossEncoderShaped,
} from '../../bench/lib/cross-encoder-model.js';
import { BENCH_MODELS_DIR } from '../../bench/lib/paths.js';
import { modelCacheDir } from '../../scripts/models/cache.js';
import { REPO_ROOT } from '../../scripts/lib/paths.js';

/** The shared test models folder beside the checkout (CI clones with shared/ next to it). */
export const SHARED_MODELS = path.resolve(REPO_ROOT, '../shared/models');
/** The small, fast model for tests where search quality does not matter. */
export const TEST_MODEL = 'potion-base-2M';

/**
 * The real default model (all-MiniLM-L6-v2, registry name minilm-l6-v2), as `npm run models`
 * lays it out in the model cache (HEIMDEX_MODEL_CACHE, default `.cache/models`): for tests whose
 * assertions are about search quality.
 */
export const REAL_MODEL = 'minilm-l6-v2';
export const REAL_MODEL_DIR = modelCacheDir();

export function assertTestModel(): void {
  const p = path.join(SHARED_MODELS, TEST_MODEL, 'onnx', 'model.onnx');
  if (!fs.existsSync(p)) {
    throw new Error(`the test model is missing: expected ${p} (shared/ must sit beside the repo)`);
  }
}

export function assertRealModel(): void {
  const p = path.join(REAL_MODEL_DIR, 'Xenova/all-MiniLM-L6-v2', 'onnx', 'model.onnx');
  if (!fs.existsSync(p)) {
    throw new Error(`the real model is missing: expected ${p}; run \`npm run models\` first`);
  }
}

/** Embedder environment (for testEnv's `extra`) that serves the real model from the cache. */
export function realModelEnv(): NodeJS.ProcessEnv {
  return { EMBEDDING_MODEL_DIR: REAL_MODEL_DIR, EMBEDDING_MODEL_NAME: REAL_MODEL };
}

/** The reranker test stacks serve: the ms-marco-MiniLM-shaped cross-encoder (random weights). */
export const TEST_RERANKER = CROSS_ENCODER_SHAPED;

/**
 * Embedder environment (for testEnv's `extra`, or a process's env) that serves the shaped
 * cross-encoder at POST /v1/rerank; builds it first when missing (about 10 s, once; it needs the
 * model cache's tokenizer: `npm run models`).
 */
export function rerankerEnv(): NodeJS.ProcessEnv {
  ensureCrossEncoderShaped();
  return { RERANK_MODEL_NAME: TEST_RERANKER, RERANK_MODEL_DIR: BENCH_MODELS_DIR };
}
