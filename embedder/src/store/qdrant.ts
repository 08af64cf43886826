import { QdrantClient } from '@qdrant/js-client-rest';
import type { Schemas } from '@qdrant/js-client-rest';
import { DEFAULT_KEYWORD_AVG_LENGTH, bm25Tf } from '../core/keywords.js';
import { DEFAULT_FUSION, annotate, fuse, fusionWeights, hybridCandidates } from './fusion.js';
import {
  type DeleteParams,
  KeywordIndexUnavailable,
  type PayloadFilters,
  type SearchHit,
  type SearchParams,
  StoreError,
  type StoreHooks,
  type StoreInitResult,
  type VectorPoint,
  type VectorStore,
  isoInstant,
  payloadFromRecord,
  toStoreError,
  writeLatest,
} from './types.js';

export interface QdrantStoreOptions {
  url: string;
  apiKey?: string | null;
  collection: string;
  /** Per-request timeout in milliseconds. */
  timeoutMs?: number;
  /**
   * BM25's average text length in terms, for the length normalisation Qdrant cannot compute:
   * a point's sparse values are its saturated term frequencies, fixed when it is written
   * (QDRANT_KEYWORD_AVG_LENGTH).
   */
  keywordAvgLength?: number;
  hooks?: StoreHooks;
}

/** The named sparse vector of the keyword index. */
export const KEYWORD_VECTOR = 'keyword';
/** Qdrant's name for the unnamed (default) dense vector. */
const DENSE_VECTOR = '';

type Filter = Schemas['Filter'];
type Condition = Schemas['Condition'];

/** Payload indexes: the tenant key first (`is_tenant` co-locates each org's points). */
const PAYLOAD_INDEXES: [string, Schemas['PayloadFieldSchema']][] = [
  ['org_id', { type: 'keyword', is_tenant: true }],
  ['asset_id', 'keyword'],
  ['segment_id', 'keyword'],
  ['segment_point_id', 'keyword'],
  ['model', 'keyword'],
  ['model_ver', 'keyword'],
  ['seq', 'integer'],
  ['truncated', 'bool'],
  ['embedded_at', 'datetime'],
];

/**
 * Writes go through each shard's elected leader, so that with replication all replicas apply the
 * conditional upserts and deletes of concurrent writers in one order (no-op on a single node).
 */
const WRITE_ORDERING: Schemas['WriteOrdering'] = 'medium';

const match = (key: string, value: string): Condition => ({ key, match: { value } });

/** Points per page when reading back the stored points of a batch's segments. */
const SEGMENT_SCROLL_PAGE = 1024;

/** A segment's key: segment point ids are per organisation. */
const segmentKey = (orgId: string, segmentPointId: string) =>
  JSON.stringify([orgId, segmentPointId]);

/** A stored point of a segment, as the segment read-back sees it. */
interface SegmentPoint {
  id: string;
  key: string;
  seq: number;
}

/** Qdrant conditions for the optional payload filters. */
function payloadConditions(f: PayloadFilters | undefined): Condition[] {
  if (!f) return [];
  const out: Condition[] = [];
  if (f.assetIds && f.assetIds.length > 0)
    out.push({ key: 'asset_id', match: { any: [...f.assetIds] } });
  if (f.segmentIds && f.segmentIds.length > 0)
    out.push({ key: 'segment_id', match: { any: [...f.segmentIds] } });
  if (f.truncated !== undefined) out.push({ key: 'truncated', match: { value: f.truncated } });
  if (f.embeddedAfter !== undefined || f.embeddedBefore !== undefined) {
    out.push({
      key: 'embedded_at',
      range: {
        ...(f.embeddedAfter === undefined ? {} : { gte: isoInstant(f.embeddedAfter) }),
        ...(f.embeddedBefore === undefined ? {} : { lt: isoInstant(f.embeddedBefore) }),
      },
    });
  }
  return out;
}

/**
 * Qdrant behind the VectorStore contract. Every read, count and delete carries an `org_id`
 * condition.
 *
 * Latest-wins is decided by Qdrant itself, never by state held in this process, so it holds when
 * several embedder replicas write the same point at once: each upsert is a conditional write
 * (`update_filter`, Qdrant ≥ 1.16) that replaces a stored point only while the stored `seq` is not
 * greater than the new one (a point that does not exist yet is inserted). Qdrant resolves the
 * condition behind its shard's update fence, against a state in which every earlier write is
 * applied, so of two racing writes the lower seq can never replace the higher one. Writes use
 * `medium` ordering, so that with replication every replica sees them in the same order. Whether a
 * point was applied is then read back: it was when the stored seq is its own (or the point is
 * gone again, deleted since).
 *
 * Segment writes (writeSegments) hold the same way across replicas: every decision is a
 * conditional write or a filtered delete that Qdrant evaluates, and each writer reads the
 * segment back after its own write and deletes what is older than the newest seq it sees, so
 * whichever writer writes last also cleans up after the other.
 */
