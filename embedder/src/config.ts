import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_KEYWORD_AVG_LENGTH } from './core/keywords.js';
import type { RemoteSettings } from './core/remote-http.js';

/**
 * The embedder's configuration, parsed once from the environment at the process edge
 * (main.ts) or built directly by tests and the dev orchestrator. Handlers never read env.
 */
export interface EmbedderConfig {
  host: string;
  port: number;
  /** The Worker's service credential; every /internal route requires `Bearer <token>`. */
  token: string;
  /**
   * KEYWORD_INDEX_KEY: the secret the keyword index's term ids are keyed with (per organisation,
   * core/keywords.ts). Changing it orphans every stored term: keep it as long as the store.
   */
  keywordIndexKey: string;
  model: ModelConfig;
  /**
   * EMBEDDING_MODELS: the other models this process may serve besides `model.name`, loaded
   * lazily on first use (same EMBEDDING_MODEL_VER, EMBEDDING_MODEL_DIR, device and dtype).
   */
  extraModels: string[];
  /**
   * RERANK_MODEL_NAME / RERANK_MODEL_DIR: the cross-encoder POST /v1/rerank serves (loaded and
   * warmed at start, on the embedding model's device and dtype), or null/absent: no reranking
   * (the route answers 404 `rerank_not_configured`).
   */
  rerank?: RerankConfig | null;
  /**
   * EMBEDDING_BACKEND=openai: embed through this OpenAI-compatible server instead of running the
   * model here (core/remote-embedding.ts); null/absent: `local`, the model runs in this process.
   */
  remoteEmbedding?: RemoteEmbeddingConfig | null;
  /**
   * RERANK_BACKEND=tei|cohere: rerank through this server (core/remote-rerank.ts) instead of a
   * local cross-encoder (`rerank` is then null); null/absent: `local`.
   */
  remoteRerank?: RemoteRerankConfig | null;
  batching: BatchingConfig;
  /** EMBEDDER_FAULTS_FILE (absolute): the fault-injection file, or null (off, the default). */
  faultsFile: string | null;
  store: StoreConfig;
  /** When false, the VECTOR_SIZE and existing-collection dimension checks are skipped. */
  validateOnStartup: boolean;
  logLevel: LogLevel;
}

export interface ModelConfig {
  /** EMBEDDING_MODEL_NAME: a registry short name, a Hub id, or a folder under `dir`. */
  name: string;
  /** EMBEDDING_MODEL_VER: the version tag stored with every vector. */
  version: string;
  /** EMBEDDING_MODEL_DIR (absolute): load models from this folder only, never from the Hub. */
  dir: string | null;
  device: ModelDevice;
  dtype: ModelDtype;
  /**
   * EMBEDDING_CPU_SPINNING: let onnxruntime's CPU threads busy-wait between parallel sections
   * (onnxruntime's default, right for a host of its own: faster small passes). Turn it off when
   * the embedder shares cores (npm run dev does): idle spinning burns most of a core per thread.
   */
  cpuSpinning?: boolean;
}

export interface RerankConfig {
  /** RERANK_MODEL_NAME: a reranker registry name (core/rerank-registry.ts), a Hub id or a folder. */
  name: string;
  /** RERANK_MODEL_DIR (absolute; default EMBEDDING_MODEL_DIR): load from here only, never the Hub. */
  dir: string | null;
  /** RERANK_DTYPE (default EMBEDDING_DTYPE): which ONNX file of the reranker to load. */
  dtype: ModelDtype;
}

/** EMBEDDING_BACKEND=openai's settings (EMBEDDING_REMOTE_*). */
export interface RemoteEmbeddingConfig extends RemoteSettings {
  /** EMBEDDING_REMOTE_MODEL: the default model's name on the server (null: EMBEDDING_MODEL_NAME). */
  model: string | null;
  /** EMBEDDING_REMOTE_BATCH_SIZE: inputs per request. */
  batchSize: number;
  /** EMBEDDING_REMOTE_CONCURRENCY: requests in flight at once, per model. */
  concurrency: number;
  /** EMBEDDING_REMOTE_TOKENIZER: the model's own tokenizer (exact), bytes (approximate), auto. */
  tokenizer: 'auto' | 'model' | 'bytes';
  /** EMBEDDING_REMOTE_MAX_TOKENS: the server model's window (null: the registry's / tokenizer's). */
  maxTokens: number | null;
}

