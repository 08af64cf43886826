import type { Chunking, GroupBy, ItemErrorCode } from '../../../contract/internal.js';
import { DEFAULT_SEARCH_MODE } from '../../../contract/internal.js';
import type {
  Fusion,
  PayloadFilters,
  PointPayload,
  RankInfo,
  SearchHit,
  SearchMode,
  TermVector,
  VectorPoint,
  VectorStore,
} from '../store/types.js';
import type { TermAnalyzer } from './keywords.js';
import { ServiceError } from './errors.js';
import { NO_FAULTS } from './faults.js';
import type { Faults } from './faults.js';
import type { QueueLimiter } from './batcher.js';
import { chunkPointId, pointId } from '../../../contract/ids.js';
import type { Metrics } from './metrics.js';
import { emptyEmbedding, toOutcome } from './model.js';
import type { ChunkEncoding, EmbedOutcome, Encoding } from './model.js';
import type { EmbeddingBackend } from './backend.js';
import type { ModelPool, ServedModel } from './models.js';
import { DEFAULT_FUSION, bestPerSegment, fuseSegments, hybridCandidates } from '../store/fusion.js';

/** One job's text to embed and store (the HTTP edge maps the wire's EmbedItem to this). */
export interface EmbedJob {
  jobId: string;
  /** The job's sequence number: the highest seq of a point wins. */
  seq: number;
  orgId: string;
  assetId: string;
  segmentId: string;
  text: string;
  model: string;
  modelVer: string;
  /** Default: windows of the model's size (EmbeddingModel.tokenizeChunks). */
  chunking?: Chunking;
}

export type { ItemErrorCode };

export type EmbedJobResult =
  | {
      jobId: string;
      status: 'ok';
      /** The segment's point id (its first chunk's). */
      pointId: string;
      /** Points the text was written as (1 unless chunked). */
      chunkCount: number;
      /** False when a newer seq is already stored for the point (latest wins; not an error). */
      applied: boolean;
      textLen: number;
      tokenCount: number;
      truncated: boolean;
      truncatedLen: number;
      /** The model and version that made the vector (a batch may mix models). */
      model: string;
      modelVer: string;
    }
  | { jobId: string; status: 'error'; code: ItemErrorCode; retryable: boolean; message: string };

export interface EmbedResult {
  results: EmbedJobResult[];
  /** The items' model when they all name one; else the default model. */
  model: string;
  modelVer: string;
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

export interface SearchQuery {
  orgId: string;
  queryText: string;
  limit: number;
  /** Default: DEFAULT_SEARCH_MODE. */
  mode?: SearchMode;
  /** Hybrid only; default fusion.ts's DEFAULT_FUSION. */
  fusion?: Fusion;
  /** Add each hit's rank and score in the dense and keyword rankings. */
  explain?: boolean;
  /** Default `segment`: one result per segment (its best chunk); `chunk`: every chunk. */
  groupBy?: GroupBy;
  assetId?: string;
  segmentId?: string;
  /** Default: the default model (EMBEDDING_MODEL_NAME). */
  model?: string;
  filters?: PayloadFilters;
}

export interface SearchResult {
  results: Array<{
    pointId: string;
    score: number;
    payload: PointPayload;
    explain?: { dense: RankInfo | null; keyword: RankInfo | null };
  }>;
  /**
   * The mode used: the requested one, except that a hybrid search of a store without a keyword
   * index (a Qdrant collection created before it) answers with the dense ranking.
   */
  mode: SearchMode;
  queryModel: string;
  queryModelVer: string;
  total: number;
}

export type DeleteTarget = { orgId: string } & (
  { pointId: string; assetId?: undefined } | { assetId: string; pointId?: undefined }
);

export interface Readiness {
  ready: boolean;
  model: boolean;
  store: boolean;
  /** Why the store is not ready (a store error message; never request data). */
  storeError?: string;
}

export interface ServiceDeps {
  models: ModelPool<EmbeddingBackend>;
  /** The admission limit all models' batchers share (429 beyond it). */
  admission: QueueLimiter;
  store: VectorStore;
  /** Turns texts into the keyword index's keyed term vectors (KEYWORD_INDEX_KEY). */
  keywords: TermAnalyzer;
  metrics: Metrics;
  faults?: Faults | null;
  now?: () => Date;
}

/** Items tokenized between two yields to the event loop (so forward passes keep being fed). */
const TOKENIZE_CHUNK = 64;

/**
 * Segment search: the store is asked for `limit` × this many chunks first, and four times as
 * many each time that yields fewer than `limit` segments while more chunks exist, up to
 * MAX_GROUP_CANDIDATES (a segment has ~2 chunks per 1,000 characters at the default windows).
 * Hybrid asks each ranking for its fusion candidates' worth (fusion.ts's hybridCandidates) of
 * segments the same way.
 */
const GROUP_FETCH_FACTOR = 2;
const MAX_GROUP_CANDIDATES = 4000;

/**
 * The embedder's use cases, independent of HTTP: embed-and-store a batch, search, delete.
 * Errors are ServiceErrors; per-item problems are results, not errors. Inference goes through
 * each model's Batcher, so concurrent requests share forward passes.
 */
export class EmbedderService {
  private readonly models: ModelPool<EmbeddingBackend>;
  private readonly admission: QueueLimiter;
  private readonly store: VectorStore;
  private readonly keywords: TermAnalyzer;
  private readonly metrics: Metrics;
  private readonly faults: Faults | null;
  private readonly now: () => Date;

