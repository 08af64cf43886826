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

/**
 * Writes go through each shard's elected leader, so that with replication all replicas apply the
 * conditional upserts and deletes of concurrent writers in one order (no-op on a single node).
 */
const WRITE_ORDERING: Schemas['WriteOrdering'] = 'medium';

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
      await this.client.upsert(this.collection, {
        wait: true,
        ordering: WRITE_ORDERING,
        points: candidates.map((c) => ({
          id: c.id,
          vector: Array.from(c.vector),
          payload: { ...c.payload },
        })),
        // An existing point is replaced only where its stored seq is not newer than the new one.
        update_filter: {
          should: candidates.map((c) => ({
            must: [{ has_id: [c.id] }, { key: 'seq', range: { lte: c.payload.seq } }],
          })),
        },
      });
      const stored = await this.client.retrieve(this.collection, {
        ids: candidates.map((c) => c.id),
        with_payload: ['seq'],
        with_vector: false,
      });
      const storedSeq = new Map(stored.map((r) => [String(r.id), Number(r.payload?.seq)]));
      const written = candidates.map((c) => {
        const seq = storedSeq.get(c.id);
        return seq === undefined || seq === c.payload.seq;
      });
      return appliedPerPoint(points, candidates, candidateOf, written);
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