/** RERANK_BACKEND=tei|cohere's settings (RERANK_REMOTE_*). */
export interface RemoteRerankConfig extends RemoteSettings {
  /** `tei`: TEI's /rerank (also Heimdex's /v1/rerank); `cohere`: Cohere's (Infinity, vLLM, Jina). */
  protocol: 'tei' | 'cohere';
  /** The name the reranker is served under: RERANK_MODEL_NAME, else RERANK_REMOTE_MODEL. */
  name: string;
  /** RERANK_REMOTE_MODEL: sent as `model` (required by Cohere's protocol), or null. */
  model: string | null;
  /** RERANK_REMOTE_BATCH_SIZE: texts per request (a larger request is split). */
  batchSize: number;
  /** RERANK_REMOTE_CONCURRENCY: requests of one rerank in flight at once. */
  concurrency: number;
}

/** Dynamic batching limits (see core/batcher.ts). */
export interface BatchingConfig {
  /** EMBEDDER_MAX_BATCH_TOKENS: padded tokens per forward pass (items × longest item). */
  maxBatchTokens: number;
  /** EMBEDDER_MAX_BATCH_ITEMS: items per forward pass. */
  maxBatchItems: number;
  /** EMBEDDER_MAX_QUEUED_ITEMS: items admitted and not yet embedded; beyond it, 429. */
  maxQueuedItems: number;
}

export type ModelDevice = 'cpu' | 'cuda' | `cuda:${number}`;
export type ModelDtype = 'fp32' | 'fp16' | 'q8';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export type StoreConfig =
  | {
      kind: 'lancedb';
      dataDir: string;
      vectorSize: number | null;
      /**
       * VECTOR_MEMORY_INDEX_MAX_ROWS: searches scan an exact in-memory copy of the table while it
       * holds at most this many rows (~2 KiB of memory each at 384 dimensions); 0 turns it off.
       */
      memoryIndexMaxRows: number;
    }
  | {
      kind: 'qdrant';
      url: string;
      apiKey: string | null;
      collection: string;
      vectorSize: number | null;
      /**
       * QDRANT_KEYWORD_AVG_LENGTH: BM25's average text length in terms. Qdrant stores each
       * point's term weights as written, so length normalisation uses this fixed average
       * (the embedded store computes the real one); set it near your texts' average.
       */
      keywordAvgLength: number;
    };

/** Thrown for an invalid environment; its message lists every problem and how to fix it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const blankToUndefined = (value: unknown): unknown =>
  typeof value === 'string' && value.trim() === '' ? undefined : value;

const optionalString = z.preprocess(blankToUndefined, z.string().optional());

const flag = (fallback: 'true' | 'false') =>
  z.preprocess(
    blankToUndefined,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], {
        error: 'must be true or false',
      })
      .default(fallback)
      .transform((value) => value === 'true' || value === '1' || value === 'yes'),
  );
const booleanFlag = flag('true');

/** A whole number in [min, max] (blank → `fallback`); every failure says the same thing. */
const wholeNumber = (min: number, max: number, fallback: number, error: string) =>
  z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ error })
      .int({ error })
      .min(min, { error })
      .max(max, { error })
      .default(fallback),
  );

const positiveInt = (fallback: number, max: number) =>
  wholeNumber(1, max, fallback, `must be a whole number from 1 to ${max}`);

const MODEL_NAME = /^[\x21-\x7e]{1,256}$/;

const remoteUrl = z.preprocess(
  blankToUndefined,
  z
    .url({
      protocol: /^https?$/,
      error: 'must be an http(s) URL: the server base URL, e.g. http://tei:8080/v1',
    })
    .refine((url) => !/^https?:\/\/[^/]*@/i.test(url), {
      error: 'must not carry credentials (user:password@): put the key in the _API_KEY setting',
    })
    .optional(),
);

const remoteModelName = z.preprocess(
  blankToUndefined,
  z
    .string()
    .regex(MODEL_NAME, { error: 'must be a model name (printable ASCII without spaces)' })
    .optional(),
);

