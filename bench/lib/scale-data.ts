/**
 * The scale section's data: realistic 384-d vectors and keyword terms at any count, derived from
 * real all-MiniLM-L6-v2 embeddings of SciFact abstracts.
 *
 * Method: the first BASE_DOCS documents of the SciFact corpus (../shared/eval/scifact; title and
 * abstract, cut to BASE_CHARS characters) are embedded once with the real model and cached under
 * .data/scale/. The documents are split: 90% are corpus bases, 10%
 * are held out for queries. Point j is a mixture of two corpus bases a and b (chosen by a seeded
 * hash of j) plus isotropic Gaussian noise, normalised: v = norm(λ·a + (1 − λ)·b + σ·g/√d) with
 * λ ∈ [0.55, 0.95) and σ = NOISE; its keyword terms are TERMS_PER_POINT draws from a's analysed
 * words (3 in 4) and b's (1 in 4). A query is made the same way from two held-out documents, with
 * QUERY_TERMS draws of the first one's words. So points and queries share the real embeddings'
 * anisotropy and cluster structure (uniform random vectors have none, which makes ANN recall
 * meaningless), no query is a near-duplicate of a point, and the terms agree with the vectors.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { analyze } from '../../embedder/src/core/keywords.js';
import type { TermVector } from '../../embedder/src/core/keywords.js';
import { createLogger } from '../../embedder/src/log.js';
import { Metrics } from '../../embedder/src/core/metrics.js';
import { ModelPool } from '../../embedder/src/core/models.js';
import { loadCorpus } from '../../eval/lib/dataset.js';
import { DEFAULT_DATASET } from '../../eval/lib/options.js';
import { modelCacheDir } from '../../scripts/models/cache.js';
import { REPO_ROOT } from './paths.js';
import { progress } from './progress.js';
import { MINILM } from './variants.js';

export const SCALE_DIM = 384;
const NOISE = 0.35;
export const TERMS_PER_POINT = 48;
export const QUERY_TERMS = 4;
const CACHE_DIR = path.join(REPO_ROOT, '.data/scale');
const CACHE_VERSION = 1;
/** Documents embedded (the first of the corpus), and the characters of each (title + start). */
const BASE_DOCS = 1000;
const BASE_CHARS = 400;

export interface BaseSet {
  /** Unit vectors, row-major. */
  vectors: Float32Array;
  count: number;
  /** Each document's analysed words as term ids (a plain hash: the bench needs no secret). */
  words: Uint32Array[];
}

export interface ScaleBases {
  corpus: BaseSet;
  heldOut: BaseSet;
  /** How the embeddings were made, for the report. */
  source: string;
}

