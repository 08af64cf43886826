/**
 * The reranker registry: short names the operator can put in RERANK_MODEL_NAME, with the facts
 * the embedder needs about each cross-encoder. Any other name is used as a Hub id or as a folder
 * name under RERANK_MODEL_DIR; its window then comes from the model (min of the tokenizer's
 * model_max_length and max_position_embeddings, as sentence-transformers' CrossEncoder takes it)
 * and its activation from its config.json (CrossEncoder's `sentence_transformers.activation_fn`,
 * else sigmoid for a one-label model, as CrossEncoder defaults).
 */

/**
 * What turns a logit into the model's score: `sigmoid` (MS MARCO cross-encoders and BAAI's
 * rerankers: a relevance in (0, 1)) or `identity` (the logit itself).
 */
export type RerankActivation = 'sigmoid' | 'identity';

export interface RerankerEntry {
  /** Hugging Face Hub id (ONNX weights laid out for transformers.js). */
  hubId: string;
  /** The model's window in tokens, special tokens included (query and text together). */
  maxTokens: number;
  activation: RerankActivation;
}

export const RERANKER_REGISTRY: Readonly<Record<string, RerankerEntry>> = Object.freeze({
  'ms-marco-minilm-l6-v2': {
    hubId: 'Xenova/ms-marco-MiniLM-L-6-v2',
    maxTokens: 512,
    activation: 'sigmoid',
  },
  'ms-marco-minilm-l12-v2': {
    hubId: 'Xenova/ms-marco-MiniLM-L-12-v2',
    maxTokens: 512,
    activation: 'sigmoid',
  },
  'ms-marco-tinybert-l2-v2': {
    hubId: 'Xenova/ms-marco-TinyBERT-L-2-v2',
    maxTokens: 512,
    activation: 'sigmoid',
  },
  // XLM-RoBERTa: <s> query </s></s> text </s>, no segment ids; 514 positions, a 512-token window.
  'bge-reranker-base': {
    hubId: 'Xenova/bge-reranker-base',
    maxTokens: 512,
    activation: 'sigmoid',
  },
});

/** What the loader knows about a reranker before loading it. */
export interface RerankerSpec {
  /** The served name (RERANK_MODEL_NAME). */
  name: string;
  /** The Hub id for registry models, else null (the name itself is the id or folder). */
  hubId: string | null;
  maxTokens: number | null;
  /** null: read from the model's config.json. */
  activation: RerankActivation | null;
}

export function rerankerSpec(name: string): RerankerSpec {
  const entry = Object.hasOwn(RERANKER_REGISTRY, name) ? RERANKER_REGISTRY[name] : undefined;
  if (!entry) return { name, hubId: null, maxTokens: null, activation: null };
  return { name, hubId: entry.hubId, maxTokens: entry.maxTokens, activation: entry.activation };
}
