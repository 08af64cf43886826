/**
 * Parity with the reference implementation: the real all-MiniLM-L6-v2 of `npm run models`, loaded
 * by registry name from the model cache through the embedder's own model code (the resolution
 * and tokenize → infer → pool → normalise path the service uses), against sentence-transformers'
 * vectors and tokenizer for the fixed sentences of test/fixtures/reference (made by
 * scripts/models/reference.py). Per sentence: cosine ≥ 0.9999 (fp32) and ≥ 0.99 (int8), the same
 * token count, the same truncation and the same embedded token ids.
 *
 * The model cache is required: a missing or stale cache fails the test (run `npm run models`).
 * Failures name sentence ids and numbers, never the texts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelDtype } from '../src/config.js';
import { EmbeddingModel } from '../src/core/model.js';
import type { Encoding } from '../src/core/model.js';
import { cosine } from '../src/core/vector.js';
import { invalidFiles, modelCacheDir, readLock, sha256 } from '../../scripts/models/cache.js';
import { repoRoot } from './helpers.js';

const MODEL = 'minilm-l6-v2';
/** Items per forward pass (the service's default EMBEDDER_MAX_BATCH_ITEMS). */
const BATCH = 64;
const FIXTURES = path.join(repoRoot, 'test/fixtures/reference');
/**
 * Per-sentence floors: the issue's targets, 0.9999 (fp32) and 0.99 (int8). Measured over the 246
 * sentences with tokens: fp32 min 1.000000 (to 6 places); int8 min 0.9916, mean 0.9986.
 *
 * The int8 graph (scripts/models/models.lock.json; bench/lib/bert.ts QuantOptions) keeps
 * quantize_dynamic's int8 MatMuls (per-channel weights, dynamic uint8 activations) with three
 * changes, each measured on this fixture (min / mean cosine):
 * - per-token activation ranges (each row divided by its max |x| before DynamicQuantizeLinear,
 *   the product multiplied back): a few tokens ([CLS], [SEP], punctuation) carry ~10×
 *   activations and, with one range per tensor, set the step of every token in the batch
 *   (quantize_dynamic's form with fp32 embedding tables: 0.9580 / 0.9897);
 * - SmoothQuant (α = 0.5, power-of-two factors) on the LayerNorm outputs feeding Q/K/V and
 *   FFN-in, calibrated by scripts/models/calibrate.py on text that is not this fixture (the
 *   model's README and docs/*.md); smoothing with per-tensor ranges: 0.9667 / 0.9939;
 * - uint8 weights (zero point 128), so onnxruntime runs its exact u8×u8 kernels: x86 without
 *   VNNI adds u8×s8 products pairwise in int16, which full-range per-token rows saturate
 *   (measured with the 'affine' form below: int8 weights 0.9805 / 0.9961, uint8 0.9942 / 0.9990).
 * Embedding tables stay fp32. Speed (int8/fp32 texts/s, ~90-token texts in batches of 32, 2
 * heavily shared cores, median of interleaved rounds; scripts/models/speed.ts): this graph
 * 1.16–1.29×, quantize_dynamic's form 1.7–1.8×, the 'affine' per-token form (per-row min/max,
 * 0.9942 / 0.9990) 1.0–1.1×. The per-token passes, not the MatMuls, cost the difference.
 */
const MIN_COSINE: Record<'fp32' | 'q8', number> = { fp32: 0.9999, q8: 0.99 };
/** Mean cosine floors (measured: fp32 1.000000, int8 0.9986). */
const MIN_MEAN_COSINE: Record<'fp32' | 'q8', number> = { fp32: 0.9999, q8: 0.998 };

interface Sentence {
  id: string;
  category: string;
  text: string;
}

interface ReferenceItem {
  id: string;
  token_count: number;
  truncated: boolean;
  ids: string;
  vector: string;
  embedded_chars?: number;
}

interface Reference {
  sentences_sha256: string;
  max_seq_length: number;
  dims: number;
  items: ReferenceItem[];
}

const sentencesBytes = readFileSync(path.join(FIXTURES, 'sentences.json'));
const sentences = (JSON.parse(sentencesBytes.toString('utf8')) as { sentences: Sentence[] })
  .sentences;
const reference = JSON.parse(
  readFileSync(path.join(FIXTURES, `${MODEL}.json`), 'utf8'),
) as Reference;

function decode<T>(b64: string, View: new (buffer: ArrayBuffer) => T): T {
  const bytes = Buffer.from(b64, 'base64');
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  return new View(copy);
}

/** The cache folder, checked against the lock; throws (fails the test) when it is not usable. */
async function checkedCache(): Promise<string> {
  const cache = modelCacheDir();
  const locked = readLock().models.find((m) => m.name === MODEL);
  if (!locked) throw new Error(`scripts/models/models.lock.json has no ${MODEL}`);
  const bad = await invalidFiles(cache, locked);
  if (bad.length > 0) {
    throw new Error(
      `the real model ${MODEL} is missing or stale in the model cache ${path.join(cache, locked.folder)} ` +
        `(${bad.join(', ')}): run \`npm run models\` first (HEIMDEX_MODEL_CACHE overrides the folder)`,
    );
  }
  return cache;
}

