/**
 * The vector store contract. Every implementation scopes every read, count and delete to one
 * organisation, never stores text, and applies writes latest-wins by `seq`.
 */

/** Stored with every vector; exactly these fields, never the text (the wire contract). */
export { PAYLOAD_FIELDS } from '../../../contract/internal.js';
export type { PointPayload } from '../../../contract/internal.js';
import type { PointPayload } from '../../../contract/internal.js';
import type { TermVector } from '../core/keywords.js';
export type { TermVector } from '../core/keywords.js';

export interface VectorPoint {
  /** A UUID (see contract/ids.ts). */
  id: string;
  /** Unit-length vector of the store's dimension. */
  vector: Float32Array;
  payload: PointPayload;
  /**
   * The point's keyword-index entry: keyed term ids and their counts (core/keywords.ts), never
   * words. Absent for a point written without one (it then answers dense searches only).
   */
  terms?: TermVector;
}

/** Which ranking a search uses: the vectors, the keyword index (BM25), or both fused. */
export type { SearchMode } from '../../../contract/internal.js';
import type { SearchMode } from '../../../contract/internal.js';

/**
 * How a hybrid search fuses its rankings, every setting filled in (contract/internal.ts: DBSF or
 * weighted RRF, both as Qdrant computes them; `weight` is the dense ranking's share, the rankings
 * weigh 2·weight and 2·(1 − weight)).
 */
import type { ResolvedFusion } from '../../../contract/internal.js';
export type Fusion = ResolvedFusion;

export interface SearchParams {
  /** Default `dense`. */
  mode?: SearchMode;
  /** The query's vector (dense and hybrid). */
  vector?: Float32Array;
  /** The query's keyed terms (keyword and hybrid). */
  terms?: TermVector;
  /** Hybrid only. */
  fusion?: Fusion;
  /** Hybrid only: how many hits each ranking contributes to the fusion (at least `limit`). */
  candidates?: number;
  /** Annotate each hit with its rank and score in each ranking. */
  explain?: boolean;
  orgId: string;
  model: string;
  modelVer: string;
  assetId?: string;
  segmentId?: string;
  filters?: PayloadFilters;
  limit: number;
}

/** Optional conditions on the non-sensitive payload, all of which must hold (AND). */
export interface PayloadFilters {
  /** The point's asset is one of these. */
  assetIds?: readonly string[];
  /** The point's segment is one of these. */
  segmentIds?: readonly string[];
  /** Only points whose text was (or was not) truncated to the model window. */
  truncated?: boolean;
  /** Embedded at or after this instant (ISO 8601). */
  embeddedAfter?: string;
  /** Embedded strictly before this instant (ISO 8601). */
  embeddedBefore?: string;
}

/** `embedded_at` is stored as `Date.toISOString()`; bounds are compared in that same form. */
export function isoInstant(value: string): string {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new StoreError(`not an ISO 8601 instant: ${JSON.stringify(value)}`);
  return new Date(ms).toISOString();
}

/** A hit's place in one ranking: 1-based rank and that ranking's score. */
export interface RankInfo {
  rank: number;
  score: number;
}

export interface SearchHit {
  id: string;
  /**
   * The mode's score, hits sorted by it, best first: cosine similarity in [-1, 1] (dense), BM25
   * (keyword) or the fused reciprocal-rank score (hybrid).
   */
  score: number;
  payload: PointPayload;
  /** With `explain`: the hit's place in each ranking (null where that ranking did not hold it). */
  explain?: { dense: RankInfo | null; keyword: RankInfo | null };
}

export type DeleteParams =
  | { orgId: string; pointId: string; assetId?: undefined }
  | { orgId: string; assetId: string; pointId?: undefined };

export interface StoreInitResult {
  /** The dimension of the existing table/collection, or of the one just created. */
  dim: number;
  created: boolean;
}

/**
 * Fault-injection hooks (the reliability suite's, wired only with EMBEDDER_FAULTS_FILE).
 * `afterSegmentWrite` runs inside writeSegments once the segments' new points are stored and
 * before the older points are pruned: the one moment at which a crash leaves a segment holding
 * chunks of two texts, which the retried write must clean up.
 */
export interface StoreHooks {
  afterSegmentWrite?(points: readonly VectorPoint[]): void;
}

export interface VectorStore {
  readonly kind: 'lancedb' | 'qdrant';
  /**
   * Whether the table/collection has a keyword index (known after init). Without one, keyword
   * searches are refused and hybrid searches answer with the dense ranking.
   */
  readonly keywordIndex: boolean;
  /** Opens the table/collection, creating it for `dim`-dimensional vectors if missing. */
  init(dim: number): Promise<StoreInitResult>;
  /**
   * Writes points latest-wins: a point lands only if no stored point with its id has a greater
   * `seq`. Returns, per input point, whether it was applied. Throws if the write fails.
   */
  upsert(points: readonly VectorPoint[]): Promise<boolean[]>;
  /**
   * Writes whole segments, latest wins per segment. A segment is the points sharing a
   * `payload.segment_point_id` (the chunks of one text; one job's points share its seq). Its points
   * land only if no stored point of the segment has a greater seq (not even a chunk index the new
   * text lacks), each also latest-wins by id as in `upsert`; after the write, every stored point of
   * the segment with a seq below the segment's greatest is deleted (an older text's surplus
   * chunks, or a late older job's), so a segment converges to one job's chunk set whatever order
   * concurrent writers run in. Returns, per input point, whether it was applied.
   */
  writeSegments(points: readonly VectorPoint[]): Promise<boolean[]>;
  /** Searches in `params.mode`; throws KeywordIndexUnavailable for keyword mode without one. */
  search(params: SearchParams): Promise<SearchHit[]>;
  /**
   * Deletes within one organisation; returns how many points were deleted. A point id deletes
   * its whole segment: the point and every point whose `segment_point_id` it is.
   */
  delete(params: DeleteParams): Promise<number>;
  /** Points of one organisation (there is no count across organisations). */
  count(params: { orgId: string }): Promise<number>;
  /** Resolves when the store answers; rejects with the reason otherwise. */
  health(): Promise<void>;
  close(): Promise<void>;
  /** The in-memory search index's size, for stores that keep one (null while it is off). */
  memoryIndexStats?(): { points: number; vectorBytes: number } | null;
}

