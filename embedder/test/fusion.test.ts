/**
 * Hybrid fusion by segment (fusion.ts's fuseSegments): a segment's dense and keyword evidence add
 * up even when different points carry them; one-chunk segments fuse exactly as chunks do.
 */
import { describe, expect, it } from 'vitest';
import type { PointPayload } from '../../contract/internal.js';
import { fuse, fuseSegments, rrfScore } from '../src/store/fusion.js';
import type { SearchHit } from '../src/store/types.js';

const FUSION = { k: 10, weight: 0.7 };
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
});