describe('the reference fixture', () => {
  it('was made from these sentences and covers ≥ 200 of them, long and unicode included', () => {
    expect(sha256(sentencesBytes)).toBe(reference.sentences_sha256);
    expect(reference.items.map((i) => i.id)).toEqual(sentences.map((s) => s.id));
    expect(sentences.length).toBeGreaterThanOrEqual(200);
    expect(reference.items.filter((i) => i.truncated).length).toBeGreaterThanOrEqual(20);
    const categories = new Set(sentences.map((s) => s.category));
    for (const c of ['short', 'long', 'multilingual', 'unicode']) expect(categories).toContain(c);
  });
});

describe.each(['fp32', 'q8'] as const)(
  '%s all-MiniLM-L6-v2 against sentence-transformers',
  (dtype) => {
    let model: EmbeddingModel;

    beforeAll(async () => {
      const cache = await checkedCache();
      // The registry name alone, with the cache as EMBEDDING_MODEL_DIR: what a deployment sets.
      model = await EmbeddingModel.load({
        name: MODEL,
        version: '1',
        dir: cache,
        device: 'cpu',
        dtype: dtype satisfies ModelDtype,
        cpuSpinning: false,
      });
    }, 120_000);

    afterAll(async () => {
      await model?.dispose();
    });

    it('has the window and dimension of the reference', () => {
      expect(model.maxTokens).toBe(reference.max_seq_length);
      expect(model.dim).toBe(reference.dims);
    });

    it('tokenizes like the reference: token counts, truncation and embedded ids', () => {
      const mismatches: string[] = [];
      sentences.forEach((s, i) => {
        const ref = reference.items[i] as ReferenceItem;
        const encoding = model.tokenize(s.text, 'passage');
        const refIds = Array.from(decode(ref.ids, Uint16Array));
        if (encoding.stats.token_count !== ref.token_count) {
          mismatches.push(
            `${s.id}: token_count ${encoding.stats.token_count} vs ${ref.token_count}`,
          );
        }
        if (encoding.stats.truncated !== ref.truncated) {
          mismatches.push(`${s.id}: truncated ${encoding.stats.truncated} vs ${ref.truncated}`);
        }
        if (ref.token_count > 0 && encoding.ids.join(',') !== refIds.join(',')) {
          const at = refIds.findIndex((id, j) => encoding.ids[j] !== id);
          mismatches.push(
            `${s.id}: embedded ids differ (${encoding.ids.length} vs ${refIds.length} ids, first at ${at})`,
          );
        }
        if (ref.truncated && ref.embedded_chars !== undefined) {
          // Heimdex embeds the longest prefix whose tokens fit: never less than the reference.
          if (encoding.stats.truncated_len < ref.embedded_chars) {
            mismatches.push(
              `${s.id}: truncated_len ${encoding.stats.truncated_len} < reference ${ref.embedded_chars}`,
            );
          }
        }
      });
      expect(mismatches).toEqual([]);
    });

    it(`embeds every sentence with cosine ≥ ${MIN_COSINE[dtype]} to the reference`, async () => {
      // Batches as the service forms them by default: grouped by length, 64 items (EMBEDDER_BATCH_ITEMS).
      const encodings = sentences.map((s) => model.tokenize(s.text, 'passage'));
      const order = encodings
        .map((e, i) => ({ i, tokens: e.ids.length, count: e.stats.token_count }))
        .filter((o) => o.count > 0)
        .sort((a, b) => a.tokens - b.tokens)
        .map((o) => o.i);
      const vectors = new Map<number, Float32Array>();
      for (let start = 0; start < order.length; start += BATCH) {
        const chunk = order.slice(start, start + BATCH);
        const pooled = await model.infer(chunk.map((i) => encodings[i] as Encoding));
        chunk.forEach((i, row) => vectors.set(i, pooled[row] as Float32Array));
      }
      const below: string[] = [];
      const cosines: number[] = [];
      reference.items.forEach((ref, i) => {
        // sentence-transformers embeds [CLS][SEP]; Heimdex refuses a text without tokens.
        if (ref.token_count === 0) return;
        const vector = vectors.get(i);
        if (!vector) {
          below.push(`${ref.id}: no vector`);
          return;
        }
        const c = cosine(vector, decode(ref.vector, Float32Array));
        cosines.push(c);
        if (!(c >= MIN_COSINE[dtype])) below.push(`${ref.id}: cosine ${c.toFixed(6)}`);
      });
      const min = Math.min(...cosines);
      const mean = cosines.reduce((a, b) => a + b, 0) / cosines.length;
      console.log(
        `parity ${MODEL} ${dtype}: ${cosines.length} sentences, min cosine ${min.toFixed(7)}, mean ${mean.toFixed(7)}`,
      );
      expect(below).toEqual([]);
      expect(mean).toBeGreaterThanOrEqual(MIN_MEAN_COSINE[dtype]);
    }, 180_000);
  },
);
