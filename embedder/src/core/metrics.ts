/**
 * Prometheus metrics (prom-client), one Registry per embedder instance so that several embedders
 * can run in one process (tests) without sharing counters. Labels only ever carry served model
 * names (from the configuration), error codes, HTTP statuses and queue priorities: never text,
 * ids or anything else a caller wrote.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchObserver, Priority } from './batcher.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const COUNT_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const TOKEN_BUCKETS = [16, 64, 256, 1024, 4096, 16_384, 65_536, 262_144];
const RESULT_BUCKETS = [0, 1, 5, 10, 25, 50, 100];

export class Metrics {
  readonly registry = new Registry();

  readonly embeddingRequests = new Counter({
    name: 'heimdex_embedding_requests_total',
    help: 'POST /internal/embed requests, by HTTP status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly embeddingDuration = new Histogram({
    name: 'heimdex_embedding_duration_seconds',
    help: 'Time to answer POST /internal/embed (tokenize, queue, infer, store).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly embeddingErrors = new Counter({
    name: 'heimdex_embedding_errors_total',
    help: 'Failed /internal/embed requests and per-item errors, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly embeddedItems = new Counter({
    name: 'heimdex_embedding_items_total',
    help: 'Items embedded and stored, by model.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly searchRequests = new Counter({
    name: 'heimdex_search_requests_total',
    help: 'POST /internal/search requests, by HTTP status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly searchDuration = new Histogram({
    name: 'heimdex_search_duration_seconds',
    help: 'Time to answer POST /internal/search (tokenize, queue, infer, store query).',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly searchErrors = new Counter({
    name: 'heimdex_search_errors_total',
    help: 'Failed /internal/search requests, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly searchResults = new Histogram({
    name: 'heimdex_search_results_count',
    help: 'Results returned per search.',
    buckets: RESULT_BUCKETS,
    registers: [this.registry],
  });
  readonly modelCacheHits = new Counter({
    name: 'heimdex_model_cache_hits_total',
    help: 'Requests for a model that was already loaded.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly modelCacheMisses = new Counter({
    name: 'heimdex_model_cache_misses_total',
    help: 'Requests for a model that had to be loaded (or was being loaded) first.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'heimdex_queue_depth',
    help: 'Items waiting for a forward pass, by model and priority.',
    labelNames: ['model', 'priority'] as const,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'heimdex_batch_size',
    help: 'Items per forward pass.',
    labelNames: ['model'] as const,
    buckets: COUNT_BUCKETS,
    registers: [this.registry],
  });
  readonly batchTokens = new Histogram({
    name: 'heimdex_batch_tokens',
    help: 'Padded tokens per forward pass (items × longest item).',
    labelNames: ['model'] as const,
    buckets: TOKEN_BUCKETS,
    registers: [this.registry],
  });
  readonly inferenceDuration = new Histogram({
    name: 'heimdex_inference_duration_seconds',
    help: 'Duration of one forward pass.',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly cancelledItems = new Counter({
    name: 'heimdex_cancelled_items_total',
    help: 'Queued items dropped before inference because their request was aborted.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean; admittedItems?: () => number } = {}) {
    const admitted = options.admittedItems;
    if (admitted) {
      new Gauge({
        name: 'heimdex_queue_admitted_items',
        help: 'Items admitted and not yet embedded (bounded by EMBEDDER_MAX_QUEUED_ITEMS).',
        registers: [this.registry],
        collect() {
          this.set(admitted());
        },
      });
    }
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Gauges of the embedded store's in-memory search index: points held and the bytes of their
   * vectors and norms (capacity included). Both 0 while the index is off or released.
   */
  watchMemoryIndex(stats: () => { points: number; vectorBytes: number } | null): void {
    new Gauge({
      name: 'heimdex_store_memory_index_points',
      help: 'Points in the embedded store in-memory search index (0 when it is off or released).',
      registers: [this.registry],
      collect() {
        this.set(stats()?.points ?? 0);
      },
    });
    new Gauge({
      name: 'heimdex_store_memory_index_bytes',
      help: 'Bytes of vectors and norms held by the in-memory search index, spare capacity included.',
      registers: [this.registry],
      collect() {
        this.set(stats()?.vectorBytes ?? 0);
      },
    });
  }

  /** The batcher hooks of one model. */
  batchObserver(model: string): BatchObserver {
    this.cancelledItems.inc({ model }, 0);
    for (const priority of ['query', 'passage'] as const)
      this.queueDepth.set({ model, priority }, 0);
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
}
