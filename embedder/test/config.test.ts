import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseEmbedderConfig } from '../src/config.js';
import { sessionOptions } from '../src/core/model.js';

const TOKEN = 'a-service-token-of-32-characters';
const KEY = 'a-keyword-index-key-of-40-characters-xyz';

/** The configuration from `vars` and the two required variables, in /srv/app. */
const parse = (vars: Record<string, string> = {}) =>
  parseEmbedderConfig({ EMBEDDER_TOKEN: TOKEN, KEYWORD_INDEX_KEY: KEY, ...vars }, '/srv/app');

describe('parseEmbedderConfig', () => {
  it('applies the documented defaults', () => {
    const config = parse();
    expect(config).toEqual({
      host: '127.0.0.1',
      port: 8788,
      token: TOKEN,
      keywordIndexKey: KEY,
      model: {
        name: 'minilm-l6-v2',
        version: '1',
        dir: null,
        device: 'cpu',
        dtype: 'fp32',
        cpuSpinning: true,
      },
      extraModels: [],
      rerank: null,
      remoteEmbedding: null,
      remoteRerank: null,
      batching: { maxBatchTokens: 16_384, maxBatchItems: 64, maxQueuedItems: 4096 },
      faultsFile: null,
      store: {
        kind: 'lancedb',
        dataDir: path.resolve('/srv/app', '.data/vectors'),
        vectorSize: null,
        memoryIndexMaxRows: 50_000,
      },
      validateOnStartup: true,
      logLevel: 'info',
    });
  });

  it('refuses to start without a service token, or with a short one, naming the variable', () => {
    expect(() => parseEmbedderConfig({})).toThrow(ConfigError);
    expect(() => parseEmbedderConfig({})).toThrow(/EMBEDDER_TOKEN is required/);
    expect(() => parseEmbedderConfig({ EMBEDDER_TOKEN: '   ' })).toThrow(
      /EMBEDDER_TOKEN is required/,
    );
    expect(() => parseEmbedderConfig({ EMBEDDER_TOKEN: 'short' })).toThrow(
      /EMBEDDER_TOKEN must be at least 16 characters/,
    );
  });

  it('refuses to start without a keyword index key, or with a short one, naming the variable', () => {
    expect(() => parseEmbedderConfig({ EMBEDDER_TOKEN: TOKEN })).toThrow(
      /KEYWORD_INDEX_KEY is required/,
    );
    expect(() =>
      parseEmbedderConfig({ EMBEDDER_TOKEN: TOKEN, KEYWORD_INDEX_KEY: 'x'.repeat(31) }),
    ).toThrow(/KEYWORD_INDEX_KEY must be at least 32 characters/);
  });

  it('reads every variable and resolves relative folders against cwd', () => {
    const config = parse({
      EMBEDDER_HOST: '0.0.0.0',
      EMBEDDER_PORT: '0',
      EMBEDDING_MODEL_NAME: 'potion-base-2M',
      EMBEDDING_MODEL_VER: '2024-01',
      EMBEDDING_MODEL_DIR: '../shared/models',
      EMBEDDING_DEVICE: 'cuda:1',
      EMBEDDING_DTYPE: 'q8',
      EMBEDDING_VALIDATE_ON_STARTUP: 'false',
      EMBEDDING_CPU_SPINNING: 'false',
      VECTOR_DATA_DIR: 'vectors',
      VECTOR_SIZE: '64',
      VECTOR_MEMORY_INDEX_MAX_ROWS: '0',
      EMBEDDER_LOG_LEVEL: 'warn',
    });
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(0);
    expect(config.model).toEqual({
      name: 'potion-base-2M',
      version: '2024-01',
      dir: '/srv/shared/models',
      device: 'cuda:1',
      dtype: 'q8',
      cpuSpinning: false,
    });
    expect(config.store).toEqual({
      kind: 'lancedb',
      dataDir: '/srv/app/vectors',
      vectorSize: 64,
      memoryIndexMaxRows: 0,
    });
    expect(config.validateOnStartup).toBe(false);
    expect(config.logLevel).toBe('warn');
  });

  it('reads the served models, batching limits and the faults file', () => {
    const config = parse({
      EMBEDDING_MODEL_NAME: 'potion-base-2M',
      EMBEDDING_MODELS: ' potion-copy , minilm-l6-v2,,potion-base-2M,potion-copy ',
      EMBEDDER_MAX_BATCH_TOKENS: '4096',
      EMBEDDER_MAX_BATCH_ITEMS: '8',
      EMBEDDER_MAX_QUEUED_ITEMS: '100',
      EMBEDDER_FAULTS_FILE: 'faults.json',
      NODE_ENV: 'test',
    });
    // The default model is not repeated among the extras; duplicates and blanks are dropped.
    expect(config.extraModels).toEqual(['potion-copy', 'minilm-l6-v2']);
    expect(config.batching).toEqual({
      maxBatchTokens: 4096,
      maxBatchItems: 8,
      maxQueuedItems: 100,
    });
    expect(config.faultsFile).toBe('/srv/app/faults.json');
  });

  it('refuses fault injection in production', () => {
    const faults = { EMBEDDER_FAULTS_FILE: '/tmp/faults.json' };
    expect(() => parse({ ...faults, NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => parse({ ...faults, NODE_ENV: 'production' })).toThrow(
      /EMBEDDER_FAULTS_FILE must not be set when NODE_ENV=production/,
    );
    expect(parse({ ...faults, NODE_ENV: 'development' }).faultsFile).toBe('/tmp/faults.json');
    expect(parse({ NODE_ENV: 'production' }).faultsFile).toBe(null);
  });

  it('picks Qdrant automatically when QDRANT_URL is set, unless VECTOR_STORE says otherwise', () => {
    const qdrant = parse({ QDRANT_URL: 'https://qdrant.example:6333', QDRANT_API_KEY: 'k' });
    expect(qdrant.store).toEqual({
      kind: 'qdrant',
      url: 'https://qdrant.example:6333',
      apiKey: 'k',
      collection: 'heimdex',
      vectorSize: null,
      keywordAvgLength: 128,
    });
    const lance = parse({ QDRANT_URL: 'http://localhost:6333', VECTOR_STORE: 'lancedb' });
    expect(lance.store.kind).toBe('lancedb');
    expect(() => parse({ VECTOR_STORE: 'qdrant' })).toThrow(
      /QDRANT_URL is required when VECTOR_STORE=qdrant/,
    );
  });

  it('lists every invalid variable in one message', () => {
    let message = '';
    try {
      parse({
        EMBEDDER_PORT: '70000',
        EMBEDDING_DEVICE: 'tpu',
        EMBEDDING_DTYPE: 'int4',
        VECTOR_SIZE: '-3',
        VECTOR_MEMORY_INDEX_MAX_ROWS: '-1',
        VECTOR_STORE: 'milvus',
        QDRANT_URL: 'not a url',
        EMBEDDING_VALIDATE_ON_STARTUP: 'maybe',
        EMBEDDING_MODELS: 'potion-copy,bad name',
        EMBEDDER_MAX_BATCH_TOKENS: '0',
        EMBEDDER_MAX_BATCH_ITEMS: 'lots',
        EMBEDDER_MAX_QUEUED_ITEMS: '1.5',
      });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const name of [
      'EMBEDDER_PORT',
      'EMBEDDING_DEVICE',
      'EMBEDDING_DTYPE',
      'VECTOR_SIZE',
      'VECTOR_MEMORY_INDEX_MAX_ROWS',
      'VECTOR_STORE',
      'QDRANT_URL',
      'EMBEDDING_VALIDATE_ON_STARTUP',
      'EMBEDDING_MODELS',
      'EMBEDDER_MAX_BATCH_TOKENS',
      'EMBEDDER_MAX_BATCH_ITEMS',
      'EMBEDDER_MAX_QUEUED_ITEMS',
    ]) {
      expect(message).toContain(`- ${name} `);
    }
    expect(message).not.toContain(TOKEN);
  });

  it('reads EMBEDDING_BACKEND=openai and its settings, with their defaults', () => {
    const minimal = parse({
      EMBEDDING_BACKEND: 'openai',
      EMBEDDING_REMOTE_URL: 'http://tei:8080/v1',
    });
    expect(minimal.remoteEmbedding).toEqual({
      url: 'http://tei:8080/v1',
      apiKey: null,
      model: null,
      batchSize: 32,
      concurrency: 4,
      tokenizer: 'auto',
      maxTokens: null,
      timeoutMs: 30_000,
      maxRetries: 3,
      retryMaxMs: 10_000,
      breakerThreshold: 5,
      breakerCooldownMs: 30_000,
    });
    const full = parse({
      EMBEDDING_BACKEND: 'openai',
      EMBEDDING_MODEL_NAME: 'openai-small',
      EMBEDDING_REMOTE_URL: 'https://api.openai.com/v1',
      EMBEDDING_REMOTE_API_KEY: 'sk-secret',
      EMBEDDING_REMOTE_MODEL: 'text-embedding-3-small',
      EMBEDDING_REMOTE_BATCH_SIZE: '512',
      EMBEDDING_REMOTE_CONCURRENCY: '8',
      EMBEDDING_REMOTE_TOKENIZER: 'bytes',
      EMBEDDING_REMOTE_MAX_TOKENS: '8191',
      EMBEDDING_REMOTE_TIMEOUT_MS: '5000',
      EMBEDDING_REMOTE_MAX_RETRIES: '0',
      EMBEDDING_REMOTE_RETRY_MAX_MS: '2000',
      EMBEDDING_REMOTE_BREAKER_THRESHOLD: '3',
      EMBEDDING_REMOTE_BREAKER_COOLDOWN_MS: '15000',
    });
    expect(full.model.name).toBe('openai-small');
    expect(full.remoteEmbedding).toEqual({
      url: 'https://api.openai.com/v1',
      apiKey: 'sk-secret',
      model: 'text-embedding-3-small',
      batchSize: 512,
      concurrency: 8,
      tokenizer: 'bytes',
      maxTokens: 8191,
      timeoutMs: 5000,
      maxRetries: 0,
      retryMaxMs: 2000,
      breakerThreshold: 3,
      breakerCooldownMs: 15_000,
    });
    // The remote settings are read only for the backend that uses them.
    expect(parse({ EMBEDDING_REMOTE_URL: 'http://tei:8080/v1' }).remoteEmbedding).toBeNull();
    expect(() => parse({ EMBEDDING_BACKEND: 'openai' })).toThrow(
      /EMBEDDING_REMOTE_URL is required when EMBEDDING_BACKEND=openai/,
    );
    expect(() =>
      parse({ EMBEDDING_BACKEND: 'openai', EMBEDDING_REMOTE_URL: 'https://u:secret@tei/v1' }),
    ).toThrow(/EMBEDDING_REMOTE_URL must not carry credentials/);
  });

  it('reads RERANK_BACKEND=tei|cohere, which replaces the local reranker', () => {
    const tei = parse({
      RERANK_BACKEND: 'tei',
      RERANK_MODEL_NAME: 'ms-marco-minilm-l6-v2',
      RERANK_REMOTE_URL: 'http://embedder-b:8788/v1',
      RERANK_REMOTE_API_KEY: 'peer-token-0123456789',
      RERANK_REMOTE_BATCH_SIZE: '16',
    });
    expect(tei.rerank).toBeNull();
    expect(tei.remoteRerank).toEqual({
      url: 'http://embedder-b:8788/v1',
      apiKey: 'peer-token-0123456789',
      protocol: 'tei',
      name: 'ms-marco-minilm-l6-v2',
      model: null,
      batchSize: 16,
      concurrency: 4,
      timeoutMs: 30_000,
      maxRetries: 3,
      retryMaxMs: 10_000,
      breakerThreshold: 5,
      breakerCooldownMs: 30_000,
    });
    const cohere = parse({
      RERANK_BACKEND: 'cohere',
      RERANK_REMOTE_URL: 'https://api.cohere.com/v2',
      RERANK_REMOTE_MODEL: 'rerank-v3.5',
    });
    expect(cohere.remoteRerank).toMatchObject({
      protocol: 'cohere',
      name: 'rerank-v3.5',
      model: 'rerank-v3.5',
    });
    expect(parse({ RERANK_MODEL_NAME: 'ms-marco-minilm-l6-v2' }).remoteRerank).toBeNull();
    expect(() => parse({ RERANK_BACKEND: 'tei', RERANK_MODEL_NAME: 'x' })).toThrow(
      /RERANK_REMOTE_URL is required when RERANK_BACKEND=tei/,
    );
    expect(() =>
      parse({ RERANK_BACKEND: 'cohere', RERANK_REMOTE_URL: 'https://api.cohere.com/v2' }),
    ).toThrow(/RERANK_REMOTE_MODEL is required when RERANK_BACKEND=cohere/);
    expect(() => parse({ RERANK_BACKEND: 'tei', RERANK_REMOTE_URL: 'http://tei:8080' })).toThrow(
      /RERANK_MODEL_NAME is required when RERANK_BACKEND=tei/,
    );
  });

  it('names every invalid remote backend setting, never echoing the API keys', () => {
    let message = '';
    try {
      parse({
        EMBEDDING_BACKEND: 'cohere',
        EMBEDDING_REMOTE_URL: 'ftp://tei/v1',
        EMBEDDING_REMOTE_API_KEY: 'sk-do-not-echo',
        EMBEDDING_REMOTE_MODEL: 'has space',
        EMBEDDING_REMOTE_BATCH_SIZE: '0',
        EMBEDDING_REMOTE_CONCURRENCY: '65',
        EMBEDDING_REMOTE_TOKENIZER: 'tiktoken',
        EMBEDDING_REMOTE_MAX_TOKENS: '2',
        EMBEDDING_REMOTE_TIMEOUT_MS: '50',
        EMBEDDING_REMOTE_MAX_RETRIES: '11',
        EMBEDDING_REMOTE_RETRY_MAX_MS: '-1',
        EMBEDDING_REMOTE_BREAKER_THRESHOLD: '0',
        EMBEDDING_REMOTE_BREAKER_COOLDOWN_MS: 'soon',
        RERANK_BACKEND: 'jina',
        RERANK_REMOTE_URL: 'tei:8080',
        RERANK_REMOTE_BATCH_SIZE: '1001',
        RERANK_REMOTE_TIMEOUT_MS: '1.5',
      });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const name of [
      'EMBEDDING_BACKEND',
      'EMBEDDING_REMOTE_URL',
      'EMBEDDING_REMOTE_MODEL',
      'EMBEDDING_REMOTE_BATCH_SIZE',
      'EMBEDDING_REMOTE_CONCURRENCY',
      'EMBEDDING_REMOTE_TOKENIZER',
      'EMBEDDING_REMOTE_MAX_TOKENS',
      'EMBEDDING_REMOTE_TIMEOUT_MS',
      'EMBEDDING_REMOTE_MAX_RETRIES',
      'EMBEDDING_REMOTE_RETRY_MAX_MS',
      'EMBEDDING_REMOTE_BREAKER_THRESHOLD',
      'EMBEDDING_REMOTE_BREAKER_COOLDOWN_MS',
      'RERANK_BACKEND',
      'RERANK_REMOTE_URL',
      'RERANK_REMOTE_BATCH_SIZE',
      'RERANK_REMOTE_TIMEOUT_MS',
    ]) {
      expect(message).toContain(`- ${name} `);
    }
    expect(message).toContain('EMBEDDING_BACKEND must be local or openai');
    expect(message).toContain('EMBEDDING_REMOTE_TIMEOUT_MS must be a whole number of milliseconds');
    expect(message).not.toContain('sk-do-not-echo');
  });

  it('builds onnxruntime session options: spinning as configured, the CUDA device when named', () => {
    expect(sessionOptions({ device: 'cpu', cpuSpinning: false })).toEqual({
      extra: {
        session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
      },
    });
    expect(sessionOptions({ device: 'cuda:1', cpuSpinning: true })).toEqual({
      executionProviders: [{ name: 'cuda', deviceId: 1 }],
      extra: {
        session: { intra_op: { allow_spinning: '1' }, inter_op: { allow_spinning: '1' } },
      },
    });
  });
});
