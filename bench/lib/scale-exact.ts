/**
 * Exact nearest neighbours for the scale section, computed by the bench itself (brute force,
 * streamed: each block of points is scored against every query as it is written, so the bench
 * never holds the table), and recall of a store's answers against them.
 */
import { fuse } from '../../embedder/src/store/fusion.js';
import type { Fusion, SearchHit } from '../../embedder/src/store/types.js';

/** The `k` best (highest score) of a stream of (index, score), best first on read. */
export class TopK {
  private readonly scores: Float64Array;
  private readonly indexes: Int32Array;
  private size = 0;

  constructor(readonly k: number) {
    this.scores = new Float64Array(k);
    this.indexes = new Int32Array(k);
  }

  /** The current k-th best score (−∞ while fewer than k are held). */
  get floor(): number {
    return this.size < this.k ? -Infinity : (this.scores[this.size - 1] as number);
  }

  offer(index: number, score: number): void {
    if (score <= this.floor) return;
    // Insertion into the sorted (descending) arrays: k is small (≤ 40).
    let i = Math.min(this.size, this.k - 1);
    while (i > 0 && (this.scores[i - 1] as number) < score) {
      this.scores[i] = this.scores[i - 1] as number;
      this.indexes[i] = this.indexes[i - 1] as number;
      i--;
    }
    this.scores[i] = score;
    this.indexes[i] = index;
    if (this.size < this.k) this.size++;
  }

  /** Indexes, best first. */
  top(n = this.size): number[] {
    return Array.from(this.indexes.subarray(0, Math.min(n, this.size)));
  }

  /** (index, score) pairs, best first. */
  entries(): [number, number][] {
    return this.top().map((index, i) => [index, this.scores[i] as number]);
  }

  clone(): TopK {
    const c = new TopK(this.k);
    c.scores.set(this.scores);
    c.indexes.set(this.indexes);
    c.size = this.size;
    return c;
  }
}

/**
 * Scores a block of `n` unit vectors (row-major, `dim` wide; indexes from `firstIndex`) against
 * every query (unit vectors too, so the dot product is the cosine) and offers each to its TopK.
 */
export function scanBlock(
  queries: Float32Array,
  tops: readonly TopK[],
  block: Float32Array,
  n: number,
  dim: number,
  firstIndex: number,
): void {
  for (let q = 0; q < tops.length; q++) {
    const top = tops[q] as TopK;
    const qo = q * dim;
    for (let r = 0; r < n; r++) {
      const ro = r * dim;
      let s = 0;
      for (let d = 0; d < dim; d++) s += (queries[qo + d] as number) * (block[ro + d] as number);
      if (s > top.floor) top.offer(firstIndex + r, s);
    }
  }
}

/** recall@k: the share of the exact top k that the store's top k holds. */
export function recallAt(exact: readonly number[], got: readonly number[], k: number): number {
  const truth = new Set(exact.slice(0, k));
  if (truth.size === 0) return NaN;
  let hit = 0;
  for (const g of got.slice(0, k)) if (truth.has(g)) hit++;
  return hit / truth.size;
}

export function mean(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite);
  return finite.length === 0 ? NaN : finite.reduce((a, b) => a + b, 0) / finite.length;
}

/**
 * The exact hybrid ranking: the store's own fusion (fusion.ts `fuse`, as both stores fuse) of the
 * exact dense ranking (point index and exact cosine, best first) and a keyword ranking (the
 * store's, exact BM25 in both stores); point indexes of the best `limit`, best first.
 */
export function exactHybrid(
  dense: readonly (readonly [number, number])[],
  keyword: readonly { index: number; score: number }[],
  fusion: Fusion,
  limit: number,
): number[] {
  const hit = (index: number, score: number): SearchHit => ({
    id: String(index).padStart(12, '0'),
    score,
    payload: null as unknown as SearchHit['payload'],
  });
  return fuse(
    dense.map(([index, score]) => hit(index, score)),
    keyword.map((k) => hit(k.index, k.score)),
    fusion,
    limit,
  ).map((h) => Number(h.id));
}
