import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/paths.js';

export { REPO_ROOT };
/** Generated bench models (gitignored). */
export const BENCH_MODELS_DIR = path.join(REPO_ROOT, '.data/bench-models');
/** The shared, real test models (potion-base-2M), beside the checkout. */
export const SHARED_MODELS_DIR = path.resolve(REPO_ROOT, '../shared/models');
export const POTION = 'potion-base-2M';
export const MINILM_SHAPED = 'minilm-l6-shaped';
export const RESULTS_DIR = path.join(REPO_ROOT, 'bench/results');