export class QdrantStore implements VectorStore {
  readonly kind = 'qdrant' as const;
  private readonly client: QdrantClient;
  private readonly collection: string;
  private readonly keywordAvgLength: number;
  private readonly hooks: StoreHooks;
  private hasKeywordVector = false;

  constructor(options: QdrantStoreOptions) {
    this.collection = options.collection;
    this.keywordAvgLength = options.keywordAvgLength ?? DEFAULT_KEYWORD_AVG_LENGTH;
    this.hooks = options.hooks ?? {};
    this.client = new QdrantClient({
      url: options.url,
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
      timeout: options.timeoutMs ?? 30_000,
      checkCompatibility: false,
    });
  }

  async init(dim: number): Promise<StoreInitResult> {
    try {
      let created = false;
      const { exists } = await this.client.collectionExists(this.collection);
      if (!exists) {
        try {
          await this.client.createCollection(this.collection, {
            vectors: { size: dim, distance: 'Cosine' },
            // The keyword index: BM25 term weights, Qdrant multiplies in the idf at query time.
            sparse_vectors: { [KEYWORD_VECTOR]: { modifier: 'idf' } },
            // Qdrant's multitenancy layout: per-tenant HNSW graphs instead of one global graph.
            hnsw_config: { payload_m: 16, m: 0 },
          });
          created = true;
        } catch (err) {
          // Another replica may have created it first; anything else is a real failure.
          if (!(await this.client.collectionExists(this.collection)).exists) throw err;
        }
      }
      const info = await this.client.getCollection(this.collection);
      const vectors = info.config.params.vectors as { size?: unknown } | undefined;
      if (typeof vectors?.size !== 'number') {
        throw new StoreError(
          `collection "${this.collection}" uses named vectors; it was not created by Heimdex (choose another QDRANT_COLLECTION)`,
        );
      }
      const sparse = info.config.params.sparse_vectors as
        Record<string, unknown> | null | undefined;
      this.hasKeywordVector = sparse?.[KEYWORD_VECTOR] !== undefined;
      for (const [field_name, field_schema] of PAYLOAD_INDEXES) {
        await this.client.createPayloadIndex(this.collection, {
          field_name,
          field_schema,
          wait: true,
        });
      }
      return { dim: vectors.size, created };
    } catch (err) {
      throw toStoreError(`open the Qdrant collection "${this.collection}"`, err);
    }
  }

  /**
   * Whether the collection has the keyword index's sparse vector. A collection created before it
   * existed cannot gain one (Qdrant adds no vectors to a collection): keyword search is refused
   * there and hybrid search answers with the dense ranking (docs/DEPLOY.md: migrate by
   * re-ingesting into a new collection).
   */
  get keywordIndex(): boolean {
    return this.hasKeywordVector;
  }

  /** A point's vectors: the dense one, and its BM25 term weights where it has terms. */
  private pointVector(p: VectorPoint): Schemas['VectorStruct'] {
    const dense = Array.from(p.vector);
    if (!this.hasKeywordVector || !p.terms) return dense;
    const { ids, tfs, length } = p.terms;
    return {
      [DENSE_VECTOR]: dense,
      [KEYWORD_VECTOR]: {
        indices: Array.from(ids),
        values: Array.from(tfs, (tf) => bm25Tf(tf, length, this.keywordAvgLength)),
      },
    };
  }

  async upsert(points: readonly VectorPoint[]): Promise<boolean[]> {
    if (points.length === 0) return [];
    try {
      return await writeLatest(points, (candidates) => this.writeCandidates(candidates));
    } catch (err) {
      throw toStoreError('write points to Qdrant', err);
    }
  }

