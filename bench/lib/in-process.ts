/**
 * The embedder's own embed path in this process, as the keyword and chunking sections measure it:
 * the model pool (one model, fp32, the queue consumer's call size as the batch cap), a LanceDB
 * store in the run's folder, and EmbedderService over them with a keyword analyzer of the
 * caller's choice.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { QueueLimiter } from '../../embedder/src/core/batcher.js';
import type { TermAnalyzer } from '../../embedder/src/core/keywords.js';
import { Metrics } from '../../embedder/src/core/metrics.js';
import type { EmbeddingModel } from '../../embedder/src/core/model.js';
import { ModelPool } from '../../embedder/src/core/models.js';
import { EmbedderService } from '../../embedder/src/core/service.js';
import { createLogger } from '../../embedder/src/log.js';
import { LanceDbStore } from '../../embedder/src/store/lancedb.js';

/** Items per embed call: the queue consumer's calls (EMBEDDER_CALL_ITEMS). */
export const CALL_ITEMS = 32;

export interface InProcessEmbedder {
  model: EmbeddingModel;
  /** A service over the shared model and store, analysing terms with `keywords`. */
  service(keywords: TermAnalyzer): EmbedderService;
  close(): Promise<void>;
}

export async function startInProcessEmbedder(o: {
  workDir: string;
  /** The store's folder under workDir. */
  storeDir: string;
  modelDir: string;
  modelName: string;
}): Promise<InProcessEmbedder> {
  const metrics = new Metrics();
  const admission = new QueueLimiter(1_000_000);
  const models = new ModelPool({
    model: {
      name: o.modelName,
      version: '1',
      dir: o.modelDir,
      device: 'cpu',
      dtype: 'fp32',
      cpuSpinning: false,
    },
    extraModels: [],
    batching: { maxBatchTokens: 16_384, maxBatchItems: CALL_ITEMS, maxQueuedItems: 1_000_000 },
    metrics,
    logger: createLogger('silent'),
  });
  const dataDir = path.join(o.workDir, o.storeDir);
  mkdirSync(dataDir, { recursive: true });
  const store = new LanceDbStore({ dataDir });
  const close = async () => {
    await store.close();
    await models.close();
  };
  try {
    const { model } = await models.start();
    models.setStoreDimension((await store.init(model.dim)).dim);
    return {
      model,
      service: (keywords) => new EmbedderService({ models, admission, store, keywords, metrics }),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