/** FNV-1a of a word: a stable term id (the product keys it per organisation; not needed here). */
function termId(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) {
    h ^= word.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The real embeddings of the SciFact corpus, embedded on first use and cached. */
export async function loadScaleBases(): Promise<ScaleBases> {
  const docs = loadCorpus(DEFAULT_DATASET)
    .docs.slice(0, BASE_DOCS)
    .map((d) => ({ ...d, text: d.text.slice(0, BASE_CHARS) }));
  const file = path.join(
    CACHE_DIR,
    `scifact-minilm-v${CACHE_VERSION}-${docs.length}x${BASE_CHARS}.f32`,
  );
  let all: Float32Array;
  if (existsSync(file)) {
    const buf = readFileSync(file);
    all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice();
  } else {
    progress(`scale: embedding ${docs.length} SciFact abstracts once (cached in ${file})`);
    all = await embedAll(docs.map((d) => d.text));
    mkdirSync(CACHE_DIR, { recursive: true });
    writeFileSync(file, Buffer.from(all.buffer, all.byteOffset, all.byteLength));
  }
  const words = docs.map((d) => Uint32Array.from(analyze(d.text), termId));
  const heldOutEvery = 10;
  const pick = (held: boolean): BaseSet => {
    const idx = docs.map((_, i) => i).filter((i) => (i % heldOutEvery === 0) === held);
    const vectors = new Float32Array(idx.length * SCALE_DIM);
    idx.forEach((d, k) =>
      vectors.set(all.subarray(d * SCALE_DIM, (d + 1) * SCALE_DIM), k * SCALE_DIM),
    );
    return { vectors, count: idx.length, words: idx.map((d) => words[d] as Uint32Array) };
  };
  return {
    corpus: pick(false),
    heldOut: pick(true),
    source: `${MINILM} (fp32, transformers.js) embeddings of the first ${docs.length} SciFact documents (title and abstract, first ${BASE_CHARS} characters); every 10th held out for queries`,
  };
}

async function embedAll(texts: readonly string[]): Promise<Float32Array> {
  const models = new ModelPool({
    model: {
      name: MINILM,
      version: '1',
      dir: modelCacheDir(),
      device: 'cpu',
      dtype: 'fp32',
      cpuSpinning: false,
    },
    extraModels: [],
    batching: { maxBatchTokens: 16_384, maxBatchItems: 32, maxQueuedItems: 1_000_000 },
    metrics: new Metrics(),
    logger: createLogger('silent'),
  });
  try {
    const { model } = await models.start();
    const out = new Float32Array(texts.length * SCALE_DIM);
    for (let i = 0; i < texts.length; i += 32) {
      const batch = texts.slice(i, i + 32).map((t) => model.tokenize(t, 'passage'));
      const vectors = await model.infer(batch);
      vectors.forEach((v, k) => out.set(v, (i + k) * SCALE_DIM));
      if (i % 320 === 0) progress(`  embedded ${i}/${texts.length}`);
    }
    return out;
  } finally {
    await models.close();
  }
}

/** A seeded 32-bit hash (lowbias32) of a point index and a stream number. */
export function hash32(x: number, stream: number): number {
  let h = (x ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

const unit = (x: number, stream: number) => hash32(x, stream) / 2 ** 32;

/** A fixed table of standard normal deviates (Box-Muller over a seeded hash). */
const NORMALS_MASK = 2 ** 16 - 1;
const NORMALS = (() => {
  const out = new Float32Array(NORMALS_MASK + 1);
  for (let i = 0; i < out.length; i += 2) {
    const u = (hash32(i, 1_000_003) + 0.5) / 2 ** 32;
    const v = (hash32(i, 1_000_033) + 0.5) / 2 ** 32;
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
})();

/** A TermVector of term ids drawn with repeats (core/keywords.ts termVector, over ids). */
export function countTerms(drawn: readonly number[]): TermVector {
  const counts = new Map<number, number>();
  for (const id of drawn) counts.set(id, (counts.get(id) ?? 0) + 1);
  const ids = Uint32Array.from(counts.keys()).sort();
  return {
    ids,
    tfs: Uint32Array.from(ids, (id) => counts.get(id) as number),
    length: drawn.length,
  };
}

/** A generated vector and its terms. */
export interface Generated {
  vectors: Float32Array;
  terms: TermVector[];
}

/**
 * Items [from, from + n) of a stream (`stream` separates points from queries and organisations'
 * data from one another), mixed from `bases` as the module comment says; `termCount` draws each.
 */
export function generate(
  bases: BaseSet,
  from: number,
  n: number,
  stream: number,
  termCount: number,
): Generated {
  const dim = SCALE_DIM;
  const vectors = new Float32Array(n * dim);
  const terms: TermVector[] = [];
  const sigma = NOISE / Math.sqrt(dim);
  for (let k = 0; k < n; k++) {
    const j = from + k;
    const a = hash32(j, stream * 8) % bases.count;
    const b = hash32(j, stream * 8 + 1) % bases.count;
    const lambda = 0.55 + 0.4 * unit(j, stream * 8 + 2);
    let seed = hash32(j, stream * 8 + 3) || 1;
    const uniform = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return ((seed >>> 0) + 0.5) / 2 ** 32;
    };
    // Gaussian noise read from a fixed table of normal deviates at a per-point offset and odd
    // stride (the same distribution as fresh draws, ~10x cheaper than Box-Muller per value).
    const offset = hash32(j, stream * 8 + 4) & NORMALS_MASK;
    const stride = (hash32(j, stream * 8 + 5) & NORMALS_MASK) | 1;
    const out = vectors.subarray(k * dim, (k + 1) * dim);
    const ao = a * dim;
    const bo = b * dim;
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const g = NORMALS[(offset + d * stride) & NORMALS_MASK] as number;
      const x =
        lambda * (bases.vectors[ao + d] as number) +
        (1 - lambda) * (bases.vectors[bo + d] as number) +
        sigma * g;
      out[d] = x;
      norm += x * x;
    }
    const inv = 1 / Math.sqrt(norm);
    for (let d = 0; d < dim; d++) out[d] = (out[d] as number) * inv;
    const wa = bases.words[a] as Uint32Array;
    const wb = bases.words[b] as Uint32Array;
    const drawn: number[] = [];
    for (let t = 0; t < termCount; t++) {
      const fromB = termCount > QUERY_TERMS && uniform() < 0.25 && wb.length > 0;
      const words = fromB || wa.length === 0 ? wb : wa;
      if (words.length > 0) drawn.push(words[Math.floor(uniform() * words.length)] as number);
    }
    terms.push(countTerms(drawn));
  }
  return { vectors, terms };
}

/** Point index → UUID (the stores' ids), and back. */
export function pointId(index: number, org: number): string {
  const hex = (v: number, w: number) => v.toString(16).padStart(w, '0');
  return `${hex(org, 8)}-0000-4000-8000-${hex(index, 12)}`;
}

export function pointIndex(id: string): number {
  return Number.parseInt(id.slice(-12), 16);
}
