/**
 * The embedder's own embed path in this process, as the keyword and chunking sections measure it:
 * the model pool (one model, fp32, the queue consumer's call size as the batch cap), a LanceDB
 * store in the run's folder, and EmbedderService over them with a keyword analyzer of the
 * caller's choice.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { QueueLimiter } from '../../embedder/src/core/batcher.js';
import type { TermAnalyzer } from '../../embedder/src/core/keywords.js';
import { Metrics } from '../../embedder/src/core/metrics.js';
import type { EmbeddingModel } from '../../embedder/src/core/model.js';
import { ModelPool } from '../../embedder/src/core/models.js';
import { EmbedderService } from '../../embedder/src/core/service.js';
import type { EmbedJob } from '../../embedder/src/core/service.js';
import type { Chunking } from '../../contract/internal.js';
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

/**
 * Embeds `texts` as new jobs of one asset (seq from `firstSeq` up) in CALL_ITEMS-item calls, the
 * queue consumer's shape; returns texts per second.
 */
export async function embedRate(
  service: EmbedderService,
  texts: readonly string[],
  job: { orgId: string; assetId: string; model: string; firstSeq: number; chunking?: Chunking },
): Promise<number> {
  const jobs: EmbedJob[] = texts.map((text, i) => ({
    jobId: randomUUID(),
    seq: job.firstSeq + i,
    orgId: job.orgId,
    assetId: job.assetId,
    segmentId: `s${i}`,
    text,
    model: job.model,
    modelVer: '1',
    ...(job.chunking === undefined ? {} : { chunking: job.chunking }),
  }));
  const t0 = performance.now();
  for (let i = 0; i < jobs.length; i += CALL_ITEMS)
    await service.embed(jobs.slice(i, i + CALL_ITEMS));
  return jobs.length / ((performance.now() - t0) / 1000);
}

/**
 * The best rate of each of two variants: one uncounted warm-up run of the second, then `rounds`
 * rounds alternating which goes first (so neither always runs on a warmer or busier machine).
 */
export async function bestOfAlternating<N extends string>(
  names: readonly [N, N],
  rounds: number,
  rate: (name: N) => Promise<number>,
): Promise<Record<N, number>> {
  const [a, b] = names;
  await rate(b);
  const best = { [a]: 0, [b]: 0 } as Record<N, number>;
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? [a, b] : [b, a]) {
      best[name] = Math.max(best[name], await rate(name));
    }
  }
  return best;
}
