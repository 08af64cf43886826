/**
 * Hybrid fusion (fusion.ts): DBSF as Qdrant normalises scores, and fusion by segment
 * (fuseSegments): a segment's dense and keyword evidence add up even when different points carry
 * them; one-chunk segments fuse exactly as chunks do.
 */
import { describe, expect, it } from 'vitest';
import type { PointPayload } from '../../contract/internal.js';
import {
  dbsfNormalize,
  fuse,
  fuseSegments,
  hybridCandidates,
  rrfScore,
} from '../src/store/fusion.js';
import type { SearchHit } from '../src/store/types.js';

const FUSION = { method: 'rrf', k: 10, weight: 0.7 } as const;
const [DENSE_W, KEYWORD_W] = [2 * FUSION.weight, 2 * (1 - FUSION.weight)];

/** A chunk hit `id` of segment `segment` (chunk index from the id's digit). */
function hit(id: string, segment: string, score = 1): SearchHit {
  return {
    id,
    score,
    payload: {
      segment_point_id: segment,
      segment_id: segment,
      chunk_index: Number(id.at(-1)),
    } as unknown as PointPayload,
  };
}

describe('dbsfNormalize', () => {
  it("maps scores by mean ± 3 sample standard deviations, as Qdrant's distr_norm", () => {
    // [3, 1]: mean 2, sample sd √2, so [2 − 3√2, 2 + 3√2] → [0, 1].
    const [hi, lo] = dbsfNormalize([3, 1]) as [number, number];
    expect(hi).toBeCloseTo((1 + 3 * Math.SQRT2) / (6 * Math.SQRT2), 12);
    expect(lo).toBeCloseTo((3 * Math.SQRT2 - 1) / (6 * Math.SQRT2), 12);
    // Not clipped: an outlier far above the rest scores above 1.
    const outlier = dbsfNormalize([50, ...Array.from({ length: 99 }, (_, i) => 1 + i / 1000)]);
    expect(outlier[0]).toBeGreaterThan(1);
    // One hit or equal scores: 0.5 each, as Qdrant (no division by zero).
    expect(dbsfNormalize([7])).toEqual([0.5]);
    expect(dbsfNormalize([2, 2, 2])).toEqual([0.5, 0.5, 0.5]);
    expect(dbsfNormalize([])).toEqual([]);
  });

  it('fuses by weighted sums of the normalised scores; a decisive keyword match wins', () => {
    // Dense: X and Y nearly tied, Z further; keyword: Z far above the rest (a rare name).
    // Seven more segments each, ranked below them.
    const fillers = (scores: number[]) => scores.map((sc, i) => hit(`f${i}`, `F${i}`, sc));
    const dense = [
      hit('x0', 'X', 0.62),
      hit('y0', 'Y', 0.61),
      hit('z0', 'Z', 0.5),
      ...fillers([0.45, 0.44, 0.43, 0.42, 0.41, 0.4, 0.4]),
    ];
    const keyword = [
      hit('z0', 'Z', 14),
      hit('x0', 'X', 2.1),
      hit('y0', 'Y', 2),
      ...fillers([1.9, 1.8, 1.7, 1.6, 1.5, 1.4, 1.3]),
    ];
    const dbsf = { method: 'dbsf', k: 10, weight: 0.5 } as const;
    const out = fuse(dense, keyword, dbsf, 3);
    const d = dbsfNormalize(dense.map((h) => h.score));
    const k = dbsfNormalize(keyword.map((h) => h.score));
    expect(out.map((h) => h.id)).toEqual(['z0', 'x0', 'y0']);
    expect(out[0]!.score).toBeCloseTo(d[2]! + k[0]!, 12);
    expect(out[1]!.score).toBeCloseTo(d[0]! + k[1]!, 12);
    // RRF sees ranks only: X (1st and 2nd) beats Z (3rd and 1st) at equal weights.
    const rrf = fuse(dense, keyword, { method: 'rrf', k: 10, weight: 0.5 }, 3);
    expect(rrf[0]!.id).toBe('x0');
    // Weights scale each ranking's share; weight 1 leaves the dense ranking alone.
    const denseOnly = fuse(dense, keyword, { ...dbsf, weight: 1 }, 3);
    expect(denseOnly.map((h) => h.id)).toEqual(['x0', 'y0', 'z0']);
    expect(denseOnly[0]!.score).toBeCloseTo(2 * d[0]!, 12);
  });

  it('takes at least 100 candidates from each ranking, 4 × limit above that, at most 1,000', () => {
    expect(hybridCandidates(10)).toBe(100);
    expect(hybridCandidates(50)).toBe(200);
    expect(hybridCandidates(100)).toBe(400);
    expect(hybridCandidates(500)).toBe(1000);
    expect(hybridCandidates(10, 30)).toBe(30);
  });
});

