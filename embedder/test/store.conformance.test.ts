import { randomUUID } from 'node:crypto';
import * as lancedb from '@lancedb/lancedb';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chunkPointId, pointId } from '../../contract/ids.js';
import { dbsfNormalize } from '../src/store/fusion.js';
import { LanceDbStore } from '../src/store/lancedb.js';
import type { LanceDbStoreOptions } from '../src/store/lancedb.js';
import { QdrantStore } from '../src/store/qdrant.js';
import type {
  PointPayload,
  SearchHit,
  StoreHooks,
  TermVector,
  VectorPoint,
  VectorStore,
} from '../src/store/types.js';
import { seededRand, tempDir } from './helpers.js';
import { DIM, MODEL, point, unit } from './store-fixtures.js';

/** Chunk i's vector in `chunked`: near axis i, so a search for it finds that chunk first. */
const chunkAxis = (i: number) => Array.from({ length: DIM }, (_, k) => (k === i % DIM ? 1 : 0.05));

/**
 * The `count` chunks of one text of a segment, written by job `seq`: ids from chunkPointId
 * (chunk 0's is the segment's point id), 100 code points apart and 120 long, chunk i's vector
 * near axis i (or `vectors[i]`), its terms the shared term 1 and its own term 100 + i.
 */
async function chunked(
  org: string,
  asset: string,
  segment: string,
  count: number,
  seq: number,
  vectors?: number[][],
): Promise<VectorPoint[]> {
  const key = { org_id: org, asset_id: asset, segment_id: segment, model: MODEL, model_ver: '1' };
  const segmentPointId = await pointId(key);
  const jobId = randomUUID();
  const textLen = 100 * count + 20;
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const p = await point(org, asset, segment, vectors?.[i] ?? chunkAxis(i), seq, {
        job_id: jobId,
        text_len: textLen,
        truncated_len: textLen,
        token_count: 30 * count,
        segment_point_id: segmentPointId,
        chunk_index: i,
        chunk_count: count,
        chunk_start: 100 * i,
        chunk_end: 100 * i + 120,
      });
      return withTerms({ ...p, id: await chunkPointId(key, i) }, { 1: 1, [100 + i]: 1 }, 2);
    }),
  );
}

/** The chunk fields, which points written before chunking lack. */
const CHUNK_KEYS = ['segment_point_id', 'chunk_index', 'chunk_count', 'chunk_start', 'chunk_end'];

/** A payload as an embedder before chunking wrote it: no chunk fields. */
function legacyPayload(payload: PointPayload): Record<string, unknown> {
  return Object.fromEntries(Object.entries(payload).filter(([k]) => !CHUNK_KEYS.includes(k)));
}

const search = (store: VectorStore, orgId: string, vector: number[], more: object = {}) =>
  store.search({ vector: unit(vector), orgId, model: MODEL, modelVer: '1', limit: 10, ...more });

/**
 * Writes seq 10 of a point through `first`, then seq 5 of the same point through `second`: the
 * older write is refused and a search through `second` still finds seq 10's vector and payload.
 */
async function olderSeqIsRefused(first: VectorStore, second: VectorStore) {
  const v10 = await point('acme', 'a1', 's1', [1, 0], 10);
  expect(await first.upsert([v10])).toEqual([true]);
  const v5 = { ...(await point('acme', 'a1', 's1', [0, 1], 5)), id: v10.id };
  expect(await second.upsert([v5])).toEqual([false]);
  const [hit] = await search(second, 'acme', [1, 0]);
  expect(hit?.payload).toEqual(v10.payload);
  expect(hit?.score).toBeCloseTo(1, 5);
  return { v10, v5 };
}

/** Writes three points of acme through `store`: a (asset a1, s1), b (a1, s2), c (a2, s1). */
async function writeThreePoints(store: VectorStore) {
  const a = await point('acme', 'a1', 's1', [1, 0], 1);
  const b = await point('acme', 'a1', 's2', [1, 0.5], 2);
  const c = await point('acme', 'a2', 's1', [0, 1], 3);
  await store.upsert([a, b, c]);
  return { a, b, c };
}

interface Harness {
  store: VectorStore;
  /** The store's fault-injection hooks (StoreHooks), which a test may set and clear. */
  hooks: StoreHooks;
  /** A second store instance over the same data (a restart). */
  reopen: () => Promise<VectorStore>;
  /**
   * Writes `points` as an embedder before chunking did (payloads without the chunk fields, an
   * old table), and returns a store over them (closed by `cleanup`).
   */
  legacy: (points: readonly VectorPoint[]) => Promise<VectorStore>;
  cleanup: () => Promise<void>;
}

