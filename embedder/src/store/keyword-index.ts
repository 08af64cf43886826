/**
 * The embedded store's keyword index: an in-memory inverted index over the points' keyed term ids
 * (core/keywords.ts), scored with exact BM25. Like the vector scan, it is partitioned by
 * (org, model, model version), the scope every search has, so document counts, document
 * frequencies and the average length are the caller's own: one tenant's texts never change
 * another's scores, and a query reads only its tenant's postings. The index holds term ids,
 * counts, lengths and the non-sensitive payload — never a word. Its owner (lancedb.ts) rebuilds
 * it from the table at start-up and applies exactly the writes and deletes the table committed.
 */
import { BM25_B, BM25_K1, bm25Idf } from '../core/keywords.js';
import type { TermVector } from '../core/keywords.js';
import { matcher, partitionKey } from './memory-index.js';
import type { PointPayload, SearchHit, SearchParams } from './types.js';

interface Postings {
  slots: number[];
  tfs: number[];
}

/** Dead slots (deleted or replaced points) tolerated before a partition's postings are rebuilt. */
const MIN_DEAD_BEFORE_COMPACT = 1024;

class Partition {
  ids: string[] = [];
  /** Null once the slot's point is deleted or replaced. */
  payloads: (PointPayload | null)[] = [];
  terms: (TermVector | null)[] = [];
  /** Each slot's length in terms (BM25's document length). */
  lengths: number[] = [];
  readonly slotOf = new Map<string, number>();
  postings = new Map<number, Postings>();
  /** Live points holding each term. */
  readonly df = new Map<number, number>();
  live = 0;
  totalLength = 0;

  get dead(): number {
    return this.ids.length - this.live;
  }

  add(id: string, terms: TermVector, payload: PointPayload): void {
    const slot = this.ids.length;
    this.ids.push(id);
    this.payloads.push(payload);
    this.terms.push(terms);
    this.lengths.push(terms.length);
    this.slotOf.set(id, slot);
    this.live++;
    this.totalLength += terms.length;
    for (let i = 0; i < terms.ids.length; i++) {
      const term = terms.ids[i] as number;
      let list = this.postings.get(term);
      if (!list) this.postings.set(term, (list = { slots: [], tfs: [] }));
      list.slots.push(slot);
      list.tfs.push(terms.tfs[i] as number);
      this.df.set(term, (this.df.get(term) ?? 0) + 1);
    }
  }

  remove(id: string): void {
    const slot = this.slotOf.get(id);
    if (slot === undefined) return;
    const terms = this.terms[slot] as TermVector;
    for (const term of terms.ids) {
      const df = (this.df.get(term) ?? 1) - 1;
      if (df === 0) {
        this.df.delete(term);
        this.postings.delete(term);
      } else this.df.set(term, df);
    }
    this.totalLength -= terms.length;
    this.live--;
    this.payloads[slot] = null;
    this.terms[slot] = null;
    this.slotOf.delete(id);
    if (this.dead >= MIN_DEAD_BEFORE_COMPACT && this.dead > this.live) this.compact();
  }

  /** Rebuilds the postings over the live points only (slots renumbered). */
  private compact(): void {
    const live = this.ids.flatMap((id, slot) => {
      const payload = this.payloads[slot];
      const terms = this.terms[slot];
      return payload && terms ? [{ id, payload, terms }] : [];
    });
    this.ids = [];
    this.payloads = [];
    this.terms = [];
    this.lengths = [];
    this.slotOf.clear();
    this.postings = new Map();
    this.df.clear();
    this.live = 0;
    this.totalLength = 0;
    for (const p of live) this.add(p.id, p.terms, p.payload);
  }
}

export class KeywordIndex {
  private readonly partitions = new Map<string, Partition>();
  /** id → its partition's key. */
  private readonly keyOf = new Map<string, string>();

  /** Points held. */
  get size(): number {
    return this.keyOf.size;
  }

  /**
   * Inserts or replaces a point's entry (the caller has already decided latest-wins). A point
   * written without terms leaves the index (its previous terms no longer describe it).
   */
  put(id: string, terms: TermVector | undefined, payload: PointPayload): void {
    this.remove(id);
    if (!terms) return;
    const key = partitionKey(payload.org_id, payload.model, payload.model_ver);
    let partition = this.partitions.get(key);
    if (!partition) this.partitions.set(key, (partition = new Partition()));
    partition.add(id, terms, payload);
    this.keyOf.set(id, key);
  }

