import type { StoreConfig } from '../config.js';
import type { Logger } from '../log.js';
import { LanceDbStore } from './lancedb.js';
import { QdrantStore } from './qdrant.js';
import type { StoreHooks, VectorStore } from './types.js';

export type { VectorStore } from './types.js';

/** The configured vector store (not yet initialised: call `init(dim)`). */
export function createVectorStore(
  config: StoreConfig,
  logger?: Logger,
  hooks?: StoreHooks,
): VectorStore {
  if (config.kind === 'qdrant') {
    return new QdrantStore({
      url: config.url,
      apiKey: config.apiKey,
      collection: config.collection,
      keywordAvgLength: config.keywordAvgLength,
      ...(hooks ? { hooks } : {}),
    });
  }
  return new LanceDbStore({
    dataDir: config.dataDir,
    memoryIndexMaxRows: config.memoryIndexMaxRows,
    ...(logger ? { logger } : {}),
    ...(hooks ? { hooks } : {}),
  });
}