/** The cases every VectorStore must pass. */
function conformance(makeHarness: () => Promise<Harness>): void {
  let h: Harness;
  let store: VectorStore;

  beforeEach(async () => {
    h = await makeHarness();
    store = h.store;
  });
  afterEach(async () => {
    await h.cleanup();
  });

  it('creates the collection for the dimension and reports it again on reopen', async () => {
    const again = await h.reopen();
    try {
      expect(await again.init(DIM + 1)).toEqual({ dim: DIM, created: false });
    } finally {
      await again.close();
    }
    await store.health();
  });

  it('upserts, then searches nearest first with cosine scores and the exact payload', async () => {
    const a = await point('acme', 'a1', 's1', [1, 0, 0], 1);
    const b = await point('acme', 'a1', 's2', [1, 1, 0], 2);
    const c = await point('acme', 'a2', 's1', [0, 0, 1], 3);
    expect(await store.upsert([a, b, c])).toEqual([true, true, true]);

    const hits = await search(store, 'acme', [1, 0, 0]);
    expect(hits.map((x) => x.id)).toEqual([a.id, b.id, c.id]);
    expect(hits[0]?.score).toBeCloseTo(1, 5);
    expect(hits[1]?.score).toBeCloseTo(Math.SQRT1_2, 4);
    expect(hits[2]?.score).toBeCloseTo(0, 4);
    expect(hits[0]?.payload).toEqual(a.payload);
    expect(await store.count({ orgId: 'acme' })).toBe(3);

    const limited = await search(store, 'acme', [1, 0, 0], { limit: 1 });
    expect(limited.map((x) => x.id)).toEqual([a.id]);
  });

  it('filters by asset, segment, model and model version', async () => {
    const points = [
      await point('acme', 'a1', 's1', [1, 0], 1),
      await point('acme', 'a2', 's1', [1, 0.1], 2),
      await point('acme', 'a2', 's2', [1, 0.2], 3),
      await point('acme', 'a1', 's1', [1, 0], 4, { model: 'other-model' }),
      await point('acme', 'a1', 's1', [1, 0], 5, { model_ver: '2' }),
    ];
    await store.upsert(points);
    const ids = (hits: { id: string }[]) => hits.map((x) => x.id).sort();
    expect(ids(await search(store, 'acme', [1, 0]))).toEqual(ids(points.slice(0, 3)));
    expect(ids(await search(store, 'acme', [1, 0], { assetId: 'a2' }))).toEqual(
      ids(points.slice(1, 3)),
    );
    expect(ids(await search(store, 'acme', [1, 0], { assetId: 'a2', segmentId: 's2' }))).toEqual(
      ids([points[2] as VectorPoint]),
    );
    expect(ids(await search(store, 'acme', [1, 0], { segmentId: 's1' }))).toEqual(
      ids(points.slice(0, 2)),
    );
    const v2 = await search(store, 'acme', [1, 0], { modelVer: '2' });
    expect(v2.map((x) => x.id)).toEqual([points[4]?.id]);
  });

  it('applies payload filters: any-of assets and segments, truncated, embedded_at range', async () => {
    const pts = [
      await point('acme', 'a1', 's1', [1, 0], 1),
      await point('acme', 'a2', 's1', [1, 0.1], 2, { truncated: true }),
      await point('acme', 'a3', 's2', [1, 0.2], 3),
      await point('rival', 'a1', 's1', [1, 0], 4),
    ];
    await store.upsert(pts);
    const assets = async (filters: object) =>
      (await search(store, 'acme', [1, 0], { filters })).map((h) => h.payload.asset_id).sort();
    expect(await assets({ assetIds: ['a1', 'a3', 'nope'] })).toEqual(['a1', 'a3']);
    expect(await assets({ segmentIds: ['s1'] })).toEqual(['a1', 'a2']);
    expect(await assets({ truncated: true })).toEqual(['a2']);
    expect(await assets({ truncated: false })).toEqual(['a1', 'a3']);
    // embedded_at is 1_700_000_000_000 + seq ms: [after, before) picks seq 2 only.
    const at = (seq: number) => new Date(1_700_000_000_000 + seq).toISOString();
    expect(await assets({ embeddedAfter: at(2), embeddedBefore: at(3) })).toEqual(['a2']);
    // Any ISO 8601 form of the same instant works.
    expect(await assets({ embeddedAfter: '2023-11-14T22:13:20.003+00:00' })).toEqual(['a3']);
    expect(await assets({ assetIds: ['a1', 'a2'], truncated: false })).toEqual(['a1']);
    // Filters never widen the tenant: rival's a1 is not in acme's results.
    const hits = await search(store, 'acme', [1, 0], { filters: { assetIds: ['a1'] } });
    expect(hits.map((h) => h.payload.org_id)).toEqual(['acme']);
  });

  it('isolates tenants in search, count and delete, whatever the ids contain', async () => {
    const mine = await point('acme', 'shared-asset', 's1', [1, 0], 1);
    const theirs = await point('globex', 'shared-asset', 's1', [1, 0], 1);
    await store.upsert([mine, theirs]);

    expect((await search(store, 'acme', [1, 0])).map((x) => x.id)).toEqual([mine.id]);
    expect((await search(store, 'globex', [1, 0])).map((x) => x.id)).toEqual([theirs.id]);
    expect(await search(store, 'initech', [1, 0])).toEqual([]);
    // Injection attempts in filter values are plain strings.
    expect(await search(store, "acme' OR '1'='1", [1, 0])).toEqual([]);
    expect(await search(store, 'acme', [1, 0], { assetId: "x' OR org_id = 'globex" })).toEqual([]);

    const counts = async () =>
      [await store.count({ orgId: 'acme' }), await store.count({ orgId: 'globex' })] as const;
    expect(await counts()).toEqual([1, 1]);
    expect(await store.delete({ orgId: 'globex', pointId: mine.id })).toBe(0);
    expect(await store.delete({ orgId: 'initech', assetId: 'shared-asset' })).toBe(0);
    expect(await counts()).toEqual([1, 1]);
  });

  it('stores ids with quotes, backslashes and non-ASCII characters', async () => {
    const odd = await point("o'rg\\1", 'ass\'et "ü" 😀', "se'g", [0, 1], 1);
    expect(await store.upsert([odd])).toEqual([true]);
    const hits = await search(store, "o'rg\\1", [0, 1], {
      assetId: 'ass\'et "ü" 😀',
      segmentId: "se'g",
    });
    expect(hits.map((x) => x.payload)).toEqual([odd.payload]);
    expect(await store.delete({ orgId: "o'rg\\1", assetId: 'ass\'et "ü" 😀' })).toBe(1);
  });

  it('applies writes latest-wins by seq', async () => {
    // An older job delivered late must not overwrite the newer vector.
    const { v10 } = await olderSeqIsRefused(store, store);

    // The same seq again (a redelivery) and a newer seq both apply.
    expect(await store.upsert([{ ...v10, payload: { ...v10.payload } }])).toEqual([true]);
    const v11 = { ...(await point('acme', 'a1', 's1', [0, 1], 11)), id: v10.id };
    expect(await store.upsert([v11])).toEqual([true]);
    let [hit] = await search(store, 'acme', [0, 1]);
    expect(hit?.payload).toEqual(v11.payload);
    expect(await store.count({ orgId: 'acme' })).toBe(1);

    // Within one batch: the greatest seq wins whatever the order; mixed with a new point.
    const older = { ...(await point('acme', 'a1', 's1', [1, 0], 12)), id: v10.id };
    const newer = { ...(await point('acme', 'a1', 's1', [0, 1], 13)), id: v10.id };
    const fresh = await point('acme', 'a1', 's2', [1, 1], 1);
    expect(await store.upsert([newer, fresh, older])).toEqual([true, true, false]);
    [hit] = await search(store, 'acme', [0, 1], { segmentId: 's1' });
    expect(hit?.payload.seq).toBe(13);
  });

  it('decides latest-wins for every point of a large batch', async () => {
    const first = await Promise.all(
      Array.from({ length: 150 }, (_, i) => point('acme', 'big', `s${i}`, [1, i % 7], 100)),
    );
    expect((await store.upsert(first)).every(Boolean)).toBe(true);
    const replay = first.map((p, i) => ({
      ...p,
      payload: { ...p.payload, seq: i % 2 ? 50 : 150 },
    }));
    const applied = await store.upsert(replay);
    expect(applied).toEqual(replay.map((_, i) => i % 2 === 0));
    expect(await store.count({ orgId: 'acme' })).toBe(150);
  });

  it('deletes one point or a whole asset and counts what it deleted', async () => {
    const { a, b } = await writeThreePoints(store);
    expect(await store.delete({ orgId: 'acme', pointId: a.id })).toBe(1);
    expect(await store.delete({ orgId: 'acme', pointId: a.id })).toBe(0);
    expect(await store.count({ orgId: 'acme' })).toBe(2);
    expect(await store.delete({ orgId: 'acme', assetId: 'a2' })).toBe(1);
    expect((await search(store, 'acme', [1, 0])).map((x) => x.id)).toEqual([b.id]);
    expect(await store.delete({ orgId: 'acme', assetId: 'a1' })).toBe(1);
    expect(await store.count({ orgId: 'acme' })).toBe(0);
  });

  it('persists across a reopen', async () => {
    const a = await point('acme', 'a1', 's1', [1, 0], 1);
    await store.upsert([a]);
    const again = await h.reopen();
    try {
      await again.init(DIM);
      expect((await search(again, 'acme', [1, 0])).map((x) => x.payload)).toEqual([a.payload]);
    } finally {
      await again.close();
    }
  });

  keywordConformance(() => ({ h, store }));
  chunkConformance(() => ({ h, store }));
}

/** A point with a keyword-index entry: term id → count, and the text's length in terms. */
function withTerms(p: VectorPoint, counts: Record<number, number>, length: number): VectorPoint {
  return { ...p, terms: terms(counts, length) };
}

function terms(counts: Record<number, number>, length?: number): TermVector {
  const ids = Uint32Array.from(Object.keys(counts).map(Number)).sort();
  const tfs = Uint32Array.from(ids, (id) => counts[id] as number);
  return { ids, tfs, length: length ?? tfs.reduce((a, b) => a + b, 0) };
}

const keywordSearch = (
  store: VectorStore,
  orgId: string,
  counts: Record<number, number>,
  more: object = {},
) =>
  store.search({
    mode: 'keyword',
    terms: terms(counts),
    orgId,
    model: MODEL,
    modelVer: '1',
    limit: 10,
    ...more,
  });

const hybridSearch = (
  store: VectorStore,
  orgId: string,
  vector: number[],
  counts: Record<number, number>,
  more: object = {},
) => search(store, orgId, vector, { mode: 'hybrid', terms: terms(counts), ...more });

/**
 * Keyword and hybrid modes, the same in every store. The tiny corpus's BM25 scores are computed
 * by hand (k1 0.9, b 0.4, idf ln(1 + (N − df + 0.5)/(df + 0.5)), N = 3, average length 3):
 *   d1 = {t1: 2, t2: 1} (3 terms), d2 = {t2: 1, t3: 1} (2), d3 = {t3: 3, t4: 1} (4);
 *   idf(t1) = ln(1 + 2.5/1.5) = 0.980829, idf(t3) = ln(1 + 1.5/2.5) = 0.470004;
 *   query {t1, t3}: d1 = 0.980829 · 2·1.9/(2 + 0.9·(0.6 + 0.4·3/3)) = 1.285225,
 *   d3 = 0.470004 · 3·1.9/(3 + 0.9·(0.6 + 0.4·4/3)) = 0.666423,
 *   d2 = 0.470004 · 1.9/(1 + 0.9·(0.6 + 0.4·2/3)) = 0.501689.
 */
