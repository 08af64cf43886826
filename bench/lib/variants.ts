/**
 * The models the bench runs: the real all-MiniLM-L6-v2 (fp32, int8) from the model cache
 * (`npm run models`) and the real potion model.
 */
import { MINILM_L6_SHAPE, encoderMatmulParams, forwardFlops } from './bert.js';
import { modelCacheDir } from '../../scripts/models/cache.js';
import { POTION, SHARED_MODELS_DIR } from './paths.js';

/** The registry name the model cache serves all-MiniLM-L6-v2 under. */
export const MINILM = 'minilm-l6-v2';

export type VariantId = 'minilm-fp32' | 'minilm-q8' | 'potion-fp32';
export const VARIANT_IDS: readonly VariantId[] = ['minilm-fp32', 'minilm-q8', 'potion-fp32'];

export interface Variant {
  id: VariantId;
  label: string;
  modelDir: string;
  modelName: string;
  dtype: 'fp32' | 'q8';
  /** Tokens the tokenizer adds to every text ([CLS] + [SEP] for BERT, none for Model2Vec). */
  specialTokens: number;
  /** Encoder MatMul FLOPs of one text of `tokens` tokens (special tokens included), or null. */
  flopsPerText: ((tokens: number) => number) | null;
  /** Parameters of the encoder MatMuls (for the report). */
  matmulParams: number | null;
}

export function variant(id: VariantId): Variant {
  switch (id) {
    case 'minilm-fp32':
    case 'minilm-q8':
      return {
        id,
        label: `all-MiniLM-L6-v2 ${id === 'minilm-fp32' ? 'fp32' : 'int8'}`,
        modelDir: modelCacheDir(),
        modelName: MINILM,
        dtype: id === 'minilm-fp32' ? 'fp32' : 'q8',
        specialTokens: 2,
        flopsPerText: (tokens) => forwardFlops(MINILM_L6_SHAPE, 1, tokens),
        matmulParams: encoderMatmulParams(MINILM_L6_SHAPE),
      };
    case 'potion-fp32':
      return {
        id,
        label: 'potion-base-2M fp32',
        modelDir: SHARED_MODELS_DIR,
        modelName: POTION,
        dtype: 'fp32',
        specialTokens: 0,
        // A static embedding table: a Gather and a scale, no MatMul.
        flopsPerText: null,
        matmulParams: null,
      };
  }
}