  remove(id: string): void {
    const key = this.keyOf.get(id);
    if (key === undefined) return;
    const partition = this.partitions.get(key) as Partition;
    partition.remove(id);
    this.keyOf.delete(id);
    if (partition.live === 0) this.partitions.delete(key);
  }

  /** Removes the points of `orgId` that `match` selects; returns how many. */
  deleteWhere(orgId: string, match: (id: string, p: PointPayload) => boolean): number {
    const doomed: string[] = [];
    for (const partition of this.partitions.values()) {
      partition.ids.forEach((id, slot) => {
        const payload = partition.payloads[slot];
        if (payload && payload.org_id === orgId && match(id, payload)) doomed.push(id);
      });
    }
    for (const id of doomed) this.remove(id);
    return doomed.length;
  }

  /** The scope's BM25 statistics: points with terms, and their average length in terms. */
  stats(orgId: string, model: string, modelVer: string): { points: number; avgLength: number } {
    const partition = this.partitions.get(partitionKey(orgId, model, modelVer));
    if (!partition || partition.live === 0) return { points: 0, avgLength: 0 };
    return { points: partition.live, avgLength: partition.totalLength / partition.live };
  }

  /**
   * BM25 top-k within the caller's (org, model, version), best first: Σ over the query's terms of
   * qtf · idf · tf·(k1+1) / (tf + k1·(1 − b + b·len/avgLen)). Filters select the candidates
   * before the limit; the statistics are the whole scope's (filters do not change idf).
   */
  search(params: SearchParams & { terms: TermVector }): SearchHit[] {
    const partition = this.partitions.get(
      partitionKey(params.orgId, params.model, params.modelVer),
    );
    if (!partition || partition.live === 0 || params.limit <= 0) return [];
    const n = partition.live;
    const avgLength = partition.totalLength / n;
    const scores = new Float64Array(partition.ids.length);
    const touched: number[] = [];
    const { ids, tfs } = params.terms;
    const { payloads, lengths } = partition;
    // tf·(k1+1) / (tf + k1·(1 − b) + k1·b/avgLen · len), with the constants hoisted.
    const base = BM25_K1 * (1 - BM25_B);
    const perLength = (BM25_K1 * BM25_B) / avgLength;
    for (let i = 0; i < ids.length; i++) {
      const term = ids[i] as number;
      const list = partition.postings.get(term);
      if (!list) continue;
      const weight =
        (tfs[i] as number) * bm25Idf(n, partition.df.get(term) as number) * (BM25_K1 + 1);
      const { slots, tfs: counts } = list;
      for (let j = 0; j < slots.length; j++) {
        const slot = slots[j] as number;
        if (payloads[slot] === null) continue; // deleted or replaced since
        const tf = counts[j] as number;
        const add = (weight * tf) / (tf + base + perLength * (lengths[slot] as number));
        if (scores[slot] === 0) touched.push(slot);
        scores[slot] = (scores[slot] as number) + add;
      }
    }
    const accept = matcher(params);
    const hits = accept
      ? touched.filter((slot) => accept(partition.payloads[slot] as PointPayload))
      : touched;
    return topK(hits, scores, partition.ids, params.limit).map((slot) => ({
      id: partition.ids[slot] as string,
      score: scores[slot] as number,
      payload: partition.payloads[slot] as PointPayload,
    }));
  }
}

/** The `limit` best slots by score (ties: smaller id first), best first. */
function topK(
  slots: readonly number[],
  scores: Float64Array,
  ids: readonly string[],
  limit: number,
): number[] {
  const better = (a: number, b: number) => {
    const d = (scores[a] as number) - (scores[b] as number);
    return d !== 0 ? d > 0 : (ids[a] as string) < (ids[b] as string);
  };
  // A min-heap (by `better`) of the best `limit` so far.
  const heap: number[] = [];
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < heap.length && better(heap[worst] as number, heap[l] as number)) worst = l;
      if (r < heap.length && better(heap[worst] as number, heap[r] as number)) worst = r;
      if (worst === i) return;
      [heap[i], heap[worst]] = [heap[worst] as number, heap[i] as number];
      i = worst;
    }
  };
  for (const slot of slots) {
    if (heap.length < limit) {
      heap.push(slot);
      for (let i = heap.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (!better(heap[parent] as number, heap[i] as number)) break;
        [heap[i], heap[parent]] = [heap[parent] as number, heap[i] as number];
        i = parent;
      }
    } else if (better(slot, heap[0] as number)) {
      heap[0] = slot;
      down(0);
    }
  }
  return heap.sort((a, b) => (better(a, b) ? -1 : 1));
}