function keywordConformance(current: () => { h: Harness; store: VectorStore }): void {
  const corpus = async (org = 'acme') => [
    withTerms(await point(org, 'a1', 'd1', [1, 0], 1), { 1: 2, 2: 1 }, 3),
    withTerms(await point(org, 'a2', 'd2', [0, 1], 2), { 2: 1, 3: 1 }, 2),
    withTerms(await point(org, 'a3', 'd3', [1, 1], 3), { 3: 3, 4: 1 }, 4),
  ];

  it('keyword mode: exact BM25 scores, best first, scoped to the tenant and its model', async () => {
    const { store } = current();
    expect(store.keywordIndex).toBe(true);
    const [d1, d2, d3] = (await corpus()) as [VectorPoint, VectorPoint, VectorPoint];
    await store.upsert([d1, d2, d3]);
    // Another tenant, and another model of the same tenant, with the same term ids: neither is
    // returned, and neither changes the caller's statistics.
    await store.upsert(await corpus('globex'));
    await store.upsert([
      withTerms(await point('acme', 'a9', 'x', [1, 0], 4, { model: 'other-model' }), { 1: 9 }, 9),
    ]);
    const hits = await keywordSearch(store, 'acme', { 1: 1, 3: 1 });
    expect(hits.map((x) => x.id)).toEqual([d1.id, d3.id, d2.id]);
    const expected = [1.285225, 0.666423, 0.501689];
    hits.forEach((hit, i) => expect(hit.score).toBeCloseTo(expected[i] as number, 4));
    expect(hits[0]?.payload).toEqual(d1.payload);
    // A repeated query term counts twice (BM25's query term frequency).
    const twice = await keywordSearch(store, 'acme', { 3: 2 });
    expect(twice.map((x) => x.id)).toEqual([d3.id, d2.id]);
    expect(twice[0]?.score).toBeCloseTo(2 * 0.666423, 4);
    // No term in common: nothing.
    expect(await keywordSearch(store, 'acme', { 77: 1 })).toEqual([]);
  });

  it('keyword mode: filters select the candidates before the limit', async () => {
    const { store } = current();
    const [d1, d2, d3] = (await corpus()) as [VectorPoint, VectorPoint, VectorPoint];
    await store.upsert([d1, d2, d3]);
    const only = await keywordSearch(store, 'acme', { 1: 1, 3: 1 }, { limit: 1, assetId: 'a2' });
    expect(only.map((x) => [x.id, Number(x.score.toFixed(4))])).toEqual([[d2.id, 0.5017]]);
    const some = await keywordSearch(
      store,
      'acme',
      { 1: 1, 3: 1 },
      { limit: 1, filters: { segmentIds: ['d2', 'd3'] } },
    );
    expect(some.map((x) => x.id)).toEqual([d3.id]);
    expect((await keywordSearch(store, 'acme', { 1: 1, 3: 1 }, { limit: 2 })).length).toBe(2);
  });

  it('keyword mode: an overwrite replaces the terms, a delete removes them, a reopen keeps them', async () => {
    const { h, store } = current();
    const [d1, d2, d3] = (await corpus()) as [VectorPoint, VectorPoint, VectorPoint];
    await store.upsert([d1, d2, d3]);
    const rewritten = withTerms(
      { ...d1, payload: { ...d1.payload, seq: 10, job_id: randomUUID() } },
      { 9: 1 },
      1,
    );
    expect(await store.upsert([rewritten])).toEqual([true]);
    // An older write delivered late changes nothing (latest wins for the terms too).
    expect(await store.upsert([d1])).toEqual([false]);
    expect((await keywordSearch(store, 'acme', { 1: 1 })).map((x) => x.id)).toEqual([]);
    expect((await keywordSearch(store, 'acme', { 9: 1 })).map((x) => x.id)).toEqual([d1.id]);
    expect(await store.delete({ orgId: 'acme', assetId: 'a3' })).toBe(1);
    expect((await keywordSearch(store, 'acme', { 3: 1 })).map((x) => x.id)).toEqual([d2.id]);
    const again = await h.reopen();
    try {
      await again.init(DIM);
      expect((await keywordSearch(again, 'acme', { 9: 1, 3: 1 })).map((x) => x.id)).toEqual([
        d1.id,
        d2.id,
      ]);
      expect(await again.delete({ orgId: 'acme', pointId: d2.id })).toBe(1);
      expect((await keywordSearch(again, 'acme', { 3: 1 })).map((x) => x.id)).toEqual([]);
    } finally {
      await again.close();
    }
  });

  /**
   * Dense ranking for [1, 0, 0]: A, B, C, D; keyword ranking for {t1}: C (tf 3), A (tf 1); D has
   * no terms (written before the keyword index). RRF, k 60, equal weights: A = 1/60 + 1/61,
   * C = 1/62 + 1/60, B = 1/61, D = 1/63.
   */
  it('hybrid mode: reciprocal rank fusion of both rankings, weighted, with explain', async () => {
    const { store } = current();
    const a = withTerms(await point('acme', 'a1', 'A', [1, 0, 0], 1), { 1: 1, 2: 1 }, 2);
    const b = withTerms(await point('acme', 'a1', 'B', [0.9, 0.1, 0], 2), { 5: 2 }, 2);
    const c = withTerms(await point('acme', 'a2', 'C', [0.2, 1, 0], 3), { 1: 3, 6: 1 }, 4);
    const d = await point('acme', 'a2', 'D', [-0.1, 0, 1], 4);
    await store.upsert([a, b, c, d]);
    await store.upsert(await corpus('globex'));
    const equal = { fusion: { method: 'rrf', k: 60, weight: 0.5 } };
    // Every hybrid search here: the vector [1, 0, 0] and the keyword {t1}, with `more`.
    const fused = (more: object = {}) => hybridSearch(store, 'acme', [1, 0, 0], { 1: 1 }, more);
    const hits = await fused({ ...equal, explain: true });
    expect(hits.map((x) => x.id)).toEqual([a.id, c.id, b.id, d.id]);
    const expected = [1 / 60 + 1 / 61, 1 / 62 + 1 / 60, 1 / 61, 1 / 63];
    hits.forEach((hit, i) => expect(hit.score).toBeCloseTo(expected[i] as number, 6));
    expect(hits[0]?.explain?.dense).toEqual({ rank: 1, score: expect.closeTo(1, 5) });
    expect(hits[0]?.explain?.keyword?.rank).toBe(2);
    expect(hits[1]?.explain?.keyword?.rank).toBe(1);
    expect(hits[1]?.explain?.keyword?.score).toBeGreaterThan(hits[0]?.explain?.keyword?.score ?? 0);
    expect(hits[3]?.explain).toEqual({
      dense: { rank: 4, score: expect.closeTo(-0.0995, 3) },
      keyword: null,
    });
    expect(hits[3]?.payload).toEqual(d.payload);
    // The weight moves the order toward one ranking (k 1 makes it decisive).
    const dense = await fused({ fusion: { method: 'rrf', k: 1, weight: 0.9 } });
    expect(dense.map((x) => x.id)).toEqual([a.id, b.id, c.id, d.id]);
    const keyword = await fused({ fusion: { method: 'rrf', k: 1, weight: 0.1 } });
    expect(keyword.map((x) => x.id)).toEqual([c.id, a.id, b.id, d.id]);
    expect(keyword[0]?.score).toBeCloseTo(1 / (3 / 0.2) + 1 / (1 / 1.8), 5);
    // Filters apply to both rankings before the limit; the tenant's alone are fused.
    const filtered = await fused({ ...equal, limit: 1, filters: { assetIds: ['a2'] } });
    expect(filtered.map((x) => x.id)).toEqual([c.id]);
    expect((await fused()).length).toBe(4);
    // Points without terms answer dense searches, never keyword ones.
    expect((await keywordSearch(store, 'acme', { 1: 1 })).map((x) => x.id)).toEqual([c.id, a.id]);
    const explained = await search(store, 'acme', [1, 0, 0], { explain: true, limit: 1 });
    expect(explained[0]?.explain).toEqual({
      dense: { rank: 1, score: explained[0]?.score },
      keyword: null,
    });
  });

  /**
   * DBSF (the default fusion), as Qdrant computes it: each ranking's scores mapped by mean ± 3
   * sample sd onto [0, 1] and summed (weighted 2·weight and 2·(1 − weight)). Dense for [1, 0, 0]:
   * A, B, C, D; keyword for {t1}: C far above A. The expected scores come from the rankings'
   * own scores (explain), so a store that normalised otherwise, or fused ranks, fails.
   */
  it('hybrid mode: distribution-based score fusion by default, weighted, as Qdrant computes it', async () => {
    const { store } = current();
    const a = withTerms(await point('acme', 'a1', 'A', [1, 0, 0], 1), { 1: 1, 2: 1 }, 2);
    const b = withTerms(await point('acme', 'a1', 'B', [0.9, 0.1, 0], 2), { 5: 2 }, 2);
    const c = withTerms(await point('acme', 'a2', 'C', [0.2, 1, 0], 3), { 1: 3, 6: 1 }, 4);
    const d = await point('acme', 'a2', 'D', [-0.1, 0, 1], 4);
    await store.upsert([a, b, c, d]);
    await store.upsert(await corpus('globex'));
    const fused = (more: object = {}) =>
      hybridSearch(store, 'acme', [1, 0, 0], { 1: 1 }, { explain: true, ...more });
    const expectDbsf = (hits: SearchHit[], weight: number) => {
      const ranked = (which: 'dense' | 'keyword') =>
        hits
          .filter((h) => h.explain?.[which])
          .sort((x, y) => x.explain![which]!.rank - y.explain![which]!.rank);
      const dense = ranked('dense');
      const keyword = ranked('keyword');
      const dn = dbsfNormalize(dense.map((h) => h.explain!.dense!.score));
      const kn = dbsfNormalize(keyword.map((h) => h.explain!.keyword!.score));
      const want = new Map<string, number>();
      dense.forEach((h, i) => want.set(h.id, 2 * weight * dn[i]!));
      keyword.forEach((h, i) => want.set(h.id, (want.get(h.id) ?? 0) + 2 * (1 - weight) * kn[i]!));
      expect(hits.map((h) => [h.id, h.score])).toEqual(
        [...want].sort((x, y) => y[1] - x[1]).map(([id, score]) => [id, expect.closeTo(score, 4)]),
      );
    };
    const byDefault = await fused();
    expect(byDefault).toHaveLength(4);
    expect(byDefault.map((x) => x.explain?.dense?.rank)).toEqual(
      expect.arrayContaining([1, 2, 3, 4]),
    );
    expectDbsf(byDefault, 0.5);
    // C: keyword first by far, dense third; A: dense first, keyword second. DBSF weighs how far.
    expect(byDefault.map((x) => x.id).slice(0, 2)).toEqual([a.id, c.id]);
    expectDbsf(await fused({ fusion: { method: 'dbsf', k: 10, weight: 0.2 } }), 0.2);
    const keywordHeavy = await fused({ fusion: { method: 'dbsf', k: 10, weight: 0.2 } });
    expect(keywordHeavy[0]?.id).toBe(c.id);
  });
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * What a tenant's searches find: every point a dense search reaches (ids and payloads, sorted
 * by id), and the ids a keyword search for the chunks' shared term 1 reaches (sorted).
 */
