import type { PayloadFilters, PointPayload, VectorPoint, VectorStore } from '../store/types.js';
import { ServiceError } from './errors.js';
import { NO_FAULTS } from './faults.js';
import type { Faults } from './faults.js';
import { pointId } from './ids.js';
import type { Metrics } from './metrics.js';
import { emptyEmbedding, toOutcome } from './model.js';
import type { EmbedOutcome, Encoding } from './model.js';
import type { ModelPool, ServedModel } from './models.js';

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

export type ItemErrorCode =
  | 'unknown_model'
  | 'model_unavailable'
  | 'empty_embedding'
  | 'invalid_embedding'
  | 'injected_fault';

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
      /** The model and version that made the vector (a batch may mix models). */
      model: string;
      model_ver: string;
    }
  | { job_id: string; status: 'error'; code: ItemErrorCode; retryable: boolean; message: string };

export interface EmbedResult {
  results: EmbedItemResult[];
  /** The items' model when they all name one; else the default model. */
  model: string;
  model_ver: string;
}

/** Where a request's time went, in milliseconds (TEI-style `x-*-time` headers). */
export interface Timing {
  tokenizationMs: number;
  /** Time the request's items waited for a forward pass (the longest, across models). */
  queueMs: number;
  /** Time of the forward passes that carried the request's items. */
  inferenceMs: number;
}

export interface CallOptions {
  /** The caller's abort signal: queued work of an aborted request is dropped. */
  signal?: AbortSignal;
}

export interface SearchRequest {
  org_id: string;
  query_text: string;
  limit: number;
  asset_id?: string;
  segment_id?: string;
  model?: string;
  filters?: {
    asset_ids?: string[];
    segment_ids?: string[];
    truncated?: boolean;
    embedded_after?: string;
    embedded_before?: string;
  };
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

export interface ServiceDeps {
  models: ModelPool;
  store: VectorStore;
  metrics: Metrics;
  faults?: Faults | null;
  now?: () => Date;
}

/** Items tokenized between two yields to the event loop (so forward passes keep being fed). */
const TOKENIZE_CHUNK = 64;

/**
 * The embedder's use cases, independent of HTTP: embed-and-store a batch, search, delete.
 * Errors are ServiceErrors; per-item problems are results, not errors. Inference goes through
 * each model's Batcher, so concurrent requests share forward passes.
 */
export class EmbedderService {
  private readonly models: ModelPool;
  private readonly store: VectorStore;
  private readonly metrics: Metrics;
  private readonly faults: Faults | null;
  private readonly now: () => Date;

  constructor(deps: ServiceDeps) {
    this.models = deps.models;
    this.store = deps.store;
    this.metrics = deps.metrics;
    this.faults = deps.faults ?? null;
    this.now = deps.now ?? (() => new Date());
  }

  get modelName(): string {
    return this.models.defaultName;
  }

  get modelVersion(): string {
    return this.models.version;
  }

  /** Every model this embedder serves (default first), all under EMBEDDING_MODEL_VER. */
  get servedModels(): string[] {
    return this.models.names;
  }

