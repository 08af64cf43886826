/**
 * Prometheus metrics (prom-client), one Registry per embedder instance so that several embedders
 * can run in one process (tests) without sharing counters. Labels only ever carry served model
 * names (from the configuration), error codes, HTTP statuses and queue priorities: never text,
 * ids or anything else a caller wrote.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PRIORITIES } from './batcher.js';
import type { BatchObserver, Priority } from './batcher.js';
import { REMOTE_OUTCOMES } from './remote-http.js';
import type { BreakerState, RemoteObserver } from './remote-http.js';

/** The remote model servers an embedder may call (the `backend` label). */
export type RemoteKind = 'embedding' | 'rerank';

/** heimdex_remote_breaker_state's values. */
const BREAKER_VALUES: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const COUNT_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const TOKEN_BUCKETS = [16, 64, 256, 1024, 4096, 16_384, 65_536, 262_144];
const RESULT_BUCKETS = [0, 1, 5, 10, 25, 50, 100];

/** Every metric's help text, by its name after the `heimdex_` prefix. */
const HELP = {
  embedding_requests_total: 'POST /internal/embed requests, by HTTP status.',
  embedding_duration_seconds:
    'Time to answer POST /internal/embed (tokenize, queue, infer, store).',
  embedding_errors_total: 'Failed /internal/embed requests and per-item errors, by error code.',
  embedding_items_total: 'Items embedded and stored, by model.',
  search_requests_total: 'POST /internal/search requests, by HTTP status.',
  search_duration_seconds:
    'Time to answer POST /internal/search (tokenize, queue, infer, store query).',
  search_errors_total: 'Failed /internal/search requests, by error code.',
  search_results_count: 'Results returned per search.',
  api_embeddings_requests_total: 'POST /v1/embeddings requests, by HTTP status.',
  api_embeddings_duration_seconds: 'Time to answer POST /v1/embeddings (tokenize, queue, infer).',
  api_embeddings_errors_total: 'Failed POST /v1/embeddings requests, by error code.',
  api_embeddings_inputs_total: 'Texts embedded by POST /v1/embeddings, by model.',
  api_embeddings_truncated_total:
    "Texts of POST /v1/embeddings cut to the model's window before embedding, by model.",
  rerank_requests_total: 'POST /v1/rerank requests, by HTTP status.',
  rerank_duration_seconds: 'Time to answer POST /v1/rerank (tokenize, queue, infer).',
  rerank_errors_total: 'Failed POST /v1/rerank requests, by error code.',
  rerank_texts_total: 'Texts scored by POST /v1/rerank, by reranker.',
  rerank_truncated_total:
    "Query/text pairs of POST /v1/rerank cut to the reranker's window before scoring, by reranker.",
  model_cache_hits_total: 'Requests for a model that was already loaded.',
  model_cache_misses_total:
    'Requests for a model that had to be loaded (or was being loaded) first.',
  queue_depth: 'Items waiting for a forward pass, by model and priority.',
  batch_size: 'Items per forward pass.',
  batch_tokens: 'Padded tokens per forward pass (items × longest item).',
  inference_duration_seconds: 'Duration of one forward pass.',
  cancelled_items_total: 'Queued items dropped before inference because their request was aborted.',
  queue_admitted_items:
    'Items admitted and not yet embedded (bounded by EMBEDDER_MAX_QUEUED_ITEMS).',
  remote_requests_total:
    'Attempts to call a remote model server (EMBEDDING_BACKEND=openai, RERANK_BACKEND=tei|cohere), by backend and outcome (ok, rate_limited, server_error, client_error, timeout, network_error, invalid_response, breaker_open).',
  remote_request_duration_seconds: 'Duration of one attempt to call a remote model server.',
  remote_retries_total: 'Retries of calls to a remote model server, by backend.',
  remote_breaker_state:
    "A remote model server's circuit breaker, by backend: 0 closed, 1 half-open (probing), 2 open (calls fail fast with 503).",
  store_memory_index_points:
    'Points in the embedded store in-memory search index (0 when it is off or released).',
  store_memory_index_bytes:
    'Bytes of vectors and norms held by the in-memory search index, spare capacity included.',
} as const;

type MetricName = keyof typeof HELP;

export class Metrics {
  readonly registry = new Registry();