async function findable(store: VectorStore, org: string) {
  const dense = await search(store, org, chunkAxis(0), { limit: 100 });
  const keyword = await keywordSearch(store, org, { 1: 1 }, { limit: 100 });
  return {
    dense: dense.map((x) => ({ id: x.id, payload: x.payload })).sort(byId),
    keyword: keyword.map((x) => x.id).sort(),
  };
}

/** What `findable` answers when exactly `points` (all with term 1) are stored. */
function only(points: readonly VectorPoint[]) {
  return {
    dense: points.map((p) => ({ id: p.id, payload: p.payload })).sort(byId),
    keyword: points.map((p) => p.id).sort(),
  };
}

/** Segment writes (VectorStore.writeSegments): one point per chunk of a text, latest wins. */
function chunkConformance(current: () => { h: Harness; store: VectorStore }): void {
  it('segments: a write stopped after the new chunks and before the prune is completed by its retry', async () => {
    const { h, store } = current();
    const three = await chunked('acme', 'a1', 's1', 3, 5);
    await store.writeSegments(three);
    const one = await chunked('acme', 'a1', 's1', 1, 6);
    // The process dies right after the new chunks are stored (as EMBEDDER_FAULTS_FILE's
    // kill_mid_segment_prefix makes it, with SIGKILL, in the reliability suite).
    h.hooks.afterSegmentWrite = () => {
      throw new Error('crashed mid-segment');
    };
    try {
      await expect(store.writeSegments(one)).rejects.toThrow(/crashed mid-segment/);
    } finally {
      delete h.hooks.afterSegmentWrite;
    }
    // What the crash leaves: the new text's chunk 0 next to the old text's chunks 1 and 2.
    expect(await findable(store, 'acme')).toEqual(only([one[0]!, three[1]!, three[2]!]));
    // The job's retry (its same points) completes the write: the new text alone.
    await store.writeSegments(one);
    expect(await findable(store, 'acme')).toEqual(only(one));
    expect(await store.count({ orgId: 'acme' })).toBe(1);
  });

  it('segments: a 3-chunk text overwritten by a 1-chunk text leaves only the new chunk', async () => {
    const { store } = current();
    const three = await chunked('acme', 'a1', 's1', 3, 5);
    expect(await store.writeSegments(three)).toEqual([true, true, true]);
    expect(await findable(store, 'acme')).toEqual(only(three));
    expect(await store.count({ orgId: 'acme' })).toBe(3);
    const one = await chunked('acme', 'a1', 's1', 1, 6);
    // Chunk 0 keeps the segment's point id whatever the text's length.
    expect(one[0]?.id).toBe(three[0]?.id);
    expect(await store.writeSegments(one)).toEqual([true]);
    expect(await store.count({ orgId: 'acme' })).toBe(1);
    expect(await findable(store, 'acme')).toEqual(only(one));
    // Neither the surplus chunks' vectors nor their own terms find anything of theirs.
    for (const stale of three.slice(1)) {
      const hits = await search(store, 'acme', [...stale.vector]);
      expect(hits.map((x) => x.id)).toEqual([one[0]?.id]);
    }
    expect(await keywordSearch(store, 'acme', { 101: 1, 102: 1 })).toEqual([]);
    // And back to more chunks: the new set, whole.
    const two = await chunked('acme', 'a1', 's1', 2, 7);
    expect(await store.writeSegments(two)).toEqual([true, true]);
    expect(await findable(store, 'acme')).toEqual(only(two));
  });

  it('segments: a late older job applies nothing and leaves the newer set intact', async () => {
    const { store } = current();
    const newer = await chunked('acme', 'a1', 's1', 2, 10);
    expect(await store.writeSegments(newer)).toEqual([true, true]);
    // More chunks than the newer text: its chunks 2 and 3 have no newer point of their own id.
    const older = await chunked('acme', 'a1', 's1', 4, 7);
    expect(await store.writeSegments(older)).toEqual([false, false, false, false]);
    expect(await store.count({ orgId: 'acme' })).toBe(2);
    expect(await findable(store, 'acme')).toEqual(only(newer));
    // In one batch with another segment's text: that one lands, the late one still does not.
    const other = await chunked('acme', 'a1', 's2', 2, 8);
    expect(await store.writeSegments([...older, ...other])).toEqual([
      ...older.map(() => false),
      true,
      true,
    ]);
    expect(await findable(store, 'acme')).toEqual(only([...newer, ...other]));
    // Two jobs of one segment in one batch, older first: the newer's set, the older not applied.
    const a = await chunked('acme', 'a2', 's3', 3, 20);
    const b = await chunked('acme', 'a2', 's3', 1, 21);
    expect(await store.writeSegments([...a, ...b])).toEqual([false, false, false, true]);
    expect(await findable(store, 'acme')).toEqual(only([...newer, ...other, ...b]));
  });

  it("segments: an older job's chunks landing after the newer write are removed by the segment's next write", async () => {
    const { store } = current();
    const newer = await chunked('acme', 'a1', 's1', 1, 10);
    const older = await chunked('acme', 'a1', 's1', 3, 5);
    expect(await store.writeSegments(newer)).toEqual([true]);
    // The older job's chunks land after the newer job wrote (per id: chunk 0 is refused, its
    // surplus chunks 1 and 2 have no newer point of their id): the segment holds a mix.
    expect(await store.upsert(older)).toEqual([false, true, true]);
    expect(await store.count({ orgId: 'acme' })).toBe(3);
    // The older job's own segment write (a redelivery) applies nothing and cleans up.
    expect(await store.writeSegments(older)).toEqual([false, false, false]);
    expect(await store.count({ orgId: 'acme' })).toBe(1);
    expect(await findable(store, 'acme')).toEqual(only(newer));
    // Again, cleaned up by a redelivery of the newer job.
    expect(await store.upsert(older)).toEqual([false, true, true]);
    expect(await store.writeSegments(newer)).toEqual([true]);
    expect(await findable(store, 'acme')).toEqual(only(newer));
    // Two writers of one segment at once, the older issued first: the newer's set, whole.
    const slow = await chunked('acme', 'a2', 's2', 4, 30);
    const fast = await chunked('acme', 'a2', 's2', 2, 31);
    const [slowApplied, fastApplied] = await Promise.all([
      store.writeSegments(slow),
      store.writeSegments(fast),
    ]);
    // The newer job is applied; the older one may have been, for a moment, if it wrote first
    // (then the newer write removed it), so its outcome is either.
    expect(fastApplied).toEqual([true, true]);
    expect(new Set(slowApplied).size).toBe(1);
    expect(await findable(store, 'acme')).toEqual(only([...newer, ...fast]));
    expect(await store.count({ orgId: 'acme' })).toBe(3);
  });

  it('segments: an identical redelivery is applied again and changes nothing', async () => {
    const { store } = current();
    const three = await chunked('acme', 'a1', 's1', 3, 5);
    expect(await store.writeSegments(three)).toEqual([true, true, true]);
    const again = three.map((p) => ({ ...p, payload: { ...p.payload } }));
    expect(await store.writeSegments(again)).toEqual([true, true, true]);
    expect(await store.count({ orgId: 'acme' })).toBe(3);
    expect(await findable(store, 'acme')).toEqual(only(three));
  });

  it("segments: a delete by the segment's point id removes all its chunks, by asset all its segments'", async () => {
    const { store } = current();
    const s1 = await chunked('acme', 'a1', 's1', 3, 5);
    const s2 = await chunked('acme', 'a1', 's2', 2, 6);
    const s3 = await chunked('acme', 'a2', 's3', 2, 7);
    await store.writeSegments([...s1, ...s2, ...s3]);
    expect(await store.delete({ orgId: 'acme', pointId: s1[0]?.id as string })).toBe(3);
    expect(await store.delete({ orgId: 'acme', pointId: s1[0]?.id as string })).toBe(0);
    expect(await findable(store, 'acme')).toEqual(only([...s2, ...s3]));
    expect(await store.delete({ orgId: 'acme', assetId: 'a1' })).toBe(2);
    expect(await findable(store, 'acme')).toEqual(only(s3));
    expect(await store.count({ orgId: 'acme' })).toBe(2);
    // A delete is no tombstone: the segment's next job writes it again.
    const back = await chunked('acme', 'a1', 's1', 2, 8);
    expect(await store.writeSegments(back)).toEqual([true, true]);
    expect(await findable(store, 'acme')).toEqual(only([...s3, ...back]));
  });

  it("segments: another organisation's segments are never read, pruned or deleted", async () => {
    const { store } = current();
    // The same asset and segment ids in two orgs (different point ids)...
    const mine = await chunked('acme', 'a1', 's1', 3, 5);
    const theirs = await chunked('globex', 'a1', 's1', 3, 5);
    // ...and a globex point that claims acme's segment, with a newer seq.
    const intruder = await point('globex', 'a9', 'x', chunkAxis(5), 99, {
      segment_point_id: mine[0]?.id as string,
    });
    await store.writeSegments([...theirs, intruder]);
    expect(await store.writeSegments(mine)).toEqual([true, true, true]);
    const one = await chunked('acme', 'a1', 's1', 1, 6);
    expect(await store.writeSegments(one)).toEqual([true]);
    expect(await findable(store, 'acme')).toEqual(only(one));
    const globex = await search(store, 'globex', chunkAxis(0), { limit: 100 });
    expect(globex.map((x) => x.id).sort()).toEqual([...theirs, intruder].map((p) => p.id).sort());
    // Deletes by either org's segment point id stay in the caller's org.
    expect(await store.delete({ orgId: 'acme', pointId: theirs[0]?.id as string })).toBe(0);
    expect(await store.delete({ orgId: 'globex', pointId: mine[0]?.id as string })).toBe(1);
    expect(await store.count({ orgId: 'acme' })).toBe(1);
    expect(await store.delete({ orgId: 'acme', pointId: mine[0]?.id as string })).toBe(1);
    expect(await store.count({ orgId: 'globex' })).toBe(3);
  });

  it("segments: a point written before chunking reads back as its segment's only chunk, and a chunked write replaces it", async () => {
    const { h } = current();
    const old = await point('acme', 'a1', 's1', chunkAxis(0), 5, { truncated_len: 7 });
    const other = await point('acme', 'a1', 's2', chunkAxis(1), 5);
    const store = await h.legacy([old, other]);
    // The defaults: its own segment, chunk 0 of 1, the whole embedded text.
    expect(old.payload).toMatchObject({
      segment_point_id: old.id,
      chunk_index: 0,
      chunk_count: 1,
      chunk_start: 0,
      chunk_end: 7,
    });
    const dense = await search(store, 'acme', chunkAxis(0), { limit: 100 });
    expect(dense.map((x) => ({ id: x.id, payload: x.payload })).sort(byId)).toEqual(
      [old, other].map((p) => ({ id: p.id, payload: p.payload })).sort(byId),
    );
    // An older chunked job of its segment is refused (the old point has no segment field: it
    // is found by its id).
    expect(await store.writeSegments(await chunked('acme', 'a1', 's1', 2, 4))).toEqual([
      false,
      false,
    ]);
    const three = await chunked('acme', 'a1', 's1', 3, 6);
    expect(three[0]?.id).toBe(old.id);
    expect(await store.writeSegments(three)).toEqual([true, true, true]);
    expect(await store.count({ orgId: 'acme' })).toBe(4);
    const hits = await search(store, 'acme', chunkAxis(0), { limit: 100, segmentId: 's1' });
    expect(hits.map((x) => ({ id: x.id, payload: x.payload })).sort(byId)).toEqual(
      only(three).dense,
    );
    // Its next text, of one chunk, leaves just that chunk (and the other segment's old point).
    expect(await store.writeSegments(await chunked('acme', 'a1', 's1', 1, 7))).toEqual([true]);
    expect(await store.count({ orgId: 'acme' })).toBe(2);
    // A delete by an old point's id removes it (its own segment).
    expect(await store.delete({ orgId: 'acme', pointId: other.id })).toBe(1);
    expect(await store.count({ orgId: 'acme' })).toBe(1);
  });
}

