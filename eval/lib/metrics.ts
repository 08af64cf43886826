/**
 * Retrieval metrics computed exactly as pytrec_eval (trec_eval 9.x) computes them:
 *
 * - A run's ranks are ignored: each query's results are sorted by score descending, the score as
 *   a C `float` (trec_eval keeps similarities in single precision, so scores equal in float32 tie),
 *   and ties are broken by document id in DESCENDING byte order (`strcmp(ptr2->docno, ptr1->docno)`
 *   in trec_eval's `comp_sim_docno`).
 * - `ndcg_cut.k`: gain = the qrels relevance level (linear; levels ≤ 0 add nothing), discount
 *   log2(rank + 1); the ideal DCG ranks every judged document of level ≥ 1 by level.
 * - `recall.k`: relevant documents (level ≥ 1) in the top k / all relevant documents in the qrels.
 * - MRR@k: trec_eval's `recip_rank` of the run cut to its top k (1 / rank of the first document
 *   of level ≥ 1 in the top k, else 0).
 *
 * Only queries that have at least one relevant document (level ≥ 1) in the qrels are evaluated; a
 * query with no results scores 0 (pytrec_eval would drop it; that would flatter a failing run).
 */

/** query id → document id → relevance level. */
export type Qrels = ReadonlyMap<string, ReadonlyMap<string, number>>;
/** query id → document id → score. */
export type Run = ReadonlyMap<string, ReadonlyMap<string, number>>;

export interface QueryMetrics {
  ndcg: number;
  recall: number;
  mrr: number;
}

export interface MetricSummary {
  /** Means over the evaluated queries. */
  ndcgAt10: number;
  recallAt100: number;
  mrrAt10: number;
  /** Queries evaluated (at least one relevant document in the qrels). */
  queries: number;
  /** Queries of the qrels left out because none of their documents is relevant. */
  skippedNoRelevant: number;
  /** Evaluated queries for which the run holds no result. */
  emptyResults: number;
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');

/** trec_eval's order: score (as float32) descending, then document id descending (strcmp). */
export function trecOrder(scores: ReadonlyMap<string, number>): [string, number][] {
  const entries = [...scores].map(([doc, score]) => ({
    doc,
    score,
    key: Math.fround(score),
    bytes: utf8(doc),
  }));
  entries.sort((a, b) => {
    if (a.key !== b.key) return b.key - a.key;
    return Buffer.compare(b.bytes, a.bytes);
  });
  return entries.map((e) => [e.doc, e.score]);
}

/**
 * A measure of one ranked list (document ids, best first) against a query's judgements (document
 * id → relevance level), over the list's top k.
 */
export type RankMetric = (
  ranked: readonly string[],
  judged: ReadonlyMap<string, number>,
  k: number,
) => number;

/** The relevance levels of a ranked list's top k (0 for a document nobody judged). */
function topLevels(ranked: readonly string[], judged: ReadonlyMap<string, number>, k: number) {
  return ranked.slice(0, k).map((doc) => judged.get(doc) ?? 0);
}

/** Discounted cumulative gain of relevance levels in rank order. */
const dcg = (levels: readonly number[]) =>
  levels.reduce((sum, gain, i) => (gain > 0 ? sum + gain / Math.log2(i + 2) : sum), 0);

/** nDCG@k of one ranked list (trec_eval's ndcg_cut). */
export const ndcgAt: RankMetric = (ranked, judged, k) => {
  const ideal = [...judged.values()].filter((g) => g > 0).sort((a, b) => b - a);
  const idcg = dcg(ideal.slice(0, k));
  return idcg > 0 ? dcg(topLevels(ranked, judged, k)) / idcg : 0;
};

/** Recall@k (trec_eval's recall.k, relevance threshold 1). */
export const recallAt: RankMetric = (ranked, judged, k) => {
  let relevant = 0;
  for (const level of judged.values()) if (level >= 1) relevant++;
  if (relevant === 0) return 0;
  return topLevels(ranked, judged, k).filter((level) => level >= 1).length / relevant;
};

/** Reciprocal rank of the first relevant document in the top k (recip_rank on the cut run). */
export const mrrAt: RankMetric = (ranked, judged, k) => {
  const first = topLevels(ranked, judged, k).findIndex((level) => level >= 1);
  return first < 0 ? 0 : 1 / (first + 1);
};

/** Per-query metrics of every query that has a relevant document, in the qrels' order. */
export function evaluateRun(qrels: Qrels, run: Run): Map<string, QueryMetrics> {
  const out = new Map<string, QueryMetrics>();
  for (const [query, judged] of qrels) {
    if (![...judged.values()].some((level) => level >= 1)) continue;
    const ranked = trecOrder(run.get(query) ?? new Map()).map(([doc]) => doc);
    out.set(query, {
      ndcg: ndcgAt(ranked, judged, 10),
      recall: recallAt(ranked, judged, 100),
      mrr: mrrAt(ranked, judged, 10),
    });
  }
  return out;
}

export function summarizeRun(qrels: Qrels, run: Run): MetricSummary {
  const perQuery = evaluateRun(qrels, run);
  const values = [...perQuery.values()];
  const mean = (f: (m: QueryMetrics) => number) =>
    values.length === 0 ? NaN : values.reduce((a, m) => a + f(m), 0) / values.length;
  let emptyResults = 0;
  for (const query of perQuery.keys()) if ((run.get(query)?.size ?? 0) === 0) emptyResults++;
  return {
    ndcgAt10: mean((m) => m.ndcg),
    recallAt100: mean((m) => m.recall),
    mrrAt10: mean((m) => m.mrr),
    queries: values.length,
    skippedNoRelevant: qrels.size - values.length,
    emptyResults,
  };
}
