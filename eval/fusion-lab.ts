/**
 * `npx tsx eval/fusion-lab.ts`: how hybrid search should fuse its two rankings, offline, on the
 * two measurements hybrid search is judged by: SciFact train (nDCG@10, Recall@100, MRR@10) and the
 * needle test (eval/lib/needle.ts: 100 long texts, a made-up sentence past the model's window, a
 * paraphrase query sharing only a name with it; rank 1 wanted). Both with the real
 * all-MiniLM-L6-v2 in process (exact cosine, the chunks the embedder makes, best chunk per text)
 * and the eval's reference BM25 over whole texts (Heimdex's analyzer), fused per text (segment)
 * as the store does (embedder/src/store/fusion.ts), with `candidates` hits from each ranking: 40
 * (the API's default `limit` 10 → 4 × 10) and 400 (`limit` 100, what `npm run eval` asks).
 *
 * Fusions: weighted RRF as Qdrant computes it (the API's defaults k 10, dense weight 0.7), and
 * distribution-based score fusion (DBSF, Qdrant's `fusion: "dbsf"`: each ranking's scores mapped
 * by mean ± 3 standard deviations to [0, 1], summed), unweighted as Qdrant runs it and with the
 * same weights as RRF. `DEPTHS=40,100` and `FUSIONS=rrf,dbsf` (name prefixes) narrow the table. SciFact vectors come from eval/chunking-lab.ts's cache when present
 * (.data/chunking-lab/vectors-o32.f32), the needle texts' vectors are cached under
 * .data/fusion-lab/. It prints a table; no file is written besides the caches.
 */
import path from 'node:path';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { EmbeddingModel } from '../embedder/src/core/model.js';
import type { ChunkEncoding } from '../embedder/src/core/model.js';
import { dbsfNormalize, rrfScore } from '../embedder/src/store/fusion.js';
import { Bm25Index } from './lib/bm25.js';
import { loadCorpus, loadDataset } from './lib/dataset.js';
import { summarizeRun } from './lib/metrics.js';
import type { Run } from './lib/metrics.js';
import { buildNeedleTexts } from './lib/needle.js';
import { DEFAULT_DATASET } from './lib/options.js';
import { modelCacheDir } from '../scripts/models/cache.js';
import { REPO_ROOT } from '../scripts/lib/paths.js';

const model = await EmbeddingModel.load({
  name: 'minilm-l6-v2',
  version: '1',
  dir: modelCacheDir(),
  device: 'cpu',
  dtype: 'fp32',
  cpuSpinning: true,
});
const dim = model.dim;

interface Corpus {
  /** Per chunk: its text's id. */
  chunkDoc: string[];
  vectors: Float32Array;
  bm25: Bm25Index;
}

async function embedChunks(
  docs: readonly { id: string; text: string }[],
  cacheFile: string,
): Promise<Corpus> {
  const chunkDoc: string[] = [];
  const encs: ChunkEncoding[] = [];
  for (const d of docs) {
    for (const c of model.tokenizeChunks(d.text, undefined)) {
      chunkDoc.push(d.id);
      encs.push(c);
    }
  }
  let vectors: Float32Array;
  if (existsSync(cacheFile)) {
    vectors = new Float32Array(readFileSync(cacheFile).buffer.slice(0));
    if (vectors.length !== chunkDoc.length * dim) throw new Error(`${cacheFile} is stale`);
  } else {
    console.log(`embedding ${encs.length} chunks into ${cacheFile}`);
    vectors = new Float32Array(encs.length * dim);
    for (let i = 0; i < encs.length; i += 32) {
      const out = await model.infer(encs.slice(i, i + 32));
      out.forEach((v, j) => vectors.set(v, (i + j) * dim));
    }
    mkdirSync(path.dirname(cacheFile), { recursive: true });
    writeFileSync(cacheFile, Buffer.from(vectors.buffer));
  }
  normalizeRows(vectors);
  return { chunkDoc, vectors, bm25: new Bm25Index(docs) };
}

function normalizeRows(v: Float32Array): void {
  for (let i = 0; i < v.length; i += dim) {
    let n = 0;
    for (let k = 0; k < dim; k++) n += v[i + k]! * v[i + k]!;
    n = Math.sqrt(n) || 1;
    for (let k = 0; k < dim; k++) v[i + k]! /= n;
  }
}

async function queryVectors(texts: readonly string[]): Promise<Float32Array> {
  const qv = new Float32Array(texts.length * dim);
  for (let i = 0; i < texts.length; i += 32) {
    const out = await model.infer(texts.slice(i, i + 32).map((t) => model.tokenize(t, 'query')));
    out.forEach((v, j) => qv.set(v, (i + j) * dim));
  }
  normalizeRows(qv);
  return qv;
}

type Ranking = { id: string; score: number }[];