  async embed(
    items: readonly EmbedItem[],
    options: CallOptions = {},
  ): Promise<{ result: EmbedResult; timing: Timing }> {
    const faults = this.faults?.current() ?? NO_FAULTS;
    const version = this.models.version;
    const results = new Array<EmbedItemResult>(items.length);
    const groups = new Map<string, number[]>();
    items.forEach((item, i) => {
      if (
        faults.rejectSegmentPrefix !== '' &&
        item.segment_id.startsWith(faults.rejectSegmentPrefix)
      ) {
        results[i] = itemError(item, 'injected_fault', true, 'fault injection: item rejected');
      } else if (!this.models.serves(item.model) || item.model_ver !== version) {
        results[i] = itemError(
          item,
          'unknown_model',
          false,
          `this embedder serves ${this.models.names.map((n) => `"${n}"`).join(', ')} version "${version}"`,
        );
      } else {
        const group = groups.get(item.model);
        if (group) group.push(i);
        else groups.set(item.model, [i]);
      }
    });

    const timing: Timing = { tokenizationMs: 0, queueMs: 0, inferenceMs: 0 };
    const outcomes = new Array<EmbedOutcome | undefined>(items.length);
    const reservation = this.models.limiter.reserve(
      [...groups.values()].reduce((n, g) => n + g.length, 0),
    );
    try {
      const settled = await Promise.allSettled(
        [...groups].map(async ([name, indices]) => {
          let served: ServedModel;
          try {
            served = await this.models.get(name);
          } catch (err) {
            if (!(err instanceof ServiceError) || err.code !== 'model_unavailable') throw err;
            reservation.release(indices.length);
            for (const i of indices) {
              results[i] = itemError(
                items[i] as EmbedItem,
                'model_unavailable',
                err.options.retryable ?? true,
                err.message,
              );
            }
            return;
          }
          const encodings = await this.tokenizeAll(
            served,
            indices.map((i) => (items[i] as EmbedItem).text),
            'passage',
            timing,
            options.signal,
          );
          const toInfer: number[] = [];
          encodings.forEach((encoding, k) => {
            if (encoding.stats.token_count > 0) toInfer.push(k);
            else outcomes[indices[k] as number] = emptyEmbedding(encoding.stats);
          });
          reservation.release(indices.length - toInfer.length);
          const done = await served.batcher.submit(
            toInfer.map((k) => encodings[k] as Encoding),
            'passage',
            options.signal,
          );
          reservation.release(toInfer.length);
          timing.queueMs = Math.max(timing.queueMs, done.queueMs);
          timing.inferenceMs += done.inferenceMs;
          toInfer.forEach((k, row) => {
            outcomes[indices[k] as number] = toOutcome(
              done.vectors[row],
              (encodings[k] as Encoding).stats,
            );
          });
        }),
      );
      const failure = settled.find((s) => s.status === 'rejected');
      if (failure) throw failure.reason;
    } finally {
      reservation.release();
    }

    const embeddedAt = this.now().toISOString();
    const points: VectorPoint[] = [];
    const pointItems: number[] = [];
    for (const [i, outcome] of outcomes.entries()) {
      if (!outcome) continue;
      const item = items[i] as EmbedItem;
      if (!outcome.ok) {
        results[i] = itemError(item, outcome.code, false, outcome.message);
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
    const applied = points.length > 0 ? await this.storeCall(() => this.store.upsert(points)) : [];
    pointItems.forEach((i, k) => {
      const point = points[k] as VectorPoint;
      const { text_len, token_count, truncated, truncated_len, model, model_ver } = point.payload;
      results[i] = {
        job_id: point.payload.job_id,
        status: 'ok',
        point_id: point.id,
        applied: applied[k] === true,
        text_len,
        token_count,
        truncated,
        truncated_len,
        model,
        model_ver,
      };
      this.metrics.embeddedItems.inc({ model });
    });
    for (const r of results)
      if (r.status === 'error') this.metrics.embeddingErrors.inc({ code: r.code });

    const names = new Set(items.filter((it) => this.models.serves(it.model)).map((it) => it.model));
    const model = names.size === 1 ? ([...names][0] as string) : this.models.defaultName;
    return { result: { results, model, model_ver: version }, timing };
  }

  async search(
    request: SearchRequest,
    options: CallOptions = {},
  ): Promise<{ result: SearchResult; timing: Timing }> {
    const name = request.model ?? this.models.defaultName;
    if (!this.models.serves(name)) {
      throw new ServiceError(
        'unknown_model',
        `model "${name}" is not served here; this embedder serves ${this.models.names.map((n) => `"${n}"`).join(', ')}`,
      );
    }
    const timing: Timing = { tokenizationMs: 0, queueMs: 0, inferenceMs: 0 };
    const reservation = this.models.limiter.reserve(1);
    let vector: Float32Array;
    try {
      const served = await this.models.get(name);
      const [encoding] = await this.tokenizeAll(served, [request.query_text], 'query', timing);
      const outcome =
        encoding && encoding.stats.token_count > 0
          ? await (async () => {
              const done = await served.batcher.submit([encoding], 'query', options.signal);
              timing.queueMs = done.queueMs;
              timing.inferenceMs = done.inferenceMs;
              return toOutcome(done.vectors[0], encoding.stats);
            })()
          : undefined;
      if (!outcome?.ok) {
        throw new ServiceError(
          'empty_embedding',
          'query_text produced no known tokens, so it has nothing to search for',
        );
      }
      vector = outcome.vector;
    } finally {
      reservation.release();
    }
    const hits = await this.storeCall(() =>
      this.store.search({
        vector,
        orgId: request.org_id,
        model: name,
        modelVer: this.models.version,
        limit: request.limit,
        ...(request.asset_id === undefined ? {} : { assetId: request.asset_id }),
        ...(request.segment_id === undefined ? {} : { segmentId: request.segment_id }),
        ...(request.filters === undefined ? {} : { filters: payloadFilters(request.filters) }),
      }),
    );
    this.metrics.searchResults.observe(hits.length);
    return {
      result: {
        results: hits.map((h) => ({ point_id: h.id, score: h.score, payload: h.payload })),
        query_model: name,
        query_model_ver: this.models.version,
        total: hits.length,
      },
      timing,
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
    let model: boolean;
    try {
      model = this.models.defaultModel.model.ready;
    } catch {
      model = false;
    }
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

  /**
   * Tokenizes texts once each (truncated to the window), yielding to the event loop between
   * chunks so a large request does not hold up the forward passes of others.
   */
  private async tokenizeAll(
    served: ServedModel,
    texts: readonly string[],
    kind: 'passage' | 'query',
    timing: Timing,
    signal?: AbortSignal,
  ): Promise<Encoding[]> {
    const out: Encoding[] = [];
    for (let start = 0; start < texts.length; start += TOKENIZE_CHUNK) {
      if (start > 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (signal?.aborted) {
          throw new ServiceError('cancelled', 'the request was aborted by its caller');
        }
      }
      const t0 = performance.now();
      for (const text of texts.slice(start, start + TOKENIZE_CHUNK)) {
        out.push(served.model.tokenize(text, kind));
      }
      timing.tokenizationMs += performance.now() - t0;
    }
    return out;
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

function itemError(
  item: EmbedItem,
  code: ItemErrorCode,
  retryable: boolean,
  message: string,
): EmbedItemResult {
  return { job_id: item.job_id, status: 'error', code, retryable, message };
}

/** The wire form of search filters (snake_case) as the store's PayloadFilters. */
function payloadFilters(f: NonNullable<SearchRequest['filters']>): PayloadFilters {
  return {
    ...(f.asset_ids === undefined ? {} : { assetIds: f.asset_ids }),
    ...(f.segment_ids === undefined ? {} : { segmentIds: f.segment_ids }),
    ...(f.truncated === undefined ? {} : { truncated: f.truncated }),
    ...(f.embedded_after === undefined ? {} : { embeddedAfter: f.embedded_after }),
    ...(f.embedded_before === undefined ? {} : { embeddedBefore: f.embedded_before }),
  };
}