  /** Upserts each candidate unless a newer seq is stored; which of them are stored now. */
  private async writeCandidates(candidates: readonly VectorPoint[]): Promise<boolean[]> {
    await this.conditionalUpsert(candidates);
    const stored = await this.client.retrieve(this.collection, {
      ids: candidates.map((c) => c.id),
      with_payload: ['seq'],
      with_vector: false,
    });
    const storedSeq = new Map(stored.map((r) => [String(r.id), Number(r.payload?.seq)]));
    return candidates.map((c) => {
      const seq = storedSeq.get(c.id);
      return seq === undefined || seq === c.payload.seq;
    });
  }

  /**
   * Segment-wise latest-wins (VectorStore.writeSegments) in three or four requests:
   * 1. a scroll of the stored points of the batch's segments (id, segment and seq);
   * 2. unless a segment holds a newer seq than the batch's (then none of its points is written),
   *    the conditional upsert of the batch's newest points per segment, each still guarded by
   *    its own id's stored seq;
   * 3. the same scroll again, for each segment's greatest seq now (a concurrent writer's
   *    included) and each point's stored seq;
   * 4. where it found points below their segment's greatest seq, one delete of exactly those
   *    (filtered by segment and `seq <` that seq, so nothing newer is ever deleted).
   * Steps 2-3 are skipped when nothing is written (the first read is then the state). A point
   * was applied when it was written and its segment's greatest seq and its own stored seq are
   * its seq (or it is gone, deleted since).
   */
  async writeSegments(points: readonly VectorPoint[]): Promise<boolean[]> {
    if (points.length === 0) return [];
    try {
      const keyOf = (p: VectorPoint) => segmentKey(p.payload.org_id, p.payload.segment_point_id);
      const segments = new Map<string, { orgId: string; id: string }>();
      for (const p of points) {
        segments.set(keyOf(p), { orgId: p.payload.org_id, id: p.payload.segment_point_id });
      }
      const before = await this.segmentPoints(segments);
      const storedMax = newestPerSegment(before);
      const batchMax = new Map<string, number>();
      for (const p of points) {
        batchMax.set(keyOf(p), Math.max(batchMax.get(keyOf(p)) ?? -Infinity, p.payload.seq));
      }
      // Per segment, the batch's newest points, unless the store holds a newer seq.
      const eligible = points.map((p) => {
        const key = keyOf(p);
        const seq = p.payload.seq;
        return seq === batchMax.get(key) && seq >= (storedMax.get(key) ?? -Infinity);
      });
      const toWrite = points.filter((_, i) => eligible[i]);
      let after = before;
      let written: boolean[] = [];
      if (toWrite.length > 0) {
        written = await writeLatest(toWrite, async (candidates) => {
          await this.conditionalUpsert(candidates);
          return candidates.map(() => true);
        });
        this.hooks.afterSegmentWrite?.(toWrite);
        after = await this.segmentPoints(segments);
      }
      const newest = newestPerSegment(after);
      await this.pruneSegments(segments, after, newest);
      const storedSeq = new Map(after.map((r) => [r.id, r.seq]));
      const wrote = new Map(toWrite.map((p, i) => [p, written[i] === true]));
      return points.map((p) => {
        if (wrote.get(p) !== true) return false;
        const segmentSeq = newest.get(keyOf(p));
        const seq = storedSeq.get(p.id);
        return (
          (segmentSeq === undefined || segmentSeq === p.payload.seq) &&
          (seq === undefined || seq === p.payload.seq)
        );
      });
    } catch (err) {
      throw toStoreError('write points to Qdrant', err);
    }
  }

  /**
   * The stored points of `segments`, per organisation: those whose `segment_point_id` is one of
   * them, and the points with a segment's id (written before chunking, without the field).
   */
  private async segmentPoints(
    segments: ReadonlyMap<string, { orgId: string; id: string }>,
  ): Promise<SegmentPoint[]> {
    const byOrg = new Map<string, string[]>();
    for (const { orgId, id } of segments.values()) {
      byOrg.set(orgId, [...(byOrg.get(orgId) ?? []), id]);
    }
    const out: SegmentPoint[] = [];
    for (const [orgId, ids] of byOrg) {
      const filter: Filter = {
        must: [match('org_id', orgId)],
        should: [{ key: 'segment_point_id', match: { any: ids } }, { has_id: ids }],
      };
      let offset: Schemas['ExtendedPointId'] | null | undefined;
      do {
        const page = await this.client.scroll(this.collection, {
          filter,
          limit: SEGMENT_SCROLL_PAGE,
          with_payload: ['segment_point_id', 'seq'],
          with_vector: false,
          ...(offset === undefined || offset === null ? {} : { offset }),
        });
        for (const p of page.points) {
          const id = String(p.id);
          const segment = p.payload?.segment_point_id;
          out.push({
            id,
            key: segmentKey(orgId, typeof segment === 'string' ? segment : id),
            seq: Number(p.payload?.seq),
          });
        }
        // The next page's first id (typed loosely by the client); none after the last page.
        const next = page.next_page_offset;
        offset = typeof next === 'string' || typeof next === 'number' ? next : null;
      } while (offset !== null);
    }
    return out;
  }

