import { KeywordTerms } from './core/keywords.js';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { EmbedderConfig } from './config.js';
import { QueueLimiter } from './core/batcher.js';
import { StartupError, shortReason } from './core/errors.js';
import { Embeddings } from './core/embeddings.js';
import { Faults, storeHooks, withStoreFaults } from './core/faults.js';
import { Metrics } from './core/metrics.js';
import type { EmbeddingBackend } from './core/backend.js';
import { ModelPool } from './core/models.js';
import { RemoteEmbeddingModel } from './core/remote-embedding.js';
import { RemoteClient } from './core/remote-http.js';
import { RemoteReranker } from './core/remote-rerank.js';
import { CrossEncoderModel, Reranker } from './core/reranker.js';
import type { RerankService } from './core/reranker.js';
import { EmbedderService } from './core/service.js';
import { createApp } from './http/app.js';
import { createLogger } from './log.js';
import { createVectorStore } from './store/index.js';
import type { VectorStore } from './store/types.js';

export type { EmbedderConfig } from './config.js';
export { ConfigError, parseEmbedderConfig } from './config.js';
export { StartupError } from './core/errors.js';

export interface RunningEmbedder {
  /** Base URL a client on this machine can reach, e.g. `http://127.0.0.1:8788`. */
  url: string;
  port: number;
  /**
   * Stops accepting requests, lets in-flight ones finish (their queued and running forward
   * passes included), then releases the models and the store.
   */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where JSON log lines go (default: stdout). Tests capture them here. */
  log?: (line: string) => void;
  /** How long `close()` waits for in-flight requests before cutting connections. */
  shutdownGraceMs?: number;
}

/**
 * Starts the embedder: loads and warms the default model, checks its dimension against
 * VECTOR_SIZE and the existing collection, opens the store and listens (port 0 picks a free
 * port). Models of EMBEDDING_MODELS load later, on first use. Rejects with a StartupError whose
 * message says what to fix; nothing is left running in that case.
 */
export async function startEmbedder(
  config: EmbedderConfig,
  options: StartOptions = {},
): Promise<RunningEmbedder> {
  const logger = createLogger(config.logLevel, options.log);
  const startedAt = Date.now();
  const admission = new QueueLimiter(config.batching.maxQueuedItems);
  const metrics = new Metrics({ admittedItems: () => admission.size });
  let faults: Faults | null = null;
  if (config.faultsFile !== null) {
    faults = new Faults(config.faultsFile, logger);
    logger.warn('fault injection is enabled: never run this in production', {
      faults_file: config.faultsFile,
    });
    faults.current(); // read (and log) the initial faults now
  }
  const remote = config.remoteEmbedding ?? null;
  const remoteClient = remote
    ? new RemoteClient(remote, {
        what: 'the embedding server',
        envPrefix: 'EMBEDDING_REMOTE',
        observer: metrics.remoteObserver('embedding'),
      })
    : null;
  const models = new ModelPool<EmbeddingBackend>({
    model: config.model,
    extraModels: config.extraModels,
    batching: config.batching,
    metrics,
    logger,
    faults,
    // EMBEDDING_BACKEND=openai: every served model through the one server (EMBEDDING_REMOTE_MODEL
    // renames the default there; the extras go by their own names).
    ...(remote && remoteClient
      ? {
          load: (modelConfig) =>
            RemoteEmbeddingModel.load(
              modelConfig,
              modelConfig.name === config.model.name
                ? (remote.model ?? modelConfig.name)
                : modelConfig.name,
              remote,
              { client: remoteClient, logger },
            ),
        }
      : {}),
  });
  const { model } = await models.start();
  let store: VectorStore | null = null;
  let reranker: RerankService | null = null;
  try {
    if (config.remoteRerank) {
      const remoteReranker = new RemoteReranker({
        config: config.remoteRerank,
        client: new RemoteClient(config.remoteRerank, {
          what: 'the rerank server',
          envPrefix: 'RERANK_REMOTE',
          observer: metrics.remoteObserver('rerank'),
        }),
        admission,
        metrics,
      });
      await remoteReranker.check();
      reranker = remoteReranker;
    } else if (config.rerank) {
      // Loaded and warmed now (after the embedding model: transformers.js's model paths are
      // globals), so that a reranker that cannot be served stops the start, as a model does.
      reranker = new Reranker({
        model: await CrossEncoderModel.load({ ...config.model, ...config.rerank }),
        admission,
        limits: {
          maxBatchTokens: config.batching.maxBatchTokens,
          maxBatchItems: config.batching.maxBatchItems,
        },
        metrics,
        faults,
      });
    }
    checkVectorSize(config, model);
    store = createVectorStore(config.store, logger, faults ? storeHooks(faults) : undefined);
    models.setStoreDimension(await openStore(config, store, model));
    const opened = store;
    if (opened.memoryIndexStats) metrics.watchMemoryIndex(() => opened.memoryIndexStats!());

    const servedStore = faults ? withStoreFaults(store, faults) : store;

    let draining = false;
    const service = new EmbedderService({
      models,
      admission,
      store: servedStore,
      keywords: new KeywordTerms(config.keywordIndexKey),
      metrics,
      faults,
    });
    const app = createApp({
      service,
      embeddings: new Embeddings({ models, admission, metrics }),
      reranker,
      metrics,
      token: config.token,
      logger,
      isDraining: () => draining,
    });
    const server = createAdaptorServer({ fetch: app.fetch }) as Server;
    const port = await listen(server, config.host, config.port);
    const url = `http://${connectableHost(config.host)}:${port}`;
    logger.info('embedder started', {
      model: model.name,
      model_ver: model.version,
      source: model.source,
      dim: model.dim,
      max_tokens: model.maxTokens,
      extra_models: config.extraModels.join(',') || null,
      reranker: reranker?.name ?? null,
      reranker_source: reranker?.source ?? null,
      reranker_max_tokens: reranker?.maxTokens ?? null,
      embedding_backend: remote ? 'openai' : 'local',
      max_batch_tokens: config.batching.maxBatchTokens,
      max_batch_items: config.batching.maxBatchItems,
      max_queued_items: config.batching.maxQueuedItems,
      device: config.model.device,
      store: store.kind,
      port,
      startup_ms: Date.now() - startedAt,
    });

    const openStoreRef = store;
    const openReranker = reranker;
    let closing: Promise<void> | null = null;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        draining = true;
        logger.info('embedder shutting down');
        await stopServer(server, options.shutdownGraceMs ?? 10_000);
        // Requests still running after the grace period were cut: their queued work is dropped,
        // a running forward pass finishes before the models are released.
        await models.close();
        await openReranker?.close();
        await openStoreRef.close();
        logger.info('embedder stopped');
      })();
      return closing;
    };
    return { url, port, close };
  } catch (err) {
    await models.close().catch(() => undefined);
    await reranker?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    throw err;
  }
}