/** A duration in ms in [min, max] (blank → `fallback`). */
const millis = (min: number, max: number, fallback: number) =>
  wholeNumber(min, max, fallback, `must be a whole number of milliseconds from ${min} to ${max}`);

/** The timeout, retry and circuit-breaker settings of a remote model server (`prefix`_…). */
function remoteCallFields<P extends string>(prefix: P) {
  return {
    [`${prefix}_TIMEOUT_MS`]: millis(100, 600_000, 30_000),
    [`${prefix}_MAX_RETRIES`]: wholeNumber(0, 10, 3, 'must be a whole number from 0 to 10'),
    [`${prefix}_RETRY_MAX_MS`]: millis(0, 300_000, 10_000),
    [`${prefix}_BREAKER_THRESHOLD`]: positiveInt(5, 1000),
    [`${prefix}_BREAKER_COOLDOWN_MS`]: millis(100, 3_600_000, 30_000),
  } as Record<
    `${P}_${'TIMEOUT_MS' | 'MAX_RETRIES' | 'RETRY_MAX_MS' | 'BREAKER_THRESHOLD' | 'BREAKER_COOLDOWN_MS'}`,
    ReturnType<typeof millis>
  >;
}

const envSchema = z.object({
  EMBEDDER_HOST: z.preprocess(blankToUndefined, z.string().default('127.0.0.1')),
  EMBEDDER_PORT: wholeNumber(0, 65535, 8788, 'must be a port number (0-65535)'),
  EMBEDDER_TOKEN: z.preprocess(
    blankToUndefined,
    z
      .string({
        error:
          "is required: set it to the Worker's service credential (a random secret of at least 16 characters, e.g. `openssl rand -hex 32`)",
      })
      .min(16, { error: 'must be at least 16 characters long (use a random secret)' })
      .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' }),
  ),
  KEYWORD_INDEX_KEY: z.preprocess(
    blankToUndefined,
    z
      .string({
        error:
          'is required: set it to a random secret of at least 32 characters that stays as long as the vector store (e.g. `openssl rand -hex 32`); the keyword index keys its term ids with it',
      })
      .min(32, { error: 'must be at least 32 characters long (use a random secret)' }),
  ),
  EMBEDDING_MODEL_NAME: z.preprocess(blankToUndefined, z.string().default('minilm-l6-v2')),
  EMBEDDING_MODELS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((value) =>
        value
          .split(',')
          .map((name) => name.trim())
          .filter((name) => name !== ''),
      )
      .refine((names) => names.every((name) => MODEL_NAME.test(name)), {
        error:
          'must be a comma-separated list of model names (registry short names, Hub ids or folder names; printable ASCII without spaces)',
      })
      .optional(),
  ),
  EMBEDDING_MODEL_VER: z.preprocess(
    blankToUndefined,
    z
      .string()
      .max(64, { error: 'must be at most 64 characters' })
      .regex(/^[\x21-\x7e]+$/, { error: 'must be printable ASCII without spaces' })
      .default('1'),
  ),
  EMBEDDING_MODEL_DIR: optionalString,
  RERANK_MODEL_NAME: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(MODEL_NAME, {
        error:
          'must be a reranker name (a registry short name such as ms-marco-minilm-l6-v2, a Hub id or a folder name; printable ASCII without spaces), or unset to run without reranking',
      })
      .optional(),
  ),
  RERANK_MODEL_DIR: optionalString,
  RERANK_DTYPE: z.preprocess(
    blankToUndefined,
    z.enum(['fp32', 'fp16', 'q8'], { error: 'must be fp32, fp16 or q8' }).optional(),
  ),
  EMBEDDING_BACKEND: z.preprocess(
    blankToUndefined,
    z.enum(['local', 'openai'], { error: 'must be local or openai' }).default('local'),
  ),
  EMBEDDING_REMOTE_URL: remoteUrl,
  EMBEDDING_REMOTE_API_KEY: optionalString,
  EMBEDDING_REMOTE_MODEL: remoteModelName,
  EMBEDDING_REMOTE_BATCH_SIZE: positiveInt(32, 2048),
  EMBEDDING_REMOTE_CONCURRENCY: positiveInt(4, 64),
  EMBEDDING_REMOTE_TOKENIZER: z.preprocess(
    blankToUndefined,
    z.enum(['auto', 'model', 'bytes'], { error: 'must be auto, model or bytes' }).default('auto'),
  ),
  EMBEDDING_REMOTE_MAX_TOKENS: z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ error: 'must be a whole number from 4 to 1000000 (the server model window)' })
      .int({ error: 'must be a whole number from 4 to 1000000 (the server model window)' })
      .min(4, { error: 'must be a whole number from 4 to 1000000 (the server model window)' })
      .max(1_000_000, {
        error: 'must be a whole number from 4 to 1000000 (the server model window)',
      })
      .optional(),
  ),
  ...remoteCallFields('EMBEDDING_REMOTE'),
  RERANK_BACKEND: z.preprocess(
    blankToUndefined,
    z.enum(['local', 'tei', 'cohere'], { error: 'must be local, tei or cohere' }).default('local'),
  ),
  RERANK_REMOTE_URL: remoteUrl,
  RERANK_REMOTE_API_KEY: optionalString,
  RERANK_REMOTE_MODEL: remoteModelName,
  RERANK_REMOTE_BATCH_SIZE: positiveInt(32, 1000),
  RERANK_REMOTE_CONCURRENCY: positiveInt(4, 64),
  ...remoteCallFields('RERANK_REMOTE'),
  EMBEDDING_DEVICE: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^(cpu|cuda|cuda:\d{1,2})$/, { error: 'must be cpu, cuda or cuda:N (e.g. cuda:0)' })
      .default('cpu'),
  ),
  EMBEDDING_DTYPE: z.preprocess(
    blankToUndefined,
    z.enum(['fp32', 'fp16', 'q8'], { error: 'must be fp32, fp16 or q8' }).default('fp32'),
  ),
  EMBEDDING_VALIDATE_ON_STARTUP: booleanFlag,
  EMBEDDING_CPU_SPINNING: booleanFlag,
  EMBEDDER_MAX_BATCH_TOKENS: positiveInt(16_384, 16_777_216),
  EMBEDDER_MAX_BATCH_ITEMS: positiveInt(64, 65_536),
  EMBEDDER_MAX_QUEUED_ITEMS: positiveInt(4096, 16_777_216),
  EMBEDDER_FAULTS_FILE: optionalString,
  NODE_ENV: optionalString,
  EMBEDDER_LOG_LEVEL: z.preprocess(
    blankToUndefined,
    z
      .enum(['debug', 'info', 'warn', 'error', 'silent'], {
        error: 'must be debug, info, warn, error or silent',
      })
      .default('info'),
  ),
  VECTOR_STORE: z.preprocess(
    blankToUndefined,
    z
      .enum(['auto', 'lancedb', 'qdrant'], { error: 'must be auto, lancedb or qdrant' })
      .default('auto'),
  ),
  VECTOR_DATA_DIR: z.preprocess(blankToUndefined, z.string().default('.data/vectors')),
  VECTOR_MEMORY_INDEX_MAX_ROWS: wholeNumber(
    0,
    1_000_000,
    50_000,
    'must be a whole number from 0 to 1000000 (0 turns it off)',
  ),
  VECTOR_SIZE: z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ error: 'must be a positive integer (the model dimension)' })
      .int({ error: 'must be a positive integer (the model dimension)' })
      .positive({ error: 'must be a positive integer (the model dimension)' })
      .optional(),
  ),
  QDRANT_URL: z.preprocess(
    blankToUndefined,
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  ),
  QDRANT_API_KEY: optionalString,
  QDRANT_KEYWORD_AVG_LENGTH: positiveInt(DEFAULT_KEYWORD_AVG_LENGTH, 100_000),
  QDRANT_COLLECTION: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,255}$/, {
        error: 'must be 1-255 characters of letters, digits, _ or -',
      })
      .default('heimdex'),
  ),
});