/**
 * Runs `fn` on a LanceDB store (initialised) in a fresh folder, then closes the store and removes
 * the folder.
 */
async function withLanceStore(
  prefix: string,
  options: Omit<LanceDbStoreOptions, 'dataDir'>,
  fn: (store: LanceDbStore) => Promise<void>,
): Promise<void> {
  const tmp = await tempDir(prefix);
  const store = new LanceDbStore({ dataDir: tmp.dir, ...options });
  try {
    await store.init(DIM);
    await fn(store);
  } finally {
    await store.close();
    await tmp.remove();
  }
}

/**
 * Creates the table as an embedder before the keyword index and chunking did (no kw_* or chunk
 * columns), holding `points`.
 */
async function writeLegacyTable(dir: string, points: readonly VectorPoint[]): Promise<void> {
  const db = await lancedb.connect(dir);
  const table = await db.createTable(
    'points',
    points.map((p) => ({
      id: p.id,
      vector: Array.from(p.vector),
      ...legacyPayload(p.payload),
      seq: BigInt(p.payload.seq),
    })),
  );
  const columns = (await table.schema()).fields.map((f) => f.name);
  expect(columns.filter((c) => c.startsWith('kw_') || CHUNK_KEYS.includes(c))).toEqual([]);
  table.close();
  db.close();
}

/**
 * A LanceDB store in a fresh folder; `reopen` opens the same folder with the same options,
 * `legacy` a store over an old table in another fresh folder.
 */