describe('fuseSegments', () => {
  it("adds a segment's dense and keyword shares when different chunks carry them", () => {
    // Segment A: chunk a1 is the best dense hit, chunk a0 the second keyword hit.
    const dense = [hit('a1', 'A'), hit('c0', 'C'), hit('b0', 'B'), hit('a0', 'A')];
    const keyword = [hit('b0', 'B'), hit('a0', 'A'), hit('d0', 'D')];
    const out = fuseSegments(dense, keyword, FUSION, 10, true);
    expect(out.map((h) => h.payload.segment_point_id)).toEqual(['A', 'B', 'C', 'D']);
    const a = out[0]!;
    expect(a.score).toBeCloseTo(rrfScore(0, 10, DENSE_W) + rrfScore(1, 10, KEYWORD_W), 12);
    expect(a.explain).toEqual({ dense: { rank: 1, score: 1 }, keyword: { rank: 2, score: 1 } });
    // Its chunk: its best dense chunk, the passage closest in meaning.
    expect(a.id).toBe('a1');
    expect(a.payload.chunk_index).toBe(1);
    // A segment the dense ranking did not reach is its keyword hit.
    expect(out[3]!.id).toBe('d0');
    expect(out[3]!.explain).toEqual({ dense: null, keyword: { rank: 3, score: 1 } });

    // Fusing chunks first would have split A's evidence: B (keyword 1 + dense 3) beats it.
    const chunkFirst = fuse(dense, keyword, FUSION, 10);
    expect(chunkFirst[0]!.payload.segment_point_id).toBe('B');
  });

  it('equals the chunk-level fusion when every segment is one chunk', () => {
    const dense = ['p0', 'q0', 'r0', 's0'].map((id) => hit(id, id.toUpperCase()));
    const keyword = ['s0', 't0', 'p0'].map((id) => hit(id, id.toUpperCase()));
    const bySegment = fuseSegments(dense, keyword, FUSION, 3, true);
    const byChunk = fuse(dense, keyword, FUSION, 3, true);
    expect(bySegment).toEqual(byChunk);
  });

  it('keeps limit segments, and a segment found by one ranking only', () => {
    const dense = [hit('a0', 'A'), hit('a1', 'A'), hit('a2', 'A')];
    const keyword = [hit('z0', 'Z')];
    const out = fuseSegments(dense, keyword, FUSION, 1, true);
    expect(out).toHaveLength(1);
    expect(out[0]!.id).toBe('a0');
    expect(out[0]!.explain).toEqual({ dense: { rank: 1, score: 1 }, keyword: null });
    expect(fuseSegments(dense, keyword, FUSION, 5).map((h) => h.id)).toEqual(['a0', 'z0']);
  });

  it("DBSF: normalises over each ranking's best hybridCandidates(limit) segments", () => {
    // 150 one-chunk segments in each ranking; with limit 10 only the best 100 of each count.
    const dense = Array.from({ length: 150 }, (_, i) => hit(`s${i}-0`, `S${i}`, 1 - i / 1000));
    const keyword = Array.from({ length: 150 }, (_, i) => hit(`k${i}-0`, `K${i}`, 150 - i));
    const dbsf = { method: 'dbsf', k: 10, weight: 0.5 } as const;
    const out = fuseSegments(dense, keyword, dbsf, 10);
    const d = dbsfNormalize(dense.slice(0, 100).map((h) => h.score));
    const k = dbsfNormalize(keyword.slice(0, 100).map((h) => h.score));
    const expected = [
      ...dense.slice(0, 100).map((h, i) => [h.id, d[i]!] as const),
      ...keyword.slice(0, 100).map((h, i) => [h.id, k[i]!] as const),
    ]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10);
    expect(out.map((h) => [h.id, h.score])).toEqual(
      expected.map(([id, score]) => [id, expect.closeTo(score, 12)]),
    );
  });
});
