import { describe, expect, it } from 'vitest';
import { mrrAt, ndcgAt, recallAt, summarizeRun, trecOrder } from './lib/metrics.js';
import type { Qrels, Run } from './lib/metrics.js';

const judged = (entries: Record<string, number>) => new Map(Object.entries(entries));
const scores = (entries: Record<string, number>) => new Map(Object.entries(entries));

describe('trecOrder (trec_eval comp_sim_docno)', () => {
  it('sorts by score descending', () => {
    expect(trecOrder(scores({ a: 0.1, b: 0.9, c: 0.5 })).map(([d]) => d)).toEqual(['b', 'c', 'a']);
  });

  it('breaks ties by document id descending, as strcmp does (not numerically)', () => {
    const order = trecOrder(scores({ '10': 0.5, '9': 0.5, '100': 0.5, x: 0.7 }));
    expect(order.map(([d]) => d)).toEqual(['x', '9', '100', '10']);
  });

  it('treats scores equal in float32 as ties', () => {
    // 0.5 and 0.5 + 1e-9 are the same float32: the id decides.
    const order = trecOrder(scores({ a: 0.5 + 1e-9, b: 0.5 }));
    expect(order.map(([d]) => d)).toEqual(['b', 'a']);
    // 1e-6 apart is more than a float32 step at 0.5 (6e-8): the score decides.
    expect(trecOrder(scores({ a: 0.5 + 1e-6, b: 0.5 })).map(([d]) => d)).toEqual(['a', 'b']);
  });

  it('compares ids by UTF-8 bytes', () => {
    // U+FF21 (EF BC A1 in UTF-8) sorts below U+1F600 (F0 9F 98 80), though its UTF-16 unit is higher.
    const order = trecOrder(scores({ '\uff21': 0.5, '\u{1f600}': 0.5 }));
    expect(order.map(([d]) => d)).toEqual(['\u{1f600}', '\uff21']);
  });
});

describe('nDCG@k (trec_eval ndcg_cut)', () => {
  it('is 1 for a perfect ranking and 0 with no relevant document retrieved', () => {
    const q = judged({ a: 1, b: 1 });
    expect(ndcgAt(['a', 'b', 'c'], q, 10)).toBeCloseTo(1, 12);
    expect(ndcgAt(['c', 'd'], q, 10)).toBe(0);
  });

  it('discounts by log2(rank + 1)', () => {
    // One relevant document at rank 2: 1/log2(3) = 0.6309297535714575.
    expect(ndcgAt(['x', 'a'], judged({ a: 1 }), 10)).toBeCloseTo(0.6309297535714575, 12);
    // At rank 3: 1/log2(4) = 0.5.
    expect(ndcgAt(['x', 'y', 'a'], judged({ a: 1 }), 10)).toBeCloseTo(0.5, 12);
  });

  it('uses the relevance level as a linear gain, ideal ordered by level', () => {
    // Ranking [b(1), a(2)]: DCG = 1 + 2/log2(3) = 2.2618595071429148;
    // ideal [a(2), b(1)]: 2 + 1/log2(3) = 2.6309297535714573 → 0.8597186998521972.
    const q = judged({ a: 2, b: 1, c: 0 });
    expect(ndcgAt(['b', 'a', 'c'], q, 10)).toBeCloseTo(0.8597186998521972, 12);
  });

  it('counts only the top k, with the ideal cut at k too', () => {
    // 3 relevant, k = 2: ranking [x, a, b]: DCG@2 = 1/log2(3); IDCG@2 = 1 + 1/log2(3).
    const q = judged({ a: 1, b: 1, c: 1 });
    const expected = 1 / Math.log2(3) / (1 + 1 / Math.log2(3)); // 0.38685280723454163
    expect(ndcgAt(['x', 'a', 'b'], q, 2)).toBeCloseTo(expected, 12);
    expect(expected).toBeCloseTo(0.38685280723454163, 12);
  });

  it('gives judged non-relevant (level 0) and unjudged documents no gain', () => {
    expect(ndcgAt(['c', 'a'], judged({ a: 1, c: 0 }), 10)).toBeCloseTo(0.6309297535714575, 12);
  });
});

describe('Recall@k and MRR@k', () => {
  it('recall is relevant retrieved in the top k over all relevant', () => {
    const q = judged({ a: 1, b: 1, c: 2, z: 0 });
    expect(recallAt(['a', 'x', 'c', 'b'], q, 3)).toBeCloseTo(2 / 3, 12);
    expect(recallAt(['a', 'x', 'c', 'b'], q, 100)).toBe(1);
    expect(recallAt(['z'], q, 100)).toBe(0);
  });

  it('MRR is 1 / rank of the first relevant document within k', () => {
    const q = judged({ a: 1, z: 0 });
    expect(mrrAt(['z', 'x', 'a'], q, 10)).toBeCloseTo(1 / 3, 12);
    expect(mrrAt(['a'], q, 10)).toBe(1);
    expect(mrrAt(['x', 'y', 'a'], q, 2)).toBe(0);
  });
});

describe('summarizeRun', () => {
  it('averages over queries with a relevant document, ranking by score, not by given order', () => {
    const qrels: Qrels = new Map([
      ['q1', judged({ d1: 1 })],
      ['q2', judged({ d2: 1, d3: 1 })],
      ['q3', judged({ d9: 0 })], // no relevant document: skipped
      ['q4', judged({ d4: 1 })], // no results: scores 0
    ]);
    const run: Run = new Map([
      // Insertion order says d1 first, the scores say d5 first: d1 is at rank 2.
      ['q1', scores({ d1: 0.4, d5: 0.8 })],
      // d3 and d2 tie: d3 ranks first (id descending), then d2.
      ['q2', scores({ d2: 0.7, d3: 0.7, d6: 0.1 })],
      ['q3', scores({ d9: 0.9 })],
    ]);
    const s = summarizeRun(qrels, run);
    expect(s.queries).toBe(3);
    expect(s.skippedNoRelevant).toBe(1);
    expect(s.emptyResults).toBe(1);
    // q1: nDCG 1/log2(3) = 0.6309…, recall 1, MRR 0.5; q2: all 1; q4: all 0.
    expect(s.ndcgAt10).toBeCloseTo((0.6309297535714575 + 1 + 0) / 3, 12);
    expect(s.recallAt100).toBeCloseTo(2 / 3, 12);
    expect(s.mrrAt10).toBeCloseTo(0.5, 12);
  });

  it('ranks only the top 10 for MRR@10 after the tie-break', () => {
    // Eleven documents tie at 0.5; the relevant one, "a", sorts last by id descending (rank 11).
    const run = new Map<string, number>([['a', 0.5]]);
    for (let i = 0; i < 10; i++) run.set(`b${i}`, 0.5);
    const qrels: Qrels = new Map([['q', judged({ a: 1 })]]);
    const s = summarizeRun(qrels, new Map([['q', run]]));
    expect(s.mrrAt10).toBe(0);
    expect(s.ndcgAt10).toBe(0);
    expect(s.recallAt100).toBe(1);
  });
});
