/**
 * The naive baseline: one transformers.js pipeline call per text (`extractor(text)` per job, as
 * a design without batching would do), in this process, with the same model, dtype, pooling and
 * normalisation as the embedder. Measured two ways:
 * - per job: each text is embedded alone and its point written alone to the embedded store
 *   (what a consumer calling `adapter.embed(text)` then `store.upsert(point)` per job pays; the
 *   embedder's figures include their store writes too);
 * - inference only: the extractor calls alone (no store, no HTTP) — the model's own ceiling
 *   for unbatched work.
 */
import { env, pipeline } from '@huggingface/transformers';
import { pointId } from '../../contract/ids.js';
import { modelSpec } from '../../embedder/src/core/registry.js';
import { LanceDbStore } from '../../embedder/src/store/lancedb.js';
import type { VectorPoint } from '../../embedder/src/store/types.js';
import { wholeText } from '../../embedder/src/store/types.js';

export interface NaiveRun {
  itemsPerSecond: number;
  items: number;
  seconds: number;
}

export interface NaiveModel {
  /** Extractor calls only. */
  run(
    texts: readonly string[],
    options: { minSeconds: number; minItems: number },
  ): Promise<NaiveRun>;
  /** Per job: one extractor call and one single-point upsert into a LanceDB store in `dataDir`. */
  runPerJob(
    texts: readonly string[],
    options: { minSeconds: number; minItems: number; dataDir: string; label: string },
  ): Promise<NaiveRun>;
  dispose(): Promise<void>;
}

interface Extractor {
  (
    text: string,
    options: { pooling: 'mean'; normalize: boolean },
  ): Promise<{ data: Float32Array; dims: number[] }>;
  dispose(): Promise<void>;
}

const POOLING = { pooling: 'mean', normalize: true } as const;

async function timed(
  options: { minSeconds: number; minItems: number },
  one: (item: number) => Promise<void>,
): Promise<NaiveRun> {
  // One warm call at this length (onnxruntime sizes its buffers for the first shape).
  await one(-1);
  const started = performance.now();
  let items = 0;
  for (;;) {
    await one(items);
    items++;
    const seconds = (performance.now() - started) / 1000;
    if (seconds >= options.minSeconds && items >= options.minItems) {
      return { itemsPerSecond: items / seconds, items, seconds };
    }
  }
}

export async function loadNaive(
  modelDir: string,
  modelName: string,
  dtype: 'fp32' | 'q8',
): Promise<NaiveModel> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = modelDir.endsWith('/') ? modelDir : `${modelDir}/`;
  // A registry name is served from its Hub id's folder in the cache, as the embedder loads it.
  const extractor = (await pipeline('feature-extraction', modelSpec(modelName).hubId ?? modelName, {
    dtype,
  })) as unknown as Extractor;
  const warm = await extractor('warm-up text', POOLING);
  const dim = warm.data.length;
  const textAt = (texts: readonly string[], item: number) =>
    texts[Math.max(0, item) % texts.length] as string;
  return {
    run: (texts, options) =>
      timed(options, async (item) => {
        await extractor(textAt(texts, item), POOLING);
      }),
    async runPerJob(texts, options) {
      const store = new LanceDbStore({ dataDir: options.dataDir });
      await store.init(dim);
      try {
        return await timed(options, async (item) => {
          const text = textAt(texts, item);
          const out = await extractor(text, POOLING);
          const key = {
            org_id: 'bench-naive',
            asset_id: options.label,
            segment_id: `s${item}`,
            model: modelName,
            model_ver: '1',
          };
          const id = await pointId(key);
          const point: VectorPoint = {
            id,
            vector: Float32Array.from(out.data),
            payload: {
              ...key,
              modality: 'text',
              text_len: text.length,
              token_count: 0,
              truncated: false,
              truncated_len: text.length,
              job_id: `job-${item}`,
              seq: item + 2,
              embedded_at: new Date().toISOString(),
              ...wholeText(id, text.length),
            },
          };
          await store.upsert([point]);
        });
      } finally {
        await store.close();
      }
    },
    dispose: () => extractor.dispose(),
  };
}
