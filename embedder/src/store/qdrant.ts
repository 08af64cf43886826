import { QdrantClient } from '@qdrant/js-client-rest';
import type { Schemas } from '@qdrant/js-client-rest';
import {
  StoreError,
  appliedPerPoint,
  isoInstant,
  latestPerId,
  payloadFromRecord,
  toStoreError,
} from './types.js';
import type {
  DeleteParams,
  PayloadFilters,
  SearchHit,
  SearchParams,
  StoreInitResult,
  VectorPoint,
  VectorStore,
} from './types.js';

export interface QdrantStoreOptions {
  url: string;
  apiKey?: string | null;
  collection: string;
  /** Per-request timeout in milliseconds. */
  timeoutMs?: number;
}

type Filter = Schemas['Filter'];
type Condition = Schemas['Condition'];

/** Payload indexes: the tenant key first (`is_tenant` co-locates each org's points). */
const PAYLOAD_INDEXES: [string, Schemas['PayloadFieldSchema']][] = [
  ['org_id', { type: 'keyword', is_tenant: true }],
  ['asset_id', 'keyword'],
  ['segment_id', 'keyword'],
  ['model', 'keyword'],
  ['model_ver', 'keyword'],
  ['seq', 'integer'],
  ['truncated', 'bool'],
  ['embedded_at', 'datetime'],
];

const match = (key: string, value: string): Condition => ({ key, match: { value } });

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
 * condition. Latest-wins: the stored seqs are read first to decide which points win, and the
 * upsert repeats the rule server-side with a conditional `update_filter` (Qdrant ≥ 1.16), so a
 * concurrent writer (another embedder replica) cannot be overwritten by an older seq either.
 */
export class QdrantStore implements VectorStore {
  readonly kind = 'qdrant' as const;
  private readonly client: QdrantClient;
  private readonly collection: string;

  constructor(options: QdrantStoreOptions) {
    this.collection = options.collection;
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

  async upsert(points: readonly VectorPoint[]): Promise<boolean[]> {
    if (points.length === 0) return [];
    const { candidates, candidateOf } = latestPerId(points);
    try {
      const stored = await this.client.retrieve(this.collection, {
        ids: candidates.map((c) => c.id),
        with_payload: ['seq'],
        with_vector: false,
      });
      const storedSeq = new Map(stored.map((r) => [String(r.id), Number(r.payload?.seq)]));
      const wins = candidates.map((c) => {
        const seq = storedSeq.get(c.id);
        return seq === undefined || !Number.isFinite(seq) || seq <= c.payload.seq;
      });
      const winners = candidates.filter((_, i) => wins[i]);
      if (winners.length > 0) {
        await this.client.upsert(this.collection, {
          wait: true,
          points: winners.map((w) => ({
            id: w.id,
            vector: Array.from(w.vector),
            payload: { ...w.payload },
          })),
          // Existing points are replaced only where the stored seq is not newer.
          update_filter: {
            should: winners.map((w) => ({
              must: [{ has_id: [w.id] }, { key: 'seq', range: { lte: w.payload.seq } }],
            })),
          },
        });
      }
      return appliedPerPoint(points, candidates, candidateOf, wins);
    } catch (err) {
      throw toStoreError('write points to Qdrant', err);
    }
  }

  async search(params: SearchParams): Promise<SearchHit[]> {
    const must: Condition[] = [
      match('org_id', params.orgId),
      match('model', params.model),
      match('model_ver', params.modelVer),
    ];
    if (params.assetId !== undefined) must.push(match('asset_id', params.assetId));
    if (params.segmentId !== undefined) must.push(match('segment_id', params.segmentId));
    must.push(...payloadConditions(params.filters));
    try {
      const result = await this.client.query(this.collection, {
        query: Array.from(params.vector),
        filter: { must },
        limit: params.limit,
        with_payload: true,
        with_vector: false,
      });
      return result.points
        .map((p) => ({
          id: String(p.id),
          score: Math.max(-1, Math.min(1, p.score)),
          payload: payloadFromRecord(p.payload ?? {}),
        }))
        .sort((a, b) => b.score - a.score);
    } catch (err) {
      throw toStoreError('search Qdrant', err);
    }
  }

  async delete(params: DeleteParams): Promise<number> {
    const filter: Filter = {
      must:
        params.pointId !== undefined
          ? [match('org_id', params.orgId), { has_id: [params.pointId] }]
          : [match('org_id', params.orgId), match('asset_id', params.assetId)],
    };
    try {
      // Qdrant's delete does not report a count; count the same filter first.
      const { count } = await this.client.count(this.collection, { filter, exact: true });
      if (count === 0) return 0;
      await this.client.delete(this.collection, { wait: true, filter });
      return count;
    } catch (err) {
      throw toStoreError('delete from Qdrant', err);
    }
  }

  async count(params: { orgId?: string } = {}): Promise<number> {
    try {
      const { count } = await this.client.count(this.collection, {
        exact: true,
        ...(params.orgId === undefined
          ? {}
          : { filter: { must: [match('org_id', params.orgId)] } }),
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
