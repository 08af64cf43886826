/**
 * The model registry: short names the operator can put in EMBEDDING_MODEL_NAME, with the facts
 * the embedder needs about each model. Any other name is used as a Hub id or as a folder name
 * under EMBEDDING_MODEL_DIR; its dimension and window are then read from the model itself.
 */

export type Pooling = 'mean' | 'cls';

export interface RegistryEntry {
  /** Hugging Face Hub id (ONNX weights laid out for transformers.js). */
  hubId: string;
  dims: number;
  /** The model's window in tokens, special tokens included. */
  maxTokens: number;
  pooling: Pooling;
  /** Prepended to search queries and to ingested passages (e5 and bge were trained with these). */
  queryPrefix?: string;
  passagePrefix?: string;
}

export const MODEL_REGISTRY: Readonly<Record<string, RegistryEntry>> = Object.freeze({
  'minilm-l6-v2': { hubId: 'Xenova/all-MiniLM-L6-v2', dims: 384, maxTokens: 256, pooling: 'mean' },
  'minilm-l12-v2': {
    hubId: 'Xenova/all-MiniLM-L12-v2',
    dims: 384,
    maxTokens: 256,
    pooling: 'mean',
  },
  'mpnet-base': { hubId: 'Xenova/all-mpnet-base-v2', dims: 768, maxTokens: 384, pooling: 'mean' },
  multilingual: {
    hubId: 'Xenova/paraphrase-multilingual-MiniLM-L12-v2',
    dims: 384,
    maxTokens: 128,
    pooling: 'mean',
  },
  'bge-small-en-v1.5': {
    hubId: 'Xenova/bge-small-en-v1.5',
    dims: 384,
    maxTokens: 512,
    pooling: 'cls',
    // BAAI's instruction for retrieval queries; passages are embedded as they are.
    queryPrefix: 'Represent this sentence for searching relevant passages: ',
  },
  'e5-small-v2': {
    hubId: 'Xenova/e5-small-v2',
    dims: 384,
    maxTokens: 512,
    pooling: 'mean',
    queryPrefix: 'query: ',
    passagePrefix: 'passage: ',
  },
});

/** What the loader knows about a model before loading it. */
export interface ModelSpec {
  /** The served name (EMBEDDING_MODEL_NAME), as requests and payloads carry it. */
  name: string;
  /** The Hub id for registry models, else null (the name itself is the id or folder). */
  hubId: string | null;
  dims: number | null;
  maxTokens: number | null;
  pooling: Pooling;
  queryPrefix: string;
  passagePrefix: string;
}

export function modelSpec(name: string): ModelSpec {
  const entry = Object.hasOwn(MODEL_REGISTRY, name) ? MODEL_REGISTRY[name] : undefined;
  if (!entry) {
    return {
      name,
      hubId: null,
      dims: null,
      maxTokens: null,
      pooling: 'mean',
      queryPrefix: '',
      passagePrefix: '',
    };
  }
  return {
    name,
    hubId: entry.hubId,
    dims: entry.dims,
    maxTokens: entry.maxTokens,
    pooling: entry.pooling,
    queryPrefix: entry.queryPrefix ?? '',
    passagePrefix: entry.passagePrefix ?? '',
  };
}