function checkVectorSize(config: EmbedderConfig, model: EmbeddingBackend): void {
  const wanted = config.store.vectorSize;
  if (!config.validateOnStartup || wanted === null || wanted === model.dim) return;
  throw new StartupError(
    `VECTOR_SIZE=${wanted} does not match embedding model "${model.name}", which produces ${model.dim}-dimensional vectors. ` +
      `Set VECTOR_SIZE=${model.dim} (or unset it), or choose a model with ${wanted} dimensions in EMBEDDING_MODEL_NAME. ` +
      '(EMBEDDING_VALIDATE_ON_STARTUP=false skips this check.)',
  );
}

/** Opens the store for the default model; returns the dimension the store holds. */
async function openStore(
  config: EmbedderConfig,
  store: VectorStore,
  model: EmbeddingBackend,
): Promise<number> {
  const where =
    config.store.kind === 'qdrant'
      ? `Qdrant collection "${config.store.collection}" at ${config.store.url}`
      : `LanceDB table "points" in VECTOR_DATA_DIR=${config.store.dataDir}`;
  let existing: number;
  try {
    existing = (await store.init(model.dim)).dim;
  } catch (err) {
    const hint =
      config.store.kind === 'qdrant'
        ? 'Check that Qdrant is running and QDRANT_URL / QDRANT_API_KEY are right, or unset QDRANT_URL to use the embedded store.'
        : 'Check that VECTOR_DATA_DIR is a writable folder.';
    throw new StartupError(
      `Could not open the vector store (${where}): ${shortReason(err)}. ${hint}`,
    );
  }
  if (config.validateOnStartup && existing !== model.dim) {
    const fresh =
      config.store.kind === 'qdrant'
        ? 'set QDRANT_COLLECTION to a new collection name'
        : 'set VECTOR_DATA_DIR to a new folder';
    throw new StartupError(
      `The ${where} holds ${existing}-dimensional vectors, but embedding model "${model.name}" produces ${model.dim}. ` +
        `Vectors of different models cannot share a collection: ${fresh} (and re-index your assets into it), ` +
        `or go back to the model the existing vectors were made with. (EMBEDDING_VALIDATE_ON_STARTUP=false skips this check.)`,
    );
  }
  return existing;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const reason =
        err.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is already in use; set EMBEDDER_PORT to a free port (0 picks one)`
          : err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND'
            ? `${host} is not an address of this machine; check EMBEDDER_HOST`
            : err.message;
      reject(new StartupError(`The embedder could not listen on ${host}:${port}: ${reason}.`));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * Stops accepting connections and closes keep-alive sockets as soon as they are idle (a request
 * in flight finishes first); whatever is still open after the grace period is cut.
 */
function stopServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const sweep = setInterval(() => server.closeIdleConnections(), 25);
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearInterval(sweep);
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
  });
}

function connectableHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}