/** Texts by their best chunk's cosine, best first, the first `depth`. */
function denseTexts(c: Corpus, qv: Float32Array, qi: number, depth: number): Ranking {
  const best = new Map<string, number>();
  for (let r = 0; r < c.chunkDoc.length; r++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += qv[qi * dim + k]! * c.vectors[r * dim + k]!;
    const doc = c.chunkDoc[r]!;
    if (s > (best.get(doc) ?? -Infinity)) best.set(doc, s);
  }
  return [...best]
    .map(([id, score]) => ({ id, score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, depth);
}

type Fuser = (dense: Ranking, keyword: Ranking) => Map<string, number>;
const W = 0.7;
const K = 10;
const FUSERS: Record<string, Fuser> = {
  'rrf k10 w0.7 (served)': (d, k) => {
    const m = new Map<string, number>();
    d.forEach((h, p) => m.set(h.id, (m.get(h.id) ?? 0) + rrfScore(p, K, 2 * W)));
    k.forEach((h, p) => m.set(h.id, (m.get(h.id) ?? 0) + rrfScore(p, K, 2 * (1 - W))));
    return m;
  },
  'dbsf (Qdrant, unweighted)': (d, k) => sumScores(d, k, 1, 1),
  'dbsf w0.7': (d, k) => sumScores(d, k, 2 * W, 2 * (1 - W)),
  'dense only': (d) => new Map(d.map((h) => [h.id, h.score])),
  'keyword only': (_d, k) => new Map(k.map((h) => [h.id, h.score])),
};

function sumScores(d: Ranking, k: Ranking, wd: number, wk: number): Map<string, number> {
  const m = new Map<string, number>();
  const dn = dbsfNormalize(d.map((h) => h.score));
  const kn = dbsfNormalize(k.map((h) => h.score));
  d.forEach((h, i) => m.set(h.id, (m.get(h.id) ?? 0) + wd * dn[i]!));
  k.forEach((h, i) => m.set(h.id, (m.get(h.id) ?? 0) + wk * kn[i]!));
  return m;
}

// --- SciFact train -----------------------------------------------------------------------------
const ds = loadDataset(DEFAULT_DATASET, 'train');
const scifact = await embedChunks(
  ds.docs,
  path.join(REPO_ROOT, '.data', 'chunking-lab', 'vectors-o32.f32'),
);
const scifactQ = await queryVectors(ds.queries.map((q) => q.text));

// --- needles -----------------------------------------------------------------------------------
const corpus = loadCorpus(DEFAULT_DATASET);
const countTokens = (s: string) => model.tokenize(s, 'passage').stats.token_count;
const needles = buildNeedleTexts(corpus.docs, countTokens);
const needleCorpus = await embedChunks(
  needles.map((n) => ({ id: n.id, text: n.text })),
  path.join(REPO_ROOT, '.data', 'fusion-lab', 'needle-vectors.f32'),
);
const needleQ = await queryVectors(needles.map((n) => n.query));

console.log(
  `${'fusion'.padEnd(28)} ${'cand'.padStart(4)}  nDCG@10  R@100   MRR@10  | needle rank 1  MRR`,
);
const DEPTHS = (process.env.DEPTHS ?? '40,400').split(',').map(Number);
const ONLY = process.env.FUSIONS?.split(',');
for (const depth of DEPTHS) {
  for (const [name, fuser] of Object.entries(FUSERS)) {
    if (ONLY && !ONLY.some((o) => name.startsWith(o))) continue;
    const run = new Map<string, Map<string, number>>();
    ds.queries.forEach((q, qi) => {
      const dense = denseTexts(scifact, scifactQ, qi, depth);
      const keyword = [...scifact.bm25.search(q.text, depth)].map(([id, score]) => ({ id, score }));
      run.set(q.id, top(fuser(dense, keyword), 100));
    });
    const s = summarizeRun(ds.qrels, run as Run);
    let first = 0;
    let mrr = 0;
    needles.forEach((n, qi) => {
      const dense = denseTexts(needleCorpus, needleQ, qi, depth);
      const keyword = [...needleCorpus.bm25.search(n.query, depth)].map(([id, score]) => ({
        id,
        score,
      }));
      const ranked = [...top(fuser(dense, keyword), 100).keys()];
      const rank = ranked.indexOf(n.id) + 1;
      if (rank === 1) first++;
      if (rank > 0) mrr += 1 / rank;
    });
    console.log(
      `${name.padEnd(28)} ${String(depth).padStart(4)}  ${s.ndcgAt10.toFixed(4)}   ${s.recallAt100.toFixed(4)}  ${s.mrrAt10.toFixed(4)}  | ${String(first).padStart(3)}/${needles.length}      ${(mrr / needles.length).toFixed(4)}`,
    );
  }
}

function top(m: Map<string, number>, n: number): Map<string, number> {
  return new Map([...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, n));
}