  /**
   * Deletes the points of `segments` below their segment's greatest seq, where `stored` (a
   * read-back) has any: one filtered delete per organisation, guarded by `seq <` the greatest
   * seq seen, so a newer point written meanwhile is never deleted.
   */
  private async pruneSegments(
    segments: ReadonlyMap<string, { orgId: string; id: string }>,
    stored: readonly SegmentPoint[],
    newest: ReadonlyMap<string, number>,
  ): Promise<void> {
    const stale = new Set(
      stored.filter((r) => r.seq < (newest.get(r.key) ?? -Infinity)).map((r) => r.key),
    );
    const byOrg = new Map<string, Condition[]>();
    for (const key of stale) {
      const segment = segments.get(key);
      const seq = newest.get(key);
      if (!segment || seq === undefined) continue;
      const below: Condition = { key: 'seq', range: { lt: seq } };
      byOrg.set(segment.orgId, [
        ...(byOrg.get(segment.orgId) ?? []),
        { must: [match('segment_point_id', segment.id), below] },
        { must: [{ has_id: [segment.id] }, below] },
      ]);
    }
    for (const [orgId, should] of byOrg) {
      await this.client.delete(this.collection, {
        wait: true,
        ordering: WRITE_ORDERING,
        filter: { must: [match('org_id', orgId)], should },
      });
    }
  }

  /** Writes each candidate unless its id's stored seq is newer (Qdrant decides). */
  private async conditionalUpsert(candidates: readonly VectorPoint[]): Promise<void> {
    await this.client.upsert(this.collection, {
      wait: true,
      ordering: WRITE_ORDERING,
      points: candidates.map((c) => ({
        id: c.id,
        vector: this.pointVector(c),
        payload: { ...c.payload },
      })),
      // An existing point is replaced only where its stored seq is not newer than the new one.
      update_filter: {
        should: candidates.map((c) => ({
          must: [{ has_id: [c.id] }, { key: 'seq', range: { lte: c.payload.seq } }],
        })),
      },
    });
  }