  readonly embeddingRequests = this.counter('embedding_requests_total', ['status']);
  readonly embeddingDuration = this.histogram('embedding_duration_seconds', LATENCY_BUCKETS);
  readonly embeddingErrors = this.counter('embedding_errors_total', ['code']);
  readonly embeddedItems = this.counter('embedding_items_total', ['model']);
  readonly searchRequests = this.counter('search_requests_total', ['status']);
  readonly searchDuration = this.histogram('search_duration_seconds', LATENCY_BUCKETS);
  readonly searchErrors = this.counter('search_errors_total', ['code']);
  readonly searchResults = this.histogram('search_results_count', RESULT_BUCKETS);
  readonly apiEmbeddingsRequests = this.counter('api_embeddings_requests_total', ['status']);
  readonly apiEmbeddingsDuration = this.histogram(
    'api_embeddings_duration_seconds',
    LATENCY_BUCKETS,
  );
  readonly apiEmbeddingsErrors = this.counter('api_embeddings_errors_total', ['code']);
  readonly apiEmbeddingsInputs = this.counter('api_embeddings_inputs_total', ['model']);
  readonly apiEmbeddingsTruncated = this.counter('api_embeddings_truncated_total', ['model']);
  readonly rerankRequests = this.counter('rerank_requests_total', ['status']);
  readonly rerankDuration = this.histogram('rerank_duration_seconds', LATENCY_BUCKETS);
  readonly rerankErrors = this.counter('rerank_errors_total', ['code']);
  readonly rerankTexts = this.counter('rerank_texts_total', ['model']);
  readonly rerankTruncated = this.counter('rerank_truncated_total', ['model']);
  readonly modelCacheHits = this.counter('model_cache_hits_total', ['model']);
  readonly modelCacheMisses = this.counter('model_cache_misses_total', ['model']);
  readonly queueDepth = this.gauge('queue_depth', ['model', 'priority']);
  readonly batchSize = this.histogram('batch_size', COUNT_BUCKETS, ['model']);
  readonly batchTokens = this.histogram('batch_tokens', TOKEN_BUCKETS, ['model']);
  readonly inferenceDuration = this.histogram('inference_duration_seconds', LATENCY_BUCKETS, [
    'model',
  ]);
  readonly cancelledItems = this.counter('cancelled_items_total', ['model']);
  readonly remoteRequests = this.counter('remote_requests_total', ['backend', 'outcome']);
  readonly remoteDuration = this.histogram('remote_request_duration_seconds', LATENCY_BUCKETS, [
    'backend',
  ]);
  readonly remoteRetries = this.counter('remote_retries_total', ['backend']);
  readonly remoteBreakerState = this.gauge('remote_breaker_state', ['backend']);

  constructor(options: { defaultMetrics?: boolean; admittedItems?: () => number } = {}) {
    if (options.admittedItems) this.scrapedGauge('queue_admitted_items', options.admittedItems);
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Gauges of the embedded store's in-memory search index: points held and the bytes of their
   * vectors and norms (capacity included). Both 0 while the index is off or released.
   */
  watchMemoryIndex(stats: () => { points: number; vectorBytes: number } | null): void {
    this.scrapedGauge('store_memory_index_points', () => stats()?.points ?? 0);
    this.scrapedGauge('store_memory_index_bytes', () => stats()?.vectorBytes ?? 0);
  }

  /** The batcher hooks of one model. */
  batchObserver(model: string): BatchObserver {
    this.cancelledItems.inc({ model }, 0);
    for (const priority of PRIORITIES) this.queueDepth.set({ model, priority }, 0);
    return {
      queueDepth: (priority: Priority, items: number) =>
        this.queueDepth.set({ model, priority }, items),
      batch: (items, paddedTokens, seconds) => {
        this.batchSize.observe({ model }, items);
        this.batchTokens.observe({ model }, paddedTokens);
        this.inferenceDuration.observe({ model }, seconds);
      },
      cancelled: (items) => this.cancelledItems.inc({ model }, items),
    };
  }

  /** The hooks of a remote model server's client (core/remote-http.ts). */
  remoteObserver(backend: RemoteKind): RemoteObserver {
    for (const outcome of REMOTE_OUTCOMES) this.remoteRequests.inc({ backend, outcome }, 0);
    this.remoteRetries.inc({ backend }, 0);
    return {
      attempt: (outcome, seconds) => {
        this.remoteRequests.inc({ backend, outcome });
        if (outcome !== 'breaker_open') this.remoteDuration.observe({ backend }, seconds);
      },
      retry: () => this.remoteRetries.inc({ backend }),
      breaker: (state) => this.remoteBreakerState.set({ backend }, BREAKER_VALUES[state]),
    };
  }

  private counter<L extends string>(name: MetricName, labelNames: readonly L[]): Counter<L> {
    return new Counter({ ...this.describe(name), labelNames });
  }

  private gauge<L extends string>(name: MetricName, labelNames: readonly L[]): Gauge<L> {
    return new Gauge({ ...this.describe(name), labelNames });
  }

  private histogram<L extends string>(
    name: MetricName,
    buckets: number[],
    labelNames: readonly L[] = [],
  ): Histogram<L> {
    return new Histogram({ ...this.describe(name), labelNames, buckets });
  }

  /** A gauge without labels whose value `read` gives each time the metrics are scraped. */
  private scrapedGauge(name: MetricName, read: () => number): void {
    new Gauge({
      ...this.describe(name),
      collect() {
        this.set(read());
      },
    });
  }

  /** What every metric's configuration starts with: its full name, help and registry. */
  private describe(name: MetricName) {
    return { name: `heimdex_${name}`, help: HELP[name], registers: [this.registry] };
  }
}