  constructor(deps: ServiceDeps) {
    this.models = deps.models;
    this.admission = deps.admission;
    this.store = deps.store;
    this.keywords = deps.keywords;
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
    items: readonly EmbedJob[],
    options: CallOptions = {},
  ): Promise<{ result: EmbedResult; timing: Timing }> {
    const faults = this.faults?.current() ?? NO_FAULTS;
    const version = this.models.version;
    const results = new Array<EmbedJobResult>(items.length);
    const groups = new Map<string, number[]>();
    items.forEach((item, i) => {
      if (
        faults.rejectSegmentPrefix !== '' &&
        item.segmentId.startsWith(faults.rejectSegmentPrefix)
      ) {
        results[i] = itemError(item, 'injected_fault', true, 'fault injection: item rejected');
      } else if (!this.models.serves(item.model) || item.modelVer !== version) {
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
    // Per item: its chunks' encodings and, once inferred, their outcomes (in chunk order).
    const encodings = new Array<ChunkEncoding[] | undefined>(items.length);
    const outcomes = new Array<EmbedOutcome[] | undefined>(items.length);
    const admitted = this.admission.reserve([...groups.values()].reduce((n, g) => n + g.length, 0));
    try {
      const settled = await Promise.allSettled(
        [...groups].map(async ([name, indices]) => {
          let served: ServedModel;
          try {
            served = await this.models.get(name);
          } catch (err) {
            if (!(err instanceof ServiceError) || err.code !== 'model_unavailable') throw err;
            for (const i of indices) {
              results[i] = itemError(
                items[i] as EmbedJob,
                'model_unavailable',
                err.options.retryable ?? true,
                err.message,
              );
            }
            return;
          }
          const chunked = await this.tokenizePassages(
            served,
            indices.map((i) => items[i] as EmbedJob),
            timing,
            options.signal,
          );
          const toInfer: ChunkEncoding[] = [];
          const owner: number[] = [];
          chunked.forEach((chunks, k) => {
            const i = indices[k] as number;
            encodings[i] = chunks;
            if ((chunks[0] as ChunkEncoding).stats.token_count === 0) {
              outcomes[i] = [emptyEmbedding((chunks[0] as ChunkEncoding).stats)];
              return;
            }
            outcomes[i] = [];
            for (const c of chunks) {
              toInfer.push(c);
              owner.push(i);
            }
          });
          // Admission counted texts; the chunks beyond one per text join the reservation.
          const extra = this.admission.reserve(Math.max(0, toInfer.length - indices.length));
          try {
            const done = await served.batcher.submit(toInfer, 'passage', options.signal, admitted);
            timing.queueMs = Math.max(timing.queueMs, done.queueMs);
            timing.inferenceMs += done.inferenceMs;
            toInfer.forEach((c, row) => {
              outcomes[owner[row] as number]?.push(toOutcome(done.vectors[row], c.stats));
            });
          } finally {
            extra.release();
          }
        }),
      );
      const failure = settled.find((s) => s.status === 'rejected');
      if (failure) throw failure.reason;
    } finally {
      admitted.release(); // what never reached a batcher: failed loads, texts without tokens
    }

    const embeddedAt = this.now().toISOString();
    const points: VectorPoint[] = [];
    /** Per item with points: its index and its points' range in `points`. */
    const written: Array<{ item: number; from: number; to: number }> = [];
    for (const [i, chunkOutcomes] of outcomes.entries()) {
      if (!chunkOutcomes) continue;
      const item = items[i] as EmbedJob;
      const failed = chunkOutcomes.find((o) => !o.ok);
      if (failed && !failed.ok) {
        // One chunk without a vector fails the text: a segment is written whole or not at all.
        results[i] = itemError(item, failed.code, false, failed.message);
        continue;
      }
      const key = {
        org_id: item.orgId,
        asset_id: item.assetId,
        segment_id: item.segmentId,
        model: item.model,
        model_ver: item.modelVer,
      };
      const segmentPointId = await pointId(key);
      const chunks = encodings[i] as ChunkEncoding[];
      const from = points.length;
      for (const [k, outcome] of chunkOutcomes.entries()) {
        if (!outcome.ok) continue;
        const { chunk } = chunks[k] as ChunkEncoding;
        const payload: PointPayload = {
          ...key,
          modality: 'text',
          ...outcome.stats,
          job_id: item.jobId,
          seq: item.seq,
          embedded_at: embeddedAt,
          segment_point_id: segmentPointId,
          chunk_index: chunk.index,
          chunk_count: chunk.count,
          chunk_start: chunk.start,
          chunk_end: chunk.end,
        };
        points.push({
          id: await chunkPointId(key, chunk.index),
          vector: outcome.vector,
          payload,
          // BM25 ranks whole texts (it has no window): the segment's first point holds the terms
          // of the whole text, its other chunks none, so the keyword index counts each text once
          // with its true length (chunk-wise BM25 measured worse: eval/results, 2026-12-02).
          ...(chunk.index === 0 ? { terms: this.keywords.document(item.orgId, item.text) } : {}),
        });
      }
      written.push({ item: i, from, to: points.length });
    }
    const applied =
      points.length > 0 ? await this.storeCall(() => this.store.writeSegments(points)) : [];
    for (const { item: i, from, to } of written) {
      const point = points[from] as VectorPoint;
      const { text_len, token_count, truncated, truncated_len, model, model_ver } = point.payload;
      results[i] = {
        jobId: point.payload.job_id,
        status: 'ok',
        pointId: point.payload.segment_point_id,
        chunkCount: to - from,
        applied: applied.slice(from, to).every((a) => a === true),
        textLen: text_len,
        tokenCount: token_count,
        truncated,
        truncatedLen: truncated_len,
        model,
        modelVer: model_ver,
      };
      this.metrics.embeddedItems.inc({ model });
    }
    for (const r of results)
      if (r.status === 'error') this.metrics.embeddingErrors.inc({ code: r.code });

    const names = new Set(items.filter((it) => this.models.serves(it.model)).map((it) => it.model));
    const model = names.size === 1 ? ([...names][0] as string) : this.models.defaultName;
    return { result: { results, model, modelVer: version }, timing };
  }

  /**
   * Searches the caller's points in the request's mode: dense (the query's vector), keyword (BM25
   * over the query's keyed terms; the model is not run) or hybrid (both, fused by the store).
   */
  async search(
    request: SearchQuery,
    options: CallOptions = {},
  ): Promise<{ result: SearchResult; timing: Timing }> {
    const name = request.model ?? this.models.defaultName;
    if (!this.models.serves(name)) {
      throw new ServiceError(
        'unknown_model',
        `model "${name}" is not served here; this embedder serves ${this.models.names.map((n) => `"${n}"`).join(', ')}`,
      );
    }
    const requested = request.mode ?? DEFAULT_SEARCH_MODE;
    if (requested === 'keyword' && !this.store.keywordIndex) {
      throw new ServiceError(
        'keyword_index_unavailable',
        'this vector store has no keyword index (its collection predates it); search in dense mode, or re-ingest into a new collection (docs/DEPLOY.md)',
      );
    }
    const mode: SearchMode =
      requested === 'hybrid' && !this.store.keywordIndex ? 'dense' : requested;
    const timing: Timing = { tokenizationMs: 0, queueMs: 0, inferenceMs: 0 };
    const vector =
      mode === 'keyword'
        ? undefined
        : await this.embedQuery(name, request.queryText, timing, options.signal);
    const terms: TermVector | undefined =
      mode === 'dense' ? undefined : this.keywords.query(request.orgId, request.queryText);
    const searchStore = (limit: number, ranking: SearchMode = mode) =>
      this.storeCall(() =>
        this.store.search({
          mode: ranking,
          ...(vector === undefined ? {} : { vector }),
          ...(terms === undefined ? {} : { terms }),
          ...(request.fusion === undefined || ranking !== 'hybrid'
            ? {}
            : { fusion: request.fusion }),
          ...(request.explain === undefined || ranking !== mode
            ? {}
            : { explain: request.explain }),
          orgId: request.orgId,
          model: name,
          modelVer: this.models.version,
          limit,
          ...(request.assetId === undefined ? {} : { assetId: request.assetId }),
          ...(request.segmentId === undefined ? {} : { segmentId: request.segmentId }),
          ...(request.filters === undefined ? {} : { filters: request.filters }),
        }),
      );
    let hits: SearchHit[];
    if (request.groupBy === 'chunk') {
      hits = await searchStore(request.limit);
    } else if (mode === 'hybrid') {
      // Segments, hybrid: each ranking by segment, then fused (fusion.ts's fuseSegments).
      const want = hybridCandidates(request.limit);
      let fetch = Math.min(MAX_GROUP_CANDIDATES, want * GROUP_FETCH_FACTOR);
      for (;;) {
        const [dense, keyword] = await Promise.all([
          searchStore(fetch, 'dense'),
          searchStore(fetch, 'keyword'),
        ]);
        const short = (chunks: readonly SearchHit[]) =>
          bestPerSegment(chunks).length < want && chunks.length >= fetch;
        if (fetch >= MAX_GROUP_CANDIDATES || !(short(dense) || short(keyword))) {
          hits = fuseSegments(
            dense,
            keyword,
            request.fusion ?? DEFAULT_FUSION,
            request.limit,
            request.explain === true,
          );
          break;
        }
        fetch = Math.min(MAX_GROUP_CANDIDATES, fetch * 4);
      }
    } else {
      // Segments: fetch chunks until `limit` segments are among them or the store has no more.
      let fetch = Math.min(MAX_GROUP_CANDIDATES, request.limit * GROUP_FETCH_FACTOR);
      for (;;) {
        const chunks = await searchStore(fetch);
        hits = bestPerSegment(chunks);
        if (hits.length >= request.limit || chunks.length < fetch || fetch >= MAX_GROUP_CANDIDATES)
          break;
        fetch = Math.min(MAX_GROUP_CANDIDATES, fetch * 4);
      }
      hits = hits.slice(0, request.limit);
    }
    this.metrics.searchResults.observe(hits.length);
    return {
      result: {
        // A segment's result is the segment's point (its id deletes every chunk); a chunk's, the chunk's.
        results: hits.map((h) => ({
          pointId: request.groupBy === 'chunk' ? h.id : h.payload.segment_point_id,
          score: h.score,
          payload: h.payload,
          ...(h.explain === undefined ? {} : { explain: h.explain }),
        })),
        mode,
        queryModel: name,
        queryModelVer: this.models.version,
        total: hits.length,
      },
      timing,
    };
  }

  /** The query's vector, through the model's batcher at query priority. */
  private async embedQuery(
    name: string,
    text: string,
    timing: Timing,
    signal: AbortSignal | undefined,
  ): Promise<Float32Array> {
    const reservation = this.admission.reserve(1);
    try {
      const served = await this.models.get(name);
      const [encoding] = await this.tokenizeAll(served, [text], 'query', timing);
      const outcome =
        encoding && encoding.stats.token_count > 0
          ? await (async () => {
              const done = await served.batcher.submit([encoding], 'query', signal);
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
      return outcome.vector;
    } finally {
      reservation.release();
    }
  }

  async delete(target: DeleteTarget): Promise<{ deleted: number }> {
    const deleted = await this.storeCall(() => this.store.delete(target));
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
      if (start > 0) await this.yieldUnlessAborted(signal);
      const t0 = performance.now();
      for (const text of texts.slice(start, start + TOKENIZE_CHUNK)) {
        out.push(served.model.tokenize(text, kind));
      }
      timing.tokenizationMs += performance.now() - t0;
    }
    return out;
  }

  /** Passages' chunks (EmbeddingModel.tokenizeChunks), yielding between groups as tokenizeAll. */
  private async tokenizePassages(
    served: ServedModel,
    jobs: readonly EmbedJob[],
    timing: Timing,
    signal?: AbortSignal,
  ): Promise<ChunkEncoding[][]> {
    const out: ChunkEncoding[][] = [];
    for (let start = 0; start < jobs.length; start += TOKENIZE_CHUNK) {
      if (start > 0) await this.yieldUnlessAborted(signal);
      const t0 = performance.now();
      for (const job of jobs.slice(start, start + TOKENIZE_CHUNK)) {
        out.push(served.model.tokenizeChunks(job.text, job.chunking));
      }
      timing.tokenizationMs += performance.now() - t0;
    }
    return out;
  }

  private async yieldUnlessAborted(signal: AbortSignal | undefined): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    if (signal?.aborted)
      throw new ServiceError('cancelled', 'the request was aborted by its caller');
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
  item: EmbedJob,
  code: ItemErrorCode,
  retryable: boolean,
  message: string,
): EmbedJobResult {
  return { jobId: item.jobId, status: 'error', code, retryable, message };
}