function lanceHarness(
  prefix: string,
  options: Omit<LanceDbStoreOptions, 'dataDir' | 'hooks'> = {},
) {
  return async (): Promise<Harness> => {
    const tmp = await tempDir(prefix);
    const hooks: StoreHooks = {};
    const store = new LanceDbStore({ dataDir: tmp.dir, ...options, hooks });
    await store.init(DIM);
    const legacies: { store: LanceDbStore; remove: () => Promise<void> }[] = [];
    return {
      store,
      hooks,
      reopen: async () => new LanceDbStore({ dataDir: tmp.dir, ...options, hooks }),
      legacy: async (points) => {
        const old = await tempDir(`${prefix}-legacy`);
        await writeLegacyTable(old.dir, points);
        const legacy = new LanceDbStore({ dataDir: old.dir, ...options });
        legacies.push({ store: legacy, remove: old.remove });
        expect(await legacy.init(DIM)).toEqual({ dim: DIM, created: false });
        return legacy;
      },
      cleanup: async () => {
        await store.close();
        await tmp.remove();
        for (const l of legacies) {
          await l.store.close();
          await l.remove();
        }
      },
    };
  };
}

describe('VectorStore conformance: LanceDB, searches through LanceDB', () => {
  conformance(lanceHarness('lance-direct', { memoryIndexMaxRows: 0 }));
});

describe('VectorStore conformance: LanceDB with upkeep after every write (compaction, clean-up, reopen)', () => {
  conformance(
    lanceHarness('lance-churn', {
      memoryIndexMaxRows: 0,
      optimizeEveryWrites: 1,
      reopenEveryWrites: 1,
      // Not 0: a search that started on a version must keep its files while it reads them (a
      // grace of 0 lets the upkeep after the last write delete them under a running search).
      versionGraceMs: 1_000,
    }),
  );
});

describe('VectorStore conformance: LanceDB (default: searches through the in-memory index)', () => {
  conformance(lanceHarness('lance'));

  it('opens a table written before the keyword index: its rows answer dense and hybrid searches, new rows all three', async () => {
    const tmp = await tempDir('lance-legacy');
    // The table as an embedder before the keyword index wrote it (no kw_* columns).
    const old = await point('acme', 'a1', 'old', [1, 0], 1);
    await writeLegacyTable(tmp.dir, [old]);
    const store = new LanceDbStore({ dataDir: tmp.dir });
    try {
      expect(await store.init(DIM)).toEqual({ dim: DIM, created: false });
      const fresh = withTerms(await point('acme', 'a1', 'new', [0.9, 0.1], 2), { 1: 1 }, 1);
      await store.upsert([fresh]);
      expect((await search(store, 'acme', [1, 0])).map((x) => x.id)).toEqual([old.id, fresh.id]);
      expect((await keywordSearch(store, 'acme', { 1: 1 })).map((x) => x.id)).toEqual([fresh.id]);
      const hybrid = await hybridSearch(store, 'acme', [1, 0], { 1: 1 }, { explain: true });
      expect(hybrid.map((x) => [x.id, x.explain?.keyword?.rank ?? null])).toEqual([
        [fresh.id, 1],
        [old.id, null],
      ]);
      // Its next job (a resubmission after the upgrade) brings the old point into the index.
      await store.upsert([withTerms({ ...old, payload: { ...old.payload, seq: 3 } }, { 1: 2 }, 2)]);
      expect((await keywordSearch(store, 'acme', { 1: 1 })).map((x) => x.id)).toEqual([
        old.id,
        fresh.id,
      ]);
    } finally {
      await store.close();
      await tmp.remove();
    }
  });

  it('the in-memory index answers exactly as LanceDB does, across writes, overwrites, deletes and a reopen', async () => {
    const tmp = await tempDir('lance-agree');
    const memory = new LanceDbStore({ dataDir: tmp.dir });
    await memory.init(DIM);
    let direct: LanceDbStore | null = null;
    let reopened: LanceDbStore | null = null;
    try {
      // Seeded pseudo-random vectors over 3 orgs, 2 model versions, 6 assets.
      const rand = seededRand(7);
      const points: VectorPoint[] = [];
      for (let i = 0; i < 300; i++) {
        points.push(
          await point(
            `org${i % 3}`,
            `a${i % 6}`,
            `s${i}`,
            Array.from({ length: DIM }, rand),
            i + 1,
            { model_ver: i % 5 === 0 ? '2' : '1', truncated: i % 4 === 0 },
          ),
        );
      }
      await memory.upsert(points.slice(0, 150));
      await memory.upsert(points.slice(150));
      // New vectors for 20 segments (higher seq), one stale write (lower seq), and deletes.
      const overwrites = points.slice(0, 20).map((p, i) => ({
        ...p,
        vector: unit(Array.from({ length: DIM }, rand)),
        payload: { ...p.payload, seq: 1000 + i },
      }));
      expect(await memory.upsert(overwrites)).toEqual(overwrites.map(() => true));
      const stale = { ...(points[30] as VectorPoint), vector: unit([1]) };
      stale.payload = { ...stale.payload, seq: 0 };
      expect(await memory.upsert([stale])).toEqual([false]);
      expect(await memory.delete({ orgId: 'org1', assetId: 'a1' })).toBeGreaterThan(0);
      expect(await memory.delete({ orgId: 'org2', pointId: (points[2] as VectorPoint).id })).toBe(
        1,
      );
      // A delete naming another org's point deletes nothing, in both.
      expect(await memory.delete({ orgId: 'org0', pointId: (points[5] as VectorPoint).id })).toBe(
        0,
      );

      // Segment writes: 3-chunk texts (two concurrent calls), then shorter texts over some, a
      // late older job, an older job's chunk landing late and cleaned up, and segment deletes.
      const randomVectors = (n: number) =>
        Array.from({ length: n }, () => Array.from({ length: DIM }, rand));
      const text = (k: number, count: number, seq: number) =>
        chunked(`org${k % 3}`, `ca${k % 2}`, `c${k}`, count, seq, randomVectors(count));
      const texts: VectorPoint[][] = [];
      for (let k = 0; k < 12; k++) texts.push(await text(k, 3, 2000 + k));
      const [firstHalf, secondHalf] = [texts.slice(0, 6).flat(), texts.slice(6).flat()];
      expect(
        await Promise.all([memory.writeSegments(firstHalf), memory.writeSegments(secondHalf)]),
      ).toEqual([firstHalf.map(() => true), secondHalf.map(() => true)]);
      const shorter = [
        ...(await text(0, 1, 3000)),
        ...(await text(1, 1, 3001)),
        ...(await text(2, 2, 3002)),
        ...(await text(3, 2, 3003)),
      ];
      expect(await memory.writeSegments(shorter)).toEqual(shorter.map(() => true));
      const late = await text(4, 5, 1000);
      expect(await memory.writeSegments(late)).toEqual(late.map(() => false));
      const older = await text(5, 4, 1500);
      expect(await memory.upsert(older)).toEqual([false, false, false, true]);
      expect(await memory.writeSegments(texts[5] as VectorPoint[])).toEqual([true, true, true]);
      const segmentOf = (k: number) => (texts[k]?.[0] as VectorPoint).id;
      expect(await memory.delete({ orgId: 'org0', pointId: segmentOf(6) })).toBe(3);
      expect(await memory.delete({ orgId: 'org1', pointId: segmentOf(7) })).toBe(3);
      expect(await memory.delete({ orgId: 'org1', pointId: segmentOf(8) })).toBe(0);
      // The in-memory copy holds exactly the table's rows.
      let rows = 0;
      for (const orgId of ['org0', 'org1', 'org2']) rows += await memory.count({ orgId });
      expect(memory.memoryIndexStats()?.points).toBe(rows);

      direct = new LanceDbStore({ dataDir: tmp.dir, memoryIndexMaxRows: 0 });
      await direct.init(DIM);
      const queries = [
        { orgId: 'org0' },
        { orgId: 'org1' },
        { orgId: 'org2', limit: 3 },
        { orgId: 'org0', modelVer: '2' },
        { orgId: 'org1', assetId: 'a4' },
        { orgId: 'org2', segmentId: 's8' },
        { orgId: 'org0', filters: { assetIds: ['a0', 'a3'], truncated: true } },
        { orgId: 'org1', filters: { embeddedAfter: new Date(1_700_000_000_100).toISOString() } },
        {
          orgId: 'org2',
          filters: { embeddedBefore: '2023-11-14T22:13:20.100Z', segmentIds: ['s2', 's5', 's11'] },
        },
        { orgId: 'nobody' },
        { orgId: 'org0', segmentId: 'c0' },
        { orgId: 'org1', assetId: 'ca1' },
        { orgId: 'org2', segmentId: 'c5' },
        { orgId: 'org2', filters: { segmentIds: ['c2', 'c5', 'c8'] } },
      ];
      const normalise = (hits: { id: string; score: number; payload: PointPayload }[]) =>
        hits.map((h) => ({ ...h, score: Math.round(h.score * 1e4) / 1e4 }));
      const paramsFor = (q: (typeof queries)[number]) => ({
        vector: unit(Array.from({ length: DIM }, rand)),
        model: MODEL,
        modelVer: '1',
        limit: 10,
        ...q,
      });
      for (const q of queries) {
        const params = paramsFor(q);
        const fromMemory = await memory.search(params);
        expect(normalise(fromMemory)).toEqual(normalise(await direct.search(params)));
        if (q.orgId !== 'nobody') expect(fromMemory.length).toBeGreaterThan(0);
      }
      // The keyword index, kept in step with every write, prune and delete, agrees with the one
      // the other store rebuilt from the table.
      for (const orgId of ['org0', 'org1', 'org2']) {
        const params = {
          mode: 'keyword' as const,
          terms: terms({ 1: 1, 101: 1 }),
          orgId,
          model: MODEL,
          modelVer: '1',
          limit: 50,
        };
        const fromMemory = await memory.search(params);
        expect(fromMemory.length).toBeGreaterThan(0);
        expect(normalise(fromMemory)).toEqual(normalise(await direct.search(params)));
      }
      // A restart loads the copy from disk and still agrees.
      await memory.close();
      reopened = new LanceDbStore({ dataDir: tmp.dir });
      await reopened.init(DIM);
      for (const q of queries) {
        const params = paramsFor(q);
        expect(normalise(await reopened.search(params))).toEqual(
          normalise(await direct.search(params)),
        );
      }
    } finally {
      await memory.close();
      await direct?.close();
      await reopened?.close();
      await tmp.remove();
    }
  });

  it('releases the in-memory index once the table outgrows it, and search stays correct', async () => {
    await withLanceStore('lance-release', { memoryIndexMaxRows: 50 }, async (store) => {
      const points = await Promise.all(
        Array.from({ length: 80 }, (_, i) => point('acme', 'a', `s${i}`, [1, i / 10, 0.5], i + 1)),
      );
      await store.upsert(points.slice(0, 40));
      expect(store.servesFromMemory).toBe(true);
      await store.upsert(points.slice(40));
      expect(store.servesFromMemory).toBe(false);
      const target = points[77] as VectorPoint;
      const [top] = await search(store, 'acme', [...target.vector], { limit: 1 });
      expect(top?.id).toBe(target.id);
    });
  });

  it('group-commits concurrent upserts into few writes, latest wins across callers', async () => {
    await withLanceStore('lance-group', {}, async (store) => {
      const points = await Promise.all(
        Array.from({ length: 40 }, (_, i) => point('acme', 'g', `s${i}`, [1, i / 40], i + 1)),
      );
      // The same segment twice in two concurrent calls: the higher seq must win.
      const older = await point('acme', 'g', 'dup', [0, 1], 100);
      const newer = { ...(await point('acme', 'g', 'dup', [1, 0], 101)), id: older.id };
      const before = store.mergeCount;
      const results = await Promise.all([
        ...points.map((p) => store.upsert([p])),
        store.upsert([older]),
        store.upsert([newer]),
      ]);
      expect(results.slice(0, 40)).toEqual(points.map(() => [true]));
      expect(results.slice(40)).toEqual([[false], [true]]);
      // 42 concurrent calls, far fewer writes (the first goes alone, the rest wait together).
      expect(store.mergeCount - before).toBeLessThanOrEqual(3);
      expect(await store.count({ orgId: 'acme' })).toBe(41);
      const [top] = await search(store, 'acme', [1, 0], { segmentId: 'dup' });
      expect(top?.payload.seq).toBe(101);
    });
  });

  it('builds an ANN index once the table is large, and search stays correct', async () => {
    const options = { vectorIndexThreshold: 300, optimizeEveryWrites: 2 };
    await withLanceStore('lance-index', options, async (store) => {
      const points: VectorPoint[] = [];
      for (let i = 0; i < 400; i++) {
        const angle = (i / 400) * Math.PI;
        points.push(
          await point(
            i % 2 ? 'acme' : 'globex',
            `a${i}`,
            's',
            [Math.cos(angle), Math.sin(angle), i % 3],
            i + 1,
          ),
        );
      }
      await store.upsert(points.slice(0, 200));
      await store.upsert(points.slice(200));
      await store.idle();
      expect(await store.hasAnnIndex()).toBe(true);
      const target = points[201] as VectorPoint;
      const hits = await search(store, 'acme', [...target.vector], { limit: 5 });
      expect(hits[0]?.id).toBe(target.id);
      expect(hits[0]?.score).toBeGreaterThan(0.999);
      expect(hits.every((x) => x.payload.org_id === 'acme')).toBe(true);
      expect(await store.count({ orgId: 'acme' })).toBe(200);
      // Hybrid asks the ANN index for 4 × limit dense candidates but has it refine no more than
      // a dense search does: its dense ranking starts with the dense search's hits, in the same
      // order, with the same exact scores.
      const hybrid = await hybridSearch(
        store,
        'acme',
        [...target.vector],
        { 1: 1 },
        {
          limit: 5,
          explain: true,
          fusion: { method: 'rrf', k: 60, weight: 1 },
        },
      );
      expect(hybrid.map((x) => x.id)).toEqual(hits.map((x) => x.id));
      expect(hybrid.map((x) => x.explain?.dense)).toEqual(
        hits.map((x, i) => ({ rank: i + 1, score: x.score })),
      );
    });
  });
});

