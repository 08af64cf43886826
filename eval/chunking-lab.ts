/**
 * `OVERLAP=N npx tsx eval/chunking-lab.ts` (default 32): how chunked texts are best ranked, offline
 * on SciFact train with the real all-MiniLM-L6-v2 (in process, exact cosine) and the eval's
 * reference BM25 over Heimdex's analyzer. It chunks every document as the embedder does with the
 * given overlap (windows of the model's size), embeds the chunks once (cached under
 * .data/chunking-lab/; chunk 0 is the same at every overlap and is reused from the overlap-32
 * cache when there is one) and prints nDCG@10, Recall@100 and MRR@10 of: dense over chunk 0
 * only (truncation) and over all chunks (best chunk per text); BM25 over whole texts, over
 * chunks (best chunk, and the sum over chunks); hybrid (RRF k 10, weight 0.7, the API's defaults)
 * for truncation, fused per chunk then grouped, and fused per text (segment) with each keyword
 * variant. The served design (README "Search quality") is the one `npm run eval` measures end to
 * end; this shows the alternatives on the same data in minutes once the vectors are cached.
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { EmbeddingModel } from '../embedder/src/core/model.js';
import type { ChunkEncoding } from '../embedder/src/core/model.js';
import { loadDataset } from '../eval/lib/dataset.js';
import { Bm25Index } from '../eval/lib/bm25.js';
import { summarizeRun } from '../eval/lib/metrics.js';
import type { Run } from '../eval/lib/metrics.js';
import { modelCacheDir } from '../scripts/models/cache.js';
import { REPO_ROOT } from '../scripts/lib/paths.js';
import { DEFAULT_DATASET } from './lib/options.js';

const CACHE = path.join(REPO_ROOT, '.data', 'chunking-lab');
mkdirSync(CACHE, { recursive: true });

const OVERLAP = Number(process.env.OVERLAP ?? 32);
const ds = loadDataset(DEFAULT_DATASET, 'train');
const model = await EmbeddingModel.load({
  name: 'minilm-l6-v2',
  version: '1',
  dir: modelCacheDir(),
  device: 'cpu',
  dtype: 'fp32',
  cpuSpinning: true,
});
const cp = (s: string) => [...s];

interface Ch {
  doc: string;
  index: number;
  count: number;
  text: string;
}
const chunks: Ch[] = [];
const encs: ChunkEncoding[] = [];
for (const d of ds.docs) {
  const cs = model.tokenizeChunks(d.text, OVERLAP === 32 ? undefined : { overlap_tokens: OVERLAP });
  const pts = cp(d.text);
  for (const c of cs) {
    chunks.push({
      doc: d.id,
      index: c.chunk.index,
      count: c.chunk.count,
      text: pts.slice(c.chunk.start, c.chunk.end).join(''),
    });
    encs.push(c);
  }
}
console.log(`overlap ${OVERLAP}: chunks ${chunks.length}`);
const dim = model.dim;
const cache = path.join(CACHE, `vectors-o${OVERLAP}.f32`);
const baseCache = path.join(CACHE, 'vectors-o32.f32');
let vecs: Float32Array;
if (existsSync(cache)) vecs = new Float32Array(readFileSync(cache).buffer.slice(0));
else {
  vecs = new Float32Array(chunks.length * dim);
  // Chunk 0 of every text is the same at every overlap: reuse the base run's vectors.
  const base = existsSync(baseCache)
    ? new Float32Array(readFileSync(baseCache).buffer.slice(0))
    : null;
  const baseAt = new Map<string, number>();
  let b = 0;
  for (const d of ds.docs) {
    const n = model.tokenizeChunks(d.text, undefined).length;
    baseAt.set(d.id, b);
    b += n;
  }
  const todo: number[] = [];
  chunks.forEach((c, i) => {
    if (c.index === 0 && base)
      vecs.set(base.subarray(baseAt.get(c.doc)! * dim, (baseAt.get(c.doc)! + 1) * dim), i * dim);
    else todo.push(i);
  });
  console.log(`embedding ${todo.length} chunks`);
  const t0 = performance.now();
  for (let i = 0; i < todo.length; i += 32) {
    const idx = todo.slice(i, i + 32);
    const out = await model.infer(idx.map((k) => encs[k]!));
    out.forEach((v, j) => vecs.set(v, idx[j]! * dim));
    if (i % 1600 === 0) console.log(i, ((performance.now() - t0) / 1000).toFixed(0), 's');
  }
  writeFileSync(cache, Buffer.from(vecs.buffer));
}
function normalize(v: Float32Array) {
  for (let i = 0; i < v.length; i += dim) {
    let n = 0;
    for (let k = 0; k < dim; k++) n += v[i + k]! * v[i + k]!;
    n = Math.sqrt(n);
    for (let k = 0; k < dim; k++) v[i + k]! /= n;
  }
}
normalize(vecs);
const qv = new Float32Array(ds.queries.length * dim);
for (let i = 0; i < ds.queries.length; i += 32) {
  const out = await model.infer(
    ds.queries.slice(i, i + 32).map((q) => model.tokenize(q.text, 'query')),
  );
  out.forEach((v, j) => qv.set(v, (i + j) * dim));
}
normalize(qv);

type Ranked = { chunk: number; score: number }[];
function denseChunks(qi: number, filter: (c: Ch) => boolean, limit: number): Ranked {
  const res: Ranked = [];
  for (let c = 0; c < chunks.length; c++) {
    if (!filter(chunks[c]!)) continue;
    let s = 0;
    for (let k = 0; k < dim; k++) s += qv[qi * dim + k]! * vecs[c * dim + k]!;
    res.push({ chunk: c, score: s });
  }
  return res.sort((a, b) => b.score - a.score).slice(0, limit);
}
// keyword over chunks (docs = chunks)
const chunkBm = new Bm25Index(chunks.map((c, i) => ({ id: String(i), text: c.text })));
const docBm = new Bm25Index(ds.docs);
const all = () => true;
const first = (c: Ch) => c.index === 0;

function rrf(lists: { ids: string[]; w: number }[], k: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const { ids, w } of lists)
    ids.forEach((id, p) => m.set(id, (m.get(id) ?? 0) + 1 / ((p + 1) / w + k - 1)));
  return m;
}
const bestPer = (ranked: { id: string; score: number }[]) => {
  const seen = new Map<string, number>();
  for (const r of ranked) if (!seen.has(r.id)) seen.set(r.id, r.score);
  return seen;
};
const top = (m: Map<string, number>, n: number) =>
  new Map([...m].sort((a, b) => b[1] - a[1]).slice(0, n));
const K = 10;
const W = 0.7;
const [wd, wk] = [2 * W, 2 * (1 - W)];
const runs: Record<string, Map<string, Map<string, number>>> = {};
const add = (name: string, q: string, m: Map<string, number>) => {
  (runs[name] ??= new Map()).set(q, top(m, 100));
};
const sumPer = (ranked: { id: string; score: number }[]) => {
  const m = new Map<string, number>();
  for (const r of ranked) m.set(r.id, (m.get(r.id) ?? 0) + r.score);
  return m;
};
ds.queries.forEach((q, qi) => {
  const d0 = denseChunks(qi, first, 400);
  const dAll = denseChunks(qi, all, 800);
  const kDoc = docBm.search(q.text, 400);
  const kCh = [...chunkBm.search(q.text, 800)].map(([id, s]) => ({
    id: chunks[+id]!.doc,
    chunk: +id,
    score: s,
  }));
  const d0Docs = d0.map((r) => ({ id: chunks[r.chunk]!.doc, score: r.score }));
  const dAllDocs = dAll.map((r) => ({ id: chunks[r.chunk]!.doc, score: r.score }));
  add('dense truncate', q.id, bestPer(d0Docs));
  add('dense chunked', q.id, bestPer(dAllDocs));
  add('keyword doc', q.id, kDoc);
  add('keyword chunk max', q.id, bestPer(kCh));
  add('keyword chunk sum', q.id, sumPer(kCh));
  const kDocIds = [...kDoc.keys()];
  // truncate hybrid: dense chunk0 + keyword doc (chunk-level = doc-level here)
  add(
    'hybrid truncate',
    q.id,
    rrf(
      [
        { ids: d0Docs.slice(0, 400).map((r) => r.id), w: wd },
        { ids: kDocIds, w: wk },
      ],
      K,
    ),
  );
  // current: chunk-level RRF over chunk ids (top 400 each), then best per doc
  const chunkFused = rrf(
    [
      { ids: dAll.slice(0, 400).map((r) => String(r.chunk)), w: wd },
      { ids: kCh.slice(0, 400).map((r) => String(r.chunk)), w: wk },
    ],
    K,
  );
  add(
    'hybrid chunk-level (current)',
    q.id,
    bestPer(
      [...chunkFused]
        .sort((a, b) => b[1] - a[1])
        .map(([c, s]) => ({ id: chunks[+c]!.doc, score: s })),
    ),
  );
  // segment-level: group each ranking by max then RRF
  const dSeg = [...bestPer(dAllDocs).keys()];
  const kSegMax = [...bestPer(kCh).keys()];
  add(
    'hybrid segment-level (kw chunk max)',
    q.id,
    rrf(
      [
        { ids: dSeg, w: wd },
        { ids: kSegMax, w: wk },
      ],
      K,
    ),
  );
  add(
    'hybrid segment-level (kw doc)',
    q.id,
    rrf(
      [
        { ids: dSeg, w: wd },
        { ids: kDocIds, w: wk },
      ],
      K,
    ),
  );
  const kSum = [...top(sumPer(kCh), 400).keys()];
  add(
    'hybrid segment-level (kw chunk sum)',
    q.id,
    rrf(
      [
        { ids: dSeg, w: wd },
        { ids: kSum, w: wk },
      ],
      K,
    ),
  );
});
for (const [name, run] of Object.entries(runs)) {
  const s = summarizeRun(ds.qrels, run as Run);
  console.log(
    name.padEnd(40),
    s.ndcgAt10.toFixed(4),
    s.recallAt100.toFixed(4),
    s.mrrAt10.toFixed(4),
  );
}