  /**
   * One Query API call per search. Dense: the vector. Keyword: the query's term counts against
   * the sparse vector, idf computed by Qdrant over the caller's scope (`params.idf.corpus`, so
   * document counts and frequencies are per organisation, model and version, as in the embedded
   * store). Hybrid: both as prefetches, each with the tenant filter and the payload filters, fused
   * by Qdrant's DBSF or weighted RRF (DBSF with unequal weights: both rankings in one batch call,
   * fused by fusion.ts). With `explain`, the two rankings come back in the same batch call.
   */
  async search(params: SearchParams): Promise<SearchHit[]> {
    const mode = params.mode ?? 'dense';
    const scope: Condition[] = [
      match('org_id', params.orgId),
      match('model', params.model),
      match('model_ver', params.modelVer),
    ];
    const must: Condition[] = [...scope];
    if (params.assetId !== undefined) must.push(match('asset_id', params.assetId));
    if (params.segmentId !== undefined) must.push(match('segment_id', params.segmentId));
    must.push(...payloadConditions(params.filters));
    const filter: Filter = { must };
    const dense = (limit: number): QueryRequest => {
      if (!params.vector) throw new StoreError('a dense search needs the query vector');
      return { query: Array.from(params.vector), filter, limit };
    };
    const keyword = (limit: number): QueryRequest => {
      if (!params.terms) throw new StoreError(`a ${mode} search needs the query's terms`);
      return {
        query: { indices: Array.from(params.terms.ids), values: Array.from(params.terms.tfs) },
        using: KEYWORD_VECTOR,
        filter,
        limit,
        params: { idf: { corpus: { must: scope } } } as Schemas['SearchParams'],
      };
    };
    const out = { with_payload: true, with_vector: false };
    try {
      if (mode === 'keyword' && !this.hasKeywordVector) {
        throw new KeywordIndexUnavailable(
          `collection "${this.collection}" has no keyword index (it predates it)`,
        );
      }
      if (mode === 'dense' || !this.hasKeywordVector) {
        const hits = (await this.query({ ...dense(params.limit), ...out })).map((h) => ({
          ...h,
          score: Math.max(-1, Math.min(1, h.score)),
        }));
        return params.explain ? annotate(hits, hits, null) : hits;
      }
      if (mode === 'keyword') {
        const hits = await this.query({ ...keyword(params.limit), ...out });
        return params.explain ? annotate(hits, null, hits) : hits;
      }
      const candidates = hybridCandidates(params.limit, params.candidates);
      const fusion = params.fusion ?? DEFAULT_FUSION;
      if (fusion.method === 'dbsf' && fusion.weight !== 0.5) {
        // Qdrant's DBSF takes no weights: both rankings come back in one batch and are fused
        // here, by the same formula (fusion.ts).
        const [denseHits, keywordHits] = await this.queryBatch([
          { ...dense(candidates), ...out },
          { ...keyword(candidates), ...out },
        ]);
        return fuse(denseHits ?? [], keywordHits ?? [], fusion, params.limit, params.explain);
      }
      const fused: QueryRequest = {
        prefetch: [dense(candidates), keyword(candidates)],
        query: (fusion.method === 'dbsf'
          ? { fusion: 'dbsf' }
          : { rrf: { k: fusion.k, weights: fusionWeights(fusion) } }) as Schemas['Query'],
        filter,
        limit: params.limit,
        ...out,
      };
      if (!params.explain) return await this.query(fused);
      const [hits, denseHits, keywordHits] = await this.queryBatch([
        fused,
        { ...dense(candidates), with_payload: false, with_vector: false },
        { ...keyword(candidates), with_payload: false, with_vector: false },
      ]);
      return annotate(hits ?? [], denseHits ?? [], keywordHits ?? []);
    } catch (err) {
      throw toStoreError('search Qdrant', err);
    }
  }

  private async query(request: QueryRequest): Promise<SearchHit[]> {
    const result = await this.client.query(this.collection, request);
    return result.points.map(toHit);
  }

  private async queryBatch(searches: QueryRequest[]): Promise<SearchHit[][]> {
    const results = await this.client.queryBatch(this.collection, { searches });
    return results.map((r) => r.points.map(toHit));
  }

  async delete(params: DeleteParams): Promise<number> {
    // A point id deletes its whole segment: the point, and the points it is the segment of.
    const filter: Filter =
      params.pointId !== undefined
        ? {
            must: [match('org_id', params.orgId)],
            should: [{ has_id: [params.pointId] }, match('segment_point_id', params.pointId)],
          }
        : { must: [match('org_id', params.orgId), match('asset_id', params.assetId)] };
    try {
      // Qdrant's delete does not report a count; count the same filter first.
      const { count } = await this.client.count(this.collection, { filter, exact: true });
      if (count === 0) return 0;
      await this.client.delete(this.collection, { wait: true, ordering: WRITE_ORDERING, filter });
      return count;
    } catch (err) {
      throw toStoreError('delete from Qdrant', err);
    }
  }

  async count(params: { orgId: string }): Promise<number> {
    try {
      const { count } = await this.client.count(this.collection, {
        exact: true,
        filter: { must: [match('org_id', params.orgId)] },
      });
      return count;
    } catch (err) {
      throw toStoreError('count Qdrant points', err);
    }
  }

  async health(): Promise<void> {
    try {
      const { exists } = await this.client.collectionExists(this.collection);
      if (!exists) throw new StoreError(`collection "${this.collection}" does not exist`);
    } catch (err) {
      throw toStoreError('reach Qdrant', err);
    }
  }

  async close(): Promise<void> {
    // The REST client holds no resources that need releasing.
  }
}

type QueryRequest = Schemas['QueryRequest'];

/** A Qdrant scored point as a hit (Qdrant returns them best first). */
function toHit(p: Schemas['ScoredPoint']): SearchHit {
  const id = String(p.id);
  return { id, score: p.score, payload: payloadFromRecord(id, p.payload ?? {}) };
}

/** Each segment's greatest stored seq. */
function newestPerSegment(points: readonly SegmentPoint[]): Map<string, number> {
  const newest = new Map<string, number>();
  for (const p of points) newest.set(p.key, Math.max(newest.get(p.key) ?? -Infinity, p.seq));
  return newest;
}