// A real Qdrant is not available on every machine (no Docker here); these cases run only when
// QDRANT_URL points at one, e.g. `QDRANT_URL=http://localhost:6333 npm run test:unit`. The
// adapter's requests are checked without a server in qdrant.contract.test.ts.
const qdrantUrl = process.env.QDRANT_URL;

/**
 * The test collections of one suite on the Qdrant at QDRANT_URL: `fresh` names a new one, `store`
 * opens a store over one, `admin` is a plain client; every collection is dropped after the suite.
 */
function qdrantCollections() {
  const collections: string[] = [];
  const admin = () =>
    new QdrantClient({
      url: qdrantUrl as string,
      apiKey: process.env.QDRANT_API_KEY,
      checkCompatibility: false,
    });
  afterAll(async () => {
    for (const c of collections)
      await admin()
        .deleteCollection(c)
        .catch(() => undefined);
  });
  return {
    admin,
    fresh: () => {
      const collection = `heimdex_test_${randomUUID().replaceAll('-', '')}`;
      collections.push(collection);
      return collection;
    },
    store: (collection: string, options: { keywordAvgLength?: number; hooks?: StoreHooks } = {}) =>
      new QdrantStore({
        url: qdrantUrl as string,
        apiKey: process.env.QDRANT_API_KEY ?? null,
        collection,
        ...options,
      }),
  };
}

describe.skipIf(!qdrantUrl)('VectorStore conformance: Qdrant (needs QDRANT_URL)', () => {
  const qdrant = qdrantCollections();

  conformance(async () => {
    const collection = qdrant.fresh();
    // The tiny keyword corpus's true average length (Qdrant's weights are fixed at write).
    const hooks: StoreHooks = {};
    const make = () => qdrant.store(collection, { keywordAvgLength: 3, hooks });
    const store = make();
    await store.init(DIM);
    return {
      store,
      hooks,
      reopen: async () => make(),
      // Qdrant has no schema: an old point is one whose payload lacks the chunk fields.
      legacy: async (points) => {
        await qdrant.admin().upsert(collection, {
          wait: true,
          points: points.map((p) => ({
            id: p.id,
            vector: Array.from(p.vector),
            payload: legacyPayload(p.payload),
          })),
        });
        return store;
      },
      cleanup: async () => {
        await store.close();
        await qdrant.admin().deleteCollection(collection);
      },
    };
  });
});

