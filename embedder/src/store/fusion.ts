/**
 * Hybrid search's fusion, computed exactly as Qdrant's Query API computes it, so both stores rank
 * alike: `dbsf` as `fusion: "dbsf"` (lib/segment/src/common/score_fusion.rs: each ranking's
 * scores normalised by its mean ± 3 sample standard deviations, then summed — here with the
 * rankings' weights, which Qdrant's DBSF does not take: at equal weights, the default, the two
 * agree), `rrf` as `rrf` with `k` and `weights` (reciprocal_rank_fusion.rs: a hit at 0-based
 * position p of a ranking with weight w adds 1 / ((p + 1) / w + k − 1)). A weight of 0 adds
 * nothing. Each store applies the tenant scope and the filters to both rankings before their
 * limits; this only merges them.
 */
import type { Fusion, RankInfo, SearchHit } from './types.js';
export { DEFAULT_FUSION } from '../../../contract/internal.js';

/** The fewest hits each ranking contributes to a hybrid search (below 4 × limit). */
export const MIN_HYBRID_CANDIDATES = 100;

/**
 * Hits each ranking contributes to a hybrid search of `limit` results (Qdrant's prefetch limit):
 * 4 × limit, at least 100, at most 1,000. DBSF normalises each ranking by its own mean and spread,
 * which 40 hits (limit 10) estimate poorly: on SciFact train 100 candidates gave nDCG@10 0.7340
 * against 40's 0.7300, and RRF gained too (0.7293 against 0.7262; eval/fusion-lab.ts). Deeper
 * lists than that barely move the top of either fusion but cost the dense search more.
 */
export function hybridCandidates(limit: number, candidates?: number): number {
  return Math.max(limit, candidates ?? Math.min(1000, Math.max(MIN_HYBRID_CANDIDATES, 4 * limit)));
}

/** The two rankings' weights (Qdrant's `rrf.weights`): [dense, keyword]. */
export function fusionWeights(fusion: Fusion): [number, number] {
  return [2 * fusion.weight, 2 * (1 - fusion.weight)];
}

/** One ranking's contribution at 0-based `position` (Qdrant's `position_score`). */
export function rrfScore(position: number, k: number, weight: number): number {
  if (weight <= 0) return 0;
  return 1 / ((position + 1) / weight + k - 1);
}

/**
 * Distribution-based score normalisation, as Qdrant's `dbsf` fusion computes it
 * (lib/segment/src/common/score_fusion.rs `distr_norm`): each score mapped by the ranking's mean
 * ± 3 sample standard deviations onto [0, 1] (not clipped: an outlier far above the rest scores
 * above 1, which is what lets one decisive match outweigh many middling ones). A ranking of one
 * hit, or of equal scores, scores 0.5 each.
 */
export function dbsfNormalize(scores: readonly number[]): number[] {
  const n = scores.length;
  if (n < 2) return scores.map(() => 0.5);
  let mean = 0;
  let aggregate = 0;
  scores.forEach((s, i) => {
    const before = s - mean;
    mean += before / (i + 1);
    aggregate += before * (s - mean);
  });
  const std = Math.sqrt(aggregate / (n - 1));
  const min = mean - 3 * std;
  const max = mean + 3 * std;
  if (min === max) return scores.map(() => 0.5);
  return scores.map((s) => (s - min) / (max - min));
}

/** Fuses a dense and a keyword ranking (each best first) into the best `limit` hits. */
export function fuse(
  dense: readonly SearchHit[],
  keyword: readonly SearchHit[],
  fusion: Fusion,
  limit: number,
  explain = false,
): SearchHit[] {
  const [denseWeight, keywordWeight] = fusionWeights(fusion);
  const fused = new Map<string, SearchHit>();
  const add = (hits: readonly SearchHit[], weight: number) => {
    if (weight <= 0) return;
    const normalized = fusion.method === 'dbsf' ? dbsfNormalize(hits.map((h) => h.score)) : null;
    hits.forEach((hit, position) => {
      const score = normalized
        ? weight * (normalized[position] as number)
        : rrfScore(position, fusion.k, weight);
      const seen = fused.get(hit.id);
      if (seen) seen.score += score;
      else fused.set(hit.id, { id: hit.id, score, payload: hit.payload });
    });
  };
  add(dense, denseWeight);
  add(keyword, keywordWeight);
  const ranked = [...fused.values()]
    .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, limit);
  return explain ? annotate(ranked, dense, keyword) : ranked;
}

/** Adds each hit's rank and score in the dense and keyword rankings (null where absent). */
export function annotate(
  hits: readonly SearchHit[],
  dense: readonly SearchHit[] | null,
  keyword: readonly SearchHit[] | null,
): SearchHit[] {
  const places = (ranking: readonly SearchHit[] | null) =>
    new Map<string, RankInfo>(
      (ranking ?? []).map((hit, i) => [hit.id, { rank: i + 1, score: hit.score }]),
    );
  const d = places(dense);
  const k = places(keyword);
  return hits.map((hit) => ({
    ...hit,
    explain: { dense: d.get(hit.id) ?? null, keyword: k.get(hit.id) ?? null },
  }));
}

/** The best hit of each segment (its first in `hits`, which are best first), in order. */
export function bestPerSegment(hits: readonly SearchHit[]): SearchHit[] {
  const seen = new Set<string>();
  return hits.filter((h) => {
    if (seen.has(h.payload.segment_point_id)) return false;
    seen.add(h.payload.segment_point_id);
    return true;
  });
}

/**
 * Hybrid search by segment: each ranking of chunks (best first) becomes a ranking of segments
 * (a segment placed where its best chunk is), and those are fused as `fuse` fuses, so a
 * segment's dense and keyword evidence add up even when different points carry them (fusing
 * chunks first splits it: a long text's keyword terms are on its first point, its best passage
 * is often another chunk). For texts of one chunk both ways agree exactly. A result is the
 * segment's best dense chunk (the passage closest in meaning: its offsets are what a client
 * highlights), or its keyword hit where the dense ranking did not reach it, with the segment's
 * fused score; `explain` gives the segment's rank and score in each ranking.
 */
export function fuseSegments(
  dense: readonly SearchHit[],
  keyword: readonly SearchHit[],
  fusion: Fusion,
  limit: number,
  explain = false,
): SearchHit[] {
  // Each ranking contributes its best `hybridCandidates(limit)` segments, as a store's hybrid
  // search takes that many hits of each (DBSF's statistics are those of the lists it is given).
  const depth = fusion.method === 'dbsf' ? hybridCandidates(limit) : Infinity;
  const denseBest = bestPerSegment(dense).slice(0, depth);
  const keywordBest = bestPerSegment(keyword).slice(0, depth);
  const asSegments = (hits: readonly SearchHit[]) =>
    hits.map((h) => ({ ...h, id: h.payload.segment_point_id }));
  const chunkOf = new Map<string, SearchHit>();
  for (const h of [...keywordBest, ...denseBest]) chunkOf.set(h.payload.segment_point_id, h);
  return fuse(asSegments(denseBest), asSegments(keywordBest), fusion, limit, explain).map((r) => {
    const chunk = chunkOf.get(r.id) as SearchHit;
    return {
      id: chunk.id,
      score: r.score,
      payload: chunk.payload,
      ...(r.explain === undefined ? {} : { explain: r.explain }),
    };
  });
}
