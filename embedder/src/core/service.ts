import type { PointPayload, VectorPoint, VectorStore } from '../store/types.js';
import { ServiceError } from './errors.js';
import { pointId } from './ids.js';
import type { EmbeddingModel } from './model.js';

export interface EmbedItem {
  job_id: string;
  seq: number;
  org_id: string;
  asset_id: string;
  segment_id: string;
  text: string;
  model: string;
  model_ver: string;
}

export type ItemErrorCode = 'unknown_model' | 'empty_embedding' | 'invalid_embedding';

export type EmbedItemResult =
  | {
      job_id: string;
      status: 'ok';
      point_id: string;
      /** False when a newer seq is already stored for the point (latest wins; not an error). */
      applied: boolean;
      text_len: number;
      token_count: number;
      truncated: boolean;
      truncated_len: number;
    }
  | { job_id: string; status: 'error'; code: ItemErrorCode; retryable: boolean; message: string };

export interface EmbedResult {
  results: EmbedItemResult[];
  model: string;
  model_ver: string;
}

export interface SearchRequest {
  org_id: string;
  query_text: string;
  limit: number;
  asset_id?: string;
  segment_id?: string;
  model?: string;
}

export interface SearchResult {
  results: { point_id: string; score: number; payload: PointPayload }[];
  query_model: string;
  query_model_ver: string;
  total: number;
}

export type DeleteRequest = { org_id: string } & (
  { point_id: string; asset_id?: undefined } | { asset_id: string; point_id?: undefined }
);

export interface Readiness {
  ready: boolean;
  model: boolean;
  store: boolean;
  /** Why the store is not ready (a store error message; never request data). */
  storeError?: string;
}

/**
 * The embedder's use cases, independent of HTTP: embed-and-store a batch, search, delete.
 * Errors are ServiceErrors; per-item problems are results, not errors.
 */
export class EmbedderService {
  constructor(
    private readonly model: EmbeddingModel,
    private readonly store: VectorStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  get modelName(): string {
    return this.model.name;
  }

  get modelVersion(): string {
    return this.model.version;
  }

  async embed(items: readonly EmbedItem[]): Promise<EmbedResult> {
    const results = new Array<EmbedItemResult>(items.length);
    const served: number[] = [];
    items.forEach((item, i) => {
      if (item.model === this.model.name && item.model_ver === this.model.version) {
        served.push(i);
      } else {
        results[i] = {
          job_id: item.job_id,
          status: 'error',
          code: 'unknown_model',
          retryable: false,
          message: `this embedder serves model "${this.model.name}" version "${this.model.version}"`,
        };
      }
    });

    if (served.length > 0) {
      const outcomes = await this.model.embed(
        served.map((i) => (items[i] as EmbedItem).text),
        'passage',
      );
      const embeddedAt = this.now().toISOString();
      const points: VectorPoint[] = [];
      const pointItems: number[] = [];
      for (const [k, i] of served.entries()) {
        const item = items[i] as EmbedItem;
        const outcome = outcomes[k];
        if (!outcome) throw new Error('missing embedding outcome');
        if (!outcome.ok) {
          results[i] = {
            job_id: item.job_id,
            status: 'error',
            code: outcome.code,
            retryable: false,
            message: outcome.message,
          };
          continue;
        }
        points.push({
          id: await pointId(item),
          vector: outcome.vector,
          payload: {
            org_id: item.org_id,
            asset_id: item.asset_id,
            segment_id: item.segment_id,
            modality: 'text',
            model: item.model,
            model_ver: item.model_ver,
            ...outcome.stats,
            job_id: item.job_id,
            seq: item.seq,
            embedded_at: embeddedAt,
          },
        });
        pointItems.push(i);
      }
      const applied =
        points.length > 0 ? await this.storeCall(() => this.store.upsert(points)) : [];
      pointItems.forEach((i, k) => {
        const point = points[k] as VectorPoint;
        const { text_len, token_count, truncated, truncated_len } = point.payload;
        results[i] = {
          job_id: point.payload.job_id,
          status: 'ok',
          point_id: point.id,
          applied: applied[k] === true,
          text_len,
          token_count,
          truncated,
          truncated_len,
        };
      });
    }
    return { results, model: this.model.name, model_ver: this.model.version };
  }

  async search(request: SearchRequest): Promise<SearchResult> {
    if (request.model !== undefined && request.model !== this.model.name) {
      throw new ServiceError(
        'unknown_model',
        `model "${request.model}" is not served here; this embedder serves "${this.model.name}"`,
      );
    }
    const [outcome] = await this.model.embed([request.query_text], 'query');
    if (!outcome?.ok) {
      throw new ServiceError(
        'empty_embedding',
        'query_text produced no known tokens, so it has nothing to search for',
      );
    }
    const hits = await this.storeCall(() =>
      this.store.search({
        vector: outcome.vector,
        orgId: request.org_id,
        model: this.model.name,
        modelVer: this.model.version,
        limit: request.limit,
        ...(request.asset_id === undefined ? {} : { assetId: request.asset_id }),
        ...(request.segment_id === undefined ? {} : { segmentId: request.segment_id }),
      }),
    );
    return {
      results: hits.map((h) => ({ point_id: h.id, score: h.score, payload: h.payload })),
      query_model: this.model.name,
      query_model_ver: this.model.version,
      total: hits.length,
    };
  }

  async delete(request: DeleteRequest): Promise<{ deleted: number }> {
    const deleted = await this.storeCall(() =>
      request.point_id !== undefined
        ? this.store.delete({ orgId: request.org_id, pointId: request.point_id })
        : this.store.delete({ orgId: request.org_id, assetId: request.asset_id }),
    );
    return { deleted };
  }

  async readiness(): Promise<Readiness> {
    const model = this.model.ready;
    let store = true;
    let storeError: string | undefined;
    try {
      await this.store.health();
    } catch (err) {
      store = false;
      storeError = err instanceof Error ? err.message : 'unknown error';
    }
    return { ready: model && store, model, store, ...(storeError ? { storeError } : {}) };
  }

  /** Store failures become `store_unavailable`: the caller retries the whole request. */
  private async storeCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ServiceError) throw err;
      throw new ServiceError('store_unavailable', 'the vector store is unavailable', {
        cause: err,
      });
    }
  }
}