/** The store answered with an error or could not be reached. */
export class StoreError extends Error {
  override readonly name: string = 'StoreError';
}

/** A keyword search of a store created before the keyword index existed (Qdrant collections). */
export class KeywordIndexUnavailable extends StoreError {
  override readonly name = 'KeywordIndexUnavailable';
}

/** Wraps a driver error as `could not <action>: <first line of its message>`. */
export function toStoreError(action: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const reason = err instanceof Error ? (err.message.split('\n')[0] ?? err.name) : String(err);
  return new StoreError(`could not ${action}: ${reason}`, { cause: err });
}

/**
 * A payload read back from a store row (numbers may come back as bigint or strings). A point
 * written before chunking (no chunk fields) is its segment's only chunk: the whole embedded text.
 */
export function payloadFromRecord(id: string, raw: Record<string, unknown>): PointPayload {
  const present = (v: unknown) => v !== undefined && v !== null;
  return {
    org_id: String(raw.org_id),
    asset_id: String(raw.asset_id),
    segment_id: String(raw.segment_id),
    modality: 'text',
    model: String(raw.model),
    model_ver: String(raw.model_ver),
    text_len: Number(raw.text_len),
    token_count: Number(raw.token_count),
    truncated: raw.truncated === true,
    truncated_len: Number(raw.truncated_len),
    job_id: String(raw.job_id),
    seq: Number(raw.seq),
    embedded_at: String(raw.embedded_at),
    segment_point_id: present(raw.segment_point_id) ? String(raw.segment_point_id) : id,
    chunk_index: present(raw.chunk_index) ? Number(raw.chunk_index) : 0,
    chunk_count: present(raw.chunk_count) ? Number(raw.chunk_count) : 1,
    chunk_start: present(raw.chunk_start) ? Number(raw.chunk_start) : 0,
    chunk_end: present(raw.chunk_end) ? Number(raw.chunk_end) : Number(raw.truncated_len),
  };
}

/**
 * Latest-wins within one batch: for each id, the point with the greatest seq (the later one on
 * a tie) is the candidate to write. Returns the candidates and, per input index, the index of
 * its id's candidate.
 */
function latestPerId(points: readonly VectorPoint[]): {
  candidates: VectorPoint[];
  candidateOf: number[];
} {
  const best = new Map<string, number>();
  points.forEach((p, i) => {
    const current = best.get(p.id);
    if (current === undefined || (points[current]?.payload.seq ?? 0) <= p.payload.seq) {
      best.set(p.id, i);
    }
  });
  const candidates: VectorPoint[] = [];
  const position = new Map<number, number>();
  for (const i of best.values()) {
    position.set(i, candidates.length);
    candidates.push(points[i] as VectorPoint);
  }
  const candidateOf = points.map((p) => position.get(best.get(p.id) as number) as number);
  return { candidates, candidateOf };
}

/**
 * Maps per-candidate outcomes back to the input points: a point is applied when its id's
 * candidate was written and carries the same seq (a duplicate delivery of the winning job).
 */
function appliedPerPoint(
  points: readonly VectorPoint[],
  candidates: readonly VectorPoint[],
  candidateOf: readonly number[],
  written: readonly boolean[],
): boolean[] {
  return points.map((p, i) => {
    const c = candidateOf[i] as number;
    return written[c] === true && candidates[c]?.payload.seq === p.payload.seq;
  });
}

/**
 * A latest-wins write of one batch, the protocol both stores follow: `write` stores each id's
 * latest point (latestPerId) unless the store holds a newer one, and answers per candidate
 * whether it is now the stored version; every input point is then told whether it was applied.
 */
export async function writeLatest(
  points: readonly VectorPoint[],
  write: (candidates: readonly VectorPoint[]) => Promise<readonly boolean[]>,
): Promise<boolean[]> {
  const { candidates, candidateOf } = latestPerId(points);
  const written = await write(candidates);
  return appliedPerPoint(points, candidates, candidateOf, written);
}

/** The chunk fields of a point that holds its segment's whole embedded text as its one chunk. */
export function wholeText(
  id: string,
  embeddedLen: number,
): Pick<
  PointPayload,
  'segment_point_id' | 'chunk_index' | 'chunk_count' | 'chunk_start' | 'chunk_end'
> {
  return {
    segment_point_id: id,
    chunk_index: 0,
    chunk_count: 1,
    chunk_start: 0,
    chunk_end: embeddedLen,
  };
}
