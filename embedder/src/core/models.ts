/**
 * The models one embedder serves: the default (EMBEDDING_MODEL_NAME, loaded and warmed at start)
 * and the extras of EMBEDDING_MODELS, loaded lazily on first use. Each served model has its own
 * Batcher (their shared admission limit is the batcher module's QueueLimiter, held by the
 * service). Loads run one at a time (transformers.js keeps its model-path settings in globals);
 * concurrent first requests for a model share its load, a failed load is reported and tried again
 * by a later request, and a model whose dimension differs from the store's is refused for good.
 */
import type { BatchingConfig, ModelConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { EmbeddingBackend } from './backend.js';
import { Batcher } from './batcher.js';
import { ServiceError, StartupError, shortReason } from './errors.js';
import { withInferenceFaults } from './faults.js';
import type { Faults } from './faults.js';
import type { Metrics } from './metrics.js';
import { EmbeddingModel } from './model.js';
import { Mutex } from './mutex.js';

export interface ServedModel<M extends EmbeddingBackend = EmbeddingBackend> {
  model: M;
  batcher: Batcher;
}

export interface ModelPoolOptions<M extends EmbeddingBackend = EmbeddingModel> {
  model: ModelConfig;
  extraModels: readonly string[];
  batching: BatchingConfig;
  metrics: Metrics;
  logger: Logger;
  /** Fault injection (tests only): `inference_delay_ms` slows every forward pass. */
  faults?: Faults | null;
  /**
   * Loads one model (default: EmbeddingModel.load, a local model; server.ts passes the remote
   * backend's loader for EMBEDDING_BACKEND=openai).
   */
  load?: (config: ModelConfig) => Promise<M>;
}

/** The served models, of backend type M (EmbeddingModel unless a loader says otherwise). */
export class ModelPool<M extends EmbeddingBackend = EmbeddingModel> {
  private readonly served: ReadonlySet<string>;
  private readonly loaded = new Map<string, ServedModel<M>>();
  private readonly loading = new Map<string, Promise<ServedModel<M>>>();
  private readonly refused = new Map<string, ServiceError>();
  private readonly loadGate = new Mutex();
  private readonly load: (config: ModelConfig) => Promise<M>;
  private storeDim: number | null = null;
  private closed = false;

  constructor(private readonly options: ModelPoolOptions<M>) {
    this.served = new Set([options.model.name, ...options.extraModels]);
    // Without a loader, M is its default, EmbeddingModel.
    this.load =
      options.load ??
      ((config) => EmbeddingModel.load(config) as Promise<EmbeddingBackend> as Promise<M>);
    // Every served model has its series from the start (a scrape shows 0, not nothing).
    for (const model of this.served) {
      options.metrics.modelCacheHits.inc({ model }, 0);
      options.metrics.modelCacheMisses.inc({ model }, 0);
    }
  }

  /** The default model's name (EMBEDDING_MODEL_NAME). */
  get defaultName(): string {
    return this.options.model.name;
  }

  /** The version tag of every served model (EMBEDDING_MODEL_VER). */
  get version(): string {
    return this.options.model.version;
  }

  /** Every model name this embedder may serve, default first. */
  get names(): string[] {
    return [...this.served];
  }

  serves(name: string): boolean {
    return this.served.has(name);
  }

  /** Loaded models (the default is always among them once started). */
  get loadedModels(): ServedModel<M>[] {
    return [...this.loaded.values()];
  }

  /** Loads and warms the default model; a failure is the StartupError of the load. */
  async start(): Promise<ServedModel<M>> {
    const model = await this.loadGate.run(() => this.load(this.options.model));
    return this.register(model);
  }

  /** The default model; only valid after `start()`. */
  get defaultModel(): ServedModel<M> {
    const served = this.loaded.get(this.defaultName);
    if (!served) throw new ServiceError('model_not_ready', 'the embedding model is not loaded');
    return served;
  }

  /** From now on, lazily loaded models must produce vectors of this dimension. */
  setStoreDimension(dim: number): void {
    this.storeDim = dim;
  }

  /**
   * A served model, loading it first if needed. Throws `unknown_model` for a name outside
   * EMBEDDING_MODEL_NAME + EMBEDDING_MODELS and `model_unavailable` when it cannot be loaded.
   */
  async get(name: string): Promise<ServedModel<M>> {
    if (!this.served.has(name)) {
      throw new ServiceError(
        'unknown_model',
        `this embedder serves ${this.names.map((n) => `"${n}"`).join(', ')} (version "${this.version}")`,
      );
    }
    const hit = this.loaded.get(name);
    if (hit) {
      this.options.metrics.modelCacheHits.inc({ model: name });
      return hit;
    }
    this.options.metrics.modelCacheMisses.inc({ model: name });
    const refusal = this.refused.get(name);
    if (refusal) throw refusal;
    if (this.closed) {
      throw new ServiceError('model_not_ready', 'the embedder is shutting down', {
        retryable: true,
      });
    }
    let pending = this.loading.get(name);
    if (!pending) {
      pending = this.loadLazily(name).finally(() => this.loading.delete(name));
      this.loading.set(name, pending);
    }
    return pending;
  }

  /** Finishes the queued and running work of every model, then releases the models. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.loading.values()]);
    const models = [...this.loaded.values()];
    await Promise.all(models.map((m) => m.batcher.close()));
    await Promise.all(models.map((m) => m.model.dispose().catch(() => undefined)));
  }

  private async loadLazily(name: string): Promise<ServedModel<M>> {
    const started = performance.now();
    const { logger } = this.options;
    let model: M;
    try {
      model = await this.loadGate.run(() => this.load({ ...this.options.model, name }));
    } catch (err) {
      const reason = err instanceof StartupError ? err.message : shortReason(err);
      logger.warn('model load failed', { model: name, reason });
      throw new ServiceError(
        'model_unavailable',
        `embedding model "${name}" could not be loaded (try again later): ${reason}`,
        { retryable: true, cause: err },
      );
    }
    if (this.storeDim !== null && model.dim !== this.storeDim) {
      await model.dispose().catch(() => undefined);
      const refusal = new ServiceError(
        'model_unavailable',
        `embedding model "${name}" produces ${model.dim}-dimensional vectors, but the vector store holds ` +
          `${this.storeDim}-dimensional vectors, so it cannot be served by this embedder: remove it from ` +
          'EMBEDDING_MODELS, or serve it from an embedder with its own VECTOR_DATA_DIR / QDRANT_COLLECTION',
        { retryable: false },
      );
      this.refused.set(name, refusal);
      logger.error('model refused: dimension mismatch', {
        model: name,
        dim: model.dim,
        store_dim: this.storeDim,
      });
      throw refusal;
    }
    if (this.closed) {
      await model.dispose().catch(() => undefined);
      throw new ServiceError('model_not_ready', 'the embedder is shutting down', {
        retryable: true,
      });
    }
    const served = this.register(model);
    logger.info('model loaded', {
      model: name,
      source: model.source,
      dim: model.dim,
      max_tokens: model.maxTokens,
      load_ms: Math.round(performance.now() - started),
    });
    return served;
  }

  private register(model: M): ServedModel<M> {
    const { batching, metrics, faults } = this.options;
    const batcher = new Batcher(
      faults ? withInferenceFaults(model, faults) : model,
      {
        maxBatchTokens: batching.maxBatchTokens,
        maxBatchItems: batching.maxBatchItems,
        ...model.passLimits,
      },
      metrics.batchObserver(model.name),
    );
    const served = { model, batcher };
    this.loaded.set(model.name, served);
    return served;
  }
}