// Two store instances over one collection are two embedder replicas behind a load balancer:
// latest-wins and delete must hold through Qdrant alone, with no state shared between them.
describe.skipIf(!qdrantUrl)(
  'Qdrant: two replicas writing the same points (needs QDRANT_URL)',
  () => {
    const qdrant = qdrantCollections();
    const { admin } = qdrant;
    let collection: string;
    let replicaA: QdrantStore;
    let replicaB: QdrantStore;

    beforeEach(async () => {
      collection = qdrant.fresh();
      replicaA = qdrant.store(collection);
      replicaB = qdrant.store(collection);
      // Both open (and may both try to create) the collection at once.
      const opened = await Promise.all([replicaA.init(DIM), replicaB.init(DIM)]);
      expect(opened.map((o) => o.dim)).toEqual([DIM, DIM]);
      expect(opened.filter((o) => o.created).length).toBeLessThanOrEqual(1);
    });
    afterEach(async () => {
      await admin().deleteCollection(collection);
    });

    it('an older seq written through one replica never replaces a newer one from the other', async () => {
      // Replica B has never seen this point: only the store can tell it that seq 10 is stored.
      const { v10, v5 } = await olderSeqIsRefused(replicaA, replicaB);
      // A newer seq through B lands; the same old seq again through A still does not.
      const v11 = { ...(await point('acme', 'a1', 's1', [0, 1], 11)), id: v10.id };
      expect(await replicaB.upsert([v11])).toEqual([true]);
      expect(await replicaA.upsert([v5])).toEqual([false]);
      expect((await search(replicaA, 'acme', [0, 1]))[0]?.payload).toEqual(v11.payload);
      expect(await replicaA.count({ orgId: 'acme' })).toBe(1);
    });

    it('racing writes of one point with different seqs: the greatest seq is stored, whatever lands first', async () => {
      const rand = seededRand(11);
      for (let round = 0; round < 25; round++) {
        const base = await point('acme', 'race', `s${round}`, [1, 0], 1);
        const seqs = [100 + round * 2, 101 + round * 2];
        if (rand() < 0.5) seqs.reverse();
        const writes = await Promise.all(
          seqs.map(async (seq, i) => ({
            ...(await point('acme', 'race', `s${round}`, [i, 1 - i, rand()], seq)),
            id: base.id,
          })),
        );
        const [toA, toB] = writes as [VectorPoint, VectorPoint];
        const newer = toA.payload.seq > toB.payload.seq ? 0 : 1;
        const applied = await Promise.all([replicaA.upsert([toA]), replicaB.upsert([toB])]);
        // The newer write always reports applied (nothing newer exists); the older one may have
        // landed first and been replaced, or been refused.
        expect(applied[newer]).toEqual([true]);
        const [hit] = await search(replicaA, 'acme', [1, 0], { segmentId: `s${round}` });
        expect(hit?.payload).toEqual(writes[newer]?.payload);
        expect(hit?.id).toBe(base.id);
      }
      expect(await replicaB.count({ orgId: 'acme' })).toBe(25);
    });

    it('racing batches over the same ids from both replicas keep the greatest seq of every id', async () => {
      const ids = await Promise.all(
        Array.from({ length: 60 }, (_, i) => point('acme', 'batch', `s${i}`, [1, i], 1)),
      );
      // Each replica gets 4 batches; for every id the seqs are spread over both replicas and
      // the four rounds, in an order that differs per id.
      const rand = seededRand(5);
      const maxSeq = new Map<string, number>();
      const batches: { replica: QdrantStore; points: VectorPoint[] }[] = [];
      for (let round = 0; round < 4; round++) {
        for (const [r, store] of [replicaA, replicaB].entries()) {
          const pts = ids.map((p, i) => {
            const seq = 1 + Math.floor(rand() * 1000) * 8 + round * 2 + r;
            maxSeq.set(p.id, Math.max(maxSeq.get(p.id) ?? 0, seq));
            return {
              ...p,
              vector: unit([1, i, seq]),
              payload: { ...p.payload, seq, job_id: randomUUID() },
            };
          });
          batches.push({ replica: store, points: pts });
        }
      }
      await Promise.all(batches.map((b) => b.replica.upsert(b.points)));
      const probe = admin();
      const stored = await probe.retrieve(collection, {
        ids: ids.map((p) => p.id),
        with_payload: ['seq'],
      });
      expect(stored).toHaveLength(60);
      for (const r of stored) expect(Number(r.payload?.seq)).toBe(maxSeq.get(String(r.id)));
      // Replaying every batch again (a redelivery of all of them) changes nothing.
      const replay = await Promise.all(batches.map((b) => b.replica.upsert(b.points)));
      batches.forEach((b, k) =>
        expect(replay[k]).toEqual(b.points.map((p) => p.payload.seq === maxSeq.get(p.id))),
      );
      expect(await replicaA.count({ orgId: 'acme' })).toBe(60);
    });

    it("racing segment writes from both replicas converge to the newest job's chunks, whatever lands first", async () => {
      const rand = seededRand(13);
      const segments: VectorPoint[][] = [];
      for (let round = 0; round < 10; round++) {
        // An older text of 4 chunks and a newer one of 1 or 2, through different replicas.
        const older = await chunked('acme', 'race', `s${round}`, 4, 100 + 2 * round);
        const newer = await chunked('acme', 'race', `s${round}`, 1 + (round % 2), 101 + 2 * round);
        const [toA, toB] = rand() < 0.5 ? [older, newer] : [newer, older];
        const [a, b] = await Promise.all([
          replicaA.writeSegments(toA),
          replicaB.writeSegments(toB),
        ]);
        expect(toA === newer ? a : b).toEqual(newer.map(() => true));
        segments.push(newer);
      }
      const stored = await search(replicaA, 'acme', chunkAxis(0), { limit: 100 });
      expect(stored.map((x) => ({ id: x.id, payload: x.payload })).sort(byId)).toEqual(
        only(segments.flat()).dense,
      );
    });

    it('deletes by point and by asset through one replica are seen by the other at once', async () => {
      const { a, b, c } = await writeThreePoints(replicaA);
      expect(await replicaB.delete({ orgId: 'acme', pointId: a.id })).toBe(1);
      expect((await search(replicaA, 'acme', [1, 0])).map((x) => x.id).sort()).toEqual(
        [b.id, c.id].sort(),
      );
      expect(await replicaA.delete({ orgId: 'acme', pointId: a.id })).toBe(0);
      expect(await replicaB.delete({ orgId: 'globex', assetId: 'a1' })).toBe(0);
      expect(await replicaB.delete({ orgId: 'acme', assetId: 'a1' })).toBe(1);
      expect((await search(replicaA, 'acme', [1, 0])).map((x) => x.id)).toEqual([c.id]);
      // A delete is no tombstone (the Worker cancels a deleted target's jobs): the segment's
      // next job writes its vector again, through either replica.
      const again = { ...(await point('acme', 'a1', 's1', [1, 0], 9)), id: a.id };
      expect(await replicaA.upsert([again])).toEqual([true]);
      expect((await search(replicaB, 'acme', [1, 0], { assetId: 'a1' }))[0]?.payload).toEqual(
        again.payload,
      );
    });

    it('a delete racing writes of the same asset from the other replica leaves no partial state', async () => {
      const pts = await Promise.all(
        Array.from({ length: 40 }, (_, i) => point('acme', 'gone', `s${i}`, [1, i], 10)),
      );
      await replicaA.upsert(pts);
      const newer = pts.map((p) => ({ ...p, payload: { ...p.payload, seq: 20 } }));
      const [, deleted] = await Promise.all([
        replicaA.upsert(newer),
        replicaB.delete({ orgId: 'acme', assetId: 'gone' }),
      ]);
      expect(deleted).toBeGreaterThanOrEqual(0);
      // Whatever the interleaving, each stored point is whole: the newer write (seq 20) or gone.
      const left = await admin().retrieve(collection, {
        ids: pts.map((p) => p.id),
        with_payload: ['seq'],
      });
      for (const r of left) expect(Number(r.payload?.seq)).toBe(20);
      // Deleting once more through either replica empties the asset.
      await replicaA.delete({ orgId: 'acme', assetId: 'gone' });
      expect(await replicaB.count({ orgId: 'acme' })).toBe(0);
    });
  },
);
