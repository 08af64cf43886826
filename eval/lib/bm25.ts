/**
 * The eval's reference BM25: an exact, in-process BM25 (k1 0.9, b 0.4, Lucene's idf) over the
 * same terms Heimdex's keyword index is built from (embedder/src/core/keywords.ts's analyzer), but
 * with the plain words instead of keyed ids. Heimdex's keyword mode should match it up to the
 * keyed-hash collisions and the store's statistics; a gap beyond that is a defect.
 */
import type { AnalyzerOptions } from '../../embedder/src/core/keywords.js';
import { analyze, bm25Idf, bm25Tf } from '../../embedder/src/core/keywords.js';
import type { Doc, Query } from './dataset.js';
import type { Run } from './metrics.js';

interface Posting {
  doc: number;
  tf: number;
}

export class Bm25Index {
  private readonly postings = new Map<string, Posting[]>();
  private readonly lengths: number[] = [];
  private readonly ids: string[] = [];
  private totalLength = 0;

  constructor(
    docs: readonly Doc[],
    private readonly analyzer: AnalyzerOptions = {},
  ) {
    for (const d of docs) {
      const terms = analyze(d.text, analyzer);
      const doc = this.ids.length;
      this.ids.push(d.id);
      this.lengths.push(terms.length);
      this.totalLength += terms.length;
      const counts = new Map<string, number>();
      for (const t of terms) counts.set(t, (counts.get(t) ?? 0) + 1);
      for (const [t, tf] of counts) {
        let list = this.postings.get(t);
        if (!list) this.postings.set(t, (list = []));
        list.push({ doc, tf });
      }
    }
  }

  /** The top `limit` documents for a query's text, as document id → score. */
  search(text: string, limit: number): Map<string, number> {
    const n = this.ids.length;
    const avg = n > 0 ? this.totalLength / n : 0;
    const scores = new Map<number, number>();
    const counts = new Map<string, number>();
    for (const t of analyze(text, this.analyzer)) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, qtf] of counts) {
      const list = this.postings.get(t);
      if (!list) continue;
      const idf = bm25Idf(n, list.length);
      for (const p of list) {
        const add = qtf * idf * bm25Tf(p.tf, this.lengths[p.doc] as number, avg);
        scores.set(p.doc, (scores.get(p.doc) ?? 0) + add);
      }
    }
    const top = [...scores].sort((a, b) => b[1] - a[1]).slice(0, limit);
    return new Map(top.map(([doc, score]) => [this.ids[doc] as string, score]));
  }

  /** A run over the queries (query id → document id → score). */
  run(queries: readonly Query[], limit: number): Run {
    return new Map(queries.map((q) => [q.id, this.search(q.text, limit)]));
  }
}