/**
 * Parses the embedder's environment. Fails closed: any invalid or missing required value
 * throws a ConfigError whose message names each variable and says how to fix it.
 * Relative paths are resolved against `cwd`.
 */
export function parseEmbedderConfig(
  env: Record<string, string | undefined>,
  cwd: string = process.cwd(),
): EmbedderConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = issue.path.length > 0 ? issue.path.join('.') : 'environment';
      return `  - ${name} ${issue.message}`;
    });
    throw new ConfigError(`Invalid embedder configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;

  if (e.EMBEDDER_FAULTS_FILE !== undefined && e.NODE_ENV === 'production') {
    throw new ConfigError(
      'Invalid embedder configuration:\n  - EMBEDDER_FAULTS_FILE must not be set when NODE_ENV=production: fault injection is for test environments only; unset EMBEDDER_FAULTS_FILE',
    );
  }

  const kind = e.VECTOR_STORE === 'auto' ? (e.QDRANT_URL ? 'qdrant' : 'lancedb') : e.VECTOR_STORE;
  let store: StoreConfig;
  if (kind === 'qdrant') {
    if (!e.QDRANT_URL) {
      throw new ConfigError(
        'Invalid embedder configuration:\n  - QDRANT_URL is required when VECTOR_STORE=qdrant (e.g. QDRANT_URL=http://localhost:6333), or set VECTOR_STORE=lancedb for the embedded store',
      );
    }
    store = {
      kind: 'qdrant',
      url: e.QDRANT_URL,
      apiKey: e.QDRANT_API_KEY ?? null,
      collection: e.QDRANT_COLLECTION,
      vectorSize: e.VECTOR_SIZE ?? null,
      keywordAvgLength: e.QDRANT_KEYWORD_AVG_LENGTH,
    };
  } else {
    store = {
      kind: 'lancedb',
      dataDir: path.resolve(cwd, e.VECTOR_DATA_DIR),
      vectorSize: e.VECTOR_SIZE ?? null,
      memoryIndexMaxRows: e.VECTOR_MEMORY_INDEX_MAX_ROWS,
    };
  }

  const remoteEmbedding = remoteEmbeddingConfig(e);
  const remoteRerank = remoteRerankConfig(e);

  return {
    host: e.EMBEDDER_HOST,
    port: e.EMBEDDER_PORT,
    token: e.EMBEDDER_TOKEN,
    keywordIndexKey: e.KEYWORD_INDEX_KEY,
    model: {
      name: e.EMBEDDING_MODEL_NAME,
      version: e.EMBEDDING_MODEL_VER,
      dir: e.EMBEDDING_MODEL_DIR ? path.resolve(cwd, e.EMBEDDING_MODEL_DIR) : null,
      device: e.EMBEDDING_DEVICE as ModelDevice,
      dtype: e.EMBEDDING_DTYPE,
      cpuSpinning: e.EMBEDDING_CPU_SPINNING,
    },
    extraModels: [...new Set(e.EMBEDDING_MODELS ?? [])].filter(
      (name) => name !== e.EMBEDDING_MODEL_NAME,
    ),
    rerank:
      remoteRerank === null
        ? rerankConfig(
            e.RERANK_MODEL_NAME,
            e.RERANK_MODEL_DIR ?? e.EMBEDDING_MODEL_DIR,
            e.RERANK_DTYPE ?? e.EMBEDDING_DTYPE,
            cwd,
          )
        : null,
    remoteEmbedding,
    remoteRerank,
    batching: {
      maxBatchTokens: e.EMBEDDER_MAX_BATCH_TOKENS,
      maxBatchItems: e.EMBEDDER_MAX_BATCH_ITEMS,
      maxQueuedItems: e.EMBEDDER_MAX_QUEUED_ITEMS,
    },
    faultsFile: e.EMBEDDER_FAULTS_FILE ? path.resolve(cwd, e.EMBEDDER_FAULTS_FILE) : null,
    store,
    validateOnStartup: e.EMBEDDING_VALIDATE_ON_STARTUP,
    logLevel: e.EMBEDDER_LOG_LEVEL,
  };
}

/** The reranker's configuration: none without RERANK_MODEL_NAME; its folder, else the Hub. */
function rerankConfig(
  name: string | undefined,
  dir: string | undefined,
  dtype: ModelDtype,
  cwd: string,
): RerankConfig | null {
  if (name === undefined) return null;
  return { name, dir: dir ? path.resolve(cwd, dir) : null, dtype };
}

type ParsedEnv = z.output<typeof envSchema>;

/** One invalid setting, as parseEmbedderConfig reports it. */
function invalid(line: string): ConfigError {
  return new ConfigError(`Invalid embedder configuration:\n  - ${line}`);
}

/** The timeout, retry and breaker settings of `prefix`_…, with the URL and key. */
function remoteSettings(
  e: ParsedEnv,
  prefix: 'EMBEDDING_REMOTE' | 'RERANK_REMOTE',
  url: string,
): RemoteSettings {
  return {
    url,
    apiKey: e[`${prefix}_API_KEY`] ?? null,
    timeoutMs: e[`${prefix}_TIMEOUT_MS`],
    maxRetries: e[`${prefix}_MAX_RETRIES`],
    retryMaxMs: e[`${prefix}_RETRY_MAX_MS`],
    breakerThreshold: e[`${prefix}_BREAKER_THRESHOLD`],
    breakerCooldownMs: e[`${prefix}_BREAKER_COOLDOWN_MS`],
  };
}

/** EMBEDDING_BACKEND=openai's settings, or null for `local`. */
function remoteEmbeddingConfig(e: ParsedEnv): RemoteEmbeddingConfig | null {
  if (e.EMBEDDING_BACKEND === 'local') return null;
  if (!e.EMBEDDING_REMOTE_URL) {
    throw invalid(
      'EMBEDDING_REMOTE_URL is required when EMBEDDING_BACKEND=openai: the base URL of an OpenAI-compatible embeddings server, as an OpenAI SDK takes it (e.g. http://tei:8080/v1, https://api.openai.com/v1, or another Heimdex embedder at http://embedder:8788/v1); or set EMBEDDING_BACKEND=local',
    );
  }
  return {
    ...remoteSettings(e, 'EMBEDDING_REMOTE', e.EMBEDDING_REMOTE_URL),
    model: e.EMBEDDING_REMOTE_MODEL ?? null,
    batchSize: e.EMBEDDING_REMOTE_BATCH_SIZE,
    concurrency: e.EMBEDDING_REMOTE_CONCURRENCY,
    tokenizer: e.EMBEDDING_REMOTE_TOKENIZER,
    maxTokens: e.EMBEDDING_REMOTE_MAX_TOKENS ?? null,
  };
}

/** RERANK_BACKEND=tei|cohere's settings, or null for `local`. */
function remoteRerankConfig(e: ParsedEnv): RemoteRerankConfig | null {
  const protocol = e.RERANK_BACKEND;
  if (protocol === 'local') return null;
  if (!e.RERANK_REMOTE_URL) {
    throw invalid(
      `RERANK_REMOTE_URL is required when RERANK_BACKEND=${protocol}: the rerank server's base URL, to which /rerank is added (e.g. http://tei:8080, https://api.cohere.com/v2, or another Heimdex embedder at http://embedder:8788/v1); or set RERANK_BACKEND=local`,
    );
  }
  if (protocol === 'cohere' && !e.RERANK_REMOTE_MODEL) {
    throw invalid(
      "RERANK_REMOTE_MODEL is required when RERANK_BACKEND=cohere: Cohere's protocol names the model in every request (e.g. rerank-v3.5)",
    );
  }
  const name = e.RERANK_MODEL_NAME ?? e.RERANK_REMOTE_MODEL;
  if (!name) {
    throw invalid(
      `RERANK_MODEL_NAME is required when RERANK_BACKEND=${protocol} without RERANK_REMOTE_MODEL: the name the reranker is served under (POST /v1/rerank's \`model\`, e.g. ms-marco-minilm-l6-v2)`,
    );
  }
  return {
    ...remoteSettings(e, 'RERANK_REMOTE', e.RERANK_REMOTE_URL),
    protocol,
    name,
    model: e.RERANK_REMOTE_MODEL ?? null,
    batchSize: e.RERANK_REMOTE_BATCH_SIZE,
    concurrency: e.RERANK_REMOTE_CONCURRENCY,
  };
}
