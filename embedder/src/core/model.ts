import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { env, pipeline } from '@huggingface/transformers';
import type { ModelConfig } from '../config.js';
import { ServiceError, StartupError, shortReason } from './errors.js';
import { modelSpec } from './registry.js';
import type { ModelSpec, Pooling } from './registry.js';
import { Mutex } from './mutex.js';
import { fitToWindow } from './truncate.js';
import type { TextStats } from './truncate.js';

/** Items per forward pass: bounds the padded tensor (chunk × window × hidden) in memory. */
export const MAX_BATCH = 64;
/** A vector whose L2 norm is below this has no direction (e.g. only unknown tokens). */
const MIN_NORM = 1e-12;
/** Fallback window when neither the tokenizer nor the config states one. */
const DEFAULT_MAX_TOKENS = 512;

export type EmbedKind = 'passage' | 'query';

export type EmbedOutcome =
  | { ok: true; vector: Float32Array; stats: TextStats }
  | { ok: false; code: 'empty_embedding' | 'invalid_embedding'; message: string; stats: TextStats };

/** The slice of transformers.js's feature-extraction pipeline that the embedder relies on. */
interface Extractor {
  (
    texts: string[],
    options: { pooling: Pooling; normalize: boolean },
  ): Promise<{ dims: number[]; data: ArrayLike<number> }>;
  tokenizer: {
    encode(text: string, options?: { add_special_tokens?: boolean }): number[];
    readonly model_max_length: unknown;
  };
  model: { config: Record<string, unknown> };
  dispose(): Promise<void>;
}

/** Where the model's files come from: the Hub, or a folder under EMBEDDING_MODEL_DIR. */
interface ModelSource {
  /** The id transformers.js loads: a Hub id, or a path relative to `dir`. */
  id: string;
  dir: string | null;
}

/**
 * A loaded sentence-embedding model: tokenizer-aware truncation, batched inference with pooling,
 * and L2 normalisation that refuses zero vectors. One forward pass runs at a time; at most
 * `maxQueued` callers wait, beyond that `embed` fails fast with `overloaded`.
 */
export class EmbeddingModel {
  private closed = false;
  private readonly gate = new Mutex();

  private constructor(
    readonly spec: ModelSpec,
    readonly version: string,
    /** Human-readable origin for logs: a Hub id or a folder. */
    readonly source: string,
    private readonly extractor: Extractor,
    /** The model window in tokens, special tokens included. */
    readonly maxTokens: number,
    /** Special tokens the tokenizer adds to every input ([CLS]/[SEP] …), 0 for Model2Vec. */
    private readonly specialTokens: number,
    private readonly maxQueued: number,
    /** Dimension of the vectors, measured on a warm-up text. */
    readonly dim: number,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  get ready(): boolean {
    return !this.closed;
  }

  /**
   * Loads the model named by `config`, runs one warm-up text to learn (and check) its dimension.
   * Every failure is a StartupError whose message names the model and says how to fix it.
   */
  static async load(
    config: ModelConfig,
    options: { maxQueued?: number } = {},
  ): Promise<EmbeddingModel> {
    const spec = modelSpec(config.name);
    const source = resolveSource(spec, config);

    env.allowRemoteModels = source.dir === null;
    env.allowLocalModels = source.dir !== null;
    if (source.dir !== null)
      env.localModelPath = source.dir.endsWith('/') ? source.dir : `${source.dir}/`;

    let extractor: Extractor;
    try {
      const device = config.device.startsWith('cuda') ? 'cuda' : 'cpu';
      const deviceId = config.device.startsWith('cuda:') ? Number(config.device.slice(5)) : null;
      extractor = (await pipeline('feature-extraction', source.id, {
        dtype: config.dtype,
        device,
        ...(deviceId === null
          ? {}
          : { session_options: { executionProviders: [{ name: 'cuda', deviceId }] } }),
      })) as unknown as Extractor;
    } catch (err) {
      throw new StartupError(loadFailureMessage(spec, source, config, shortReason(err)));
    }

    // The registry's window, never beyond what the model itself states.
    const maxTokens = Math.min(spec.maxTokens ?? Infinity, windowFromModel(extractor));
    const specialTokens = extractor.tokenizer.encode('', { add_special_tokens: true }).length;

    let dim: number;
    try {
      const [warm] = await forwardPass(extractor, spec.pooling, ['Heimdex warm-up sentence.']);
      dim = warm?.length ?? 0;
    } catch (err) {
      await extractor.dispose().catch(() => undefined);
      throw new StartupError(
        `Embedding model "${spec.name}" loaded but failed its warm-up inference on ${config.device}: ${shortReason(err)}.` +
          (config.device === 'cpu'
            ? ''
            : ' If the GPU runtime is not available, set EMBEDDING_DEVICE=cpu.'),
      );
    }
    if (dim <= 0 || (spec.dims !== null && dim !== spec.dims)) {
      await extractor.dispose().catch(() => undefined);
      throw new StartupError(
        `Embedding model "${spec.name}" produced ${dim}-dimensional vectors, but the registry expects ${spec.dims ?? 'a positive dimension'}. ` +
          'Check that the folder holds the right model, or use a name that is not in the registry.',
      );
    }
    return new EmbeddingModel(
      spec,
      config.version,
      source.dir === null ? `hub:${source.id}` : path.join(source.dir, source.id),
      extractor,
      maxTokens,
      specialTokens,
      options.maxQueued ?? 64,
      dim,
    );
  }

  /** Tokens of `text`, special tokens excluded. */
  countTokens(text: string): number {
    return this.extractor.tokenizer.encode(text, { add_special_tokens: false }).length;
  }

  /**
   * Embeds texts in batches (one forward pass per ≤ MAX_BATCH items), each truncated to the
   * model window in tokens. Outcomes are in input order and equal to embedding one at a time.
   * Calls run one at a time in arrival order; when `maxQueued` are already waiting it fails
   * fast with `overloaded` (the caller retries after a second).
   */
  async embed(texts: readonly string[], kind: EmbedKind): Promise<EmbedOutcome[]> {
    if (this.gate.size > this.maxQueued) {
      throw new ServiceError('overloaded', 'too many requests are waiting for the model', {
        retryAfterSeconds: 1,
      });
    }
    return this.gate.run(async () => {
      if (this.closed)
        throw new ServiceError('model_not_ready', 'the embedding model is not loaded');
      const prefix = kind === 'query' ? this.spec.queryPrefix : this.spec.passagePrefix;
      const budget = this.maxTokens - this.specialTokens;
      const fitted = texts.map((text) =>
        fitToWindow(text, { countTokens: (s) => this.countTokens(s), budget, prefix }),
      );
      const outcomes = new Array<EmbedOutcome>(texts.length);
      // A text with no tokens at all (blank) has nothing to pool: it never reaches the model.
      fitted.forEach((f, i) => {
        if (f.stats.token_count === 0) outcomes[i] = emptyEmbedding(f.stats);
      });
      // Similar lengths in one pass waste less on padding; results go back to input order.
      const order = fitted
        .map((f, i) => ({ i, len: f.input.length, tokens: f.stats.token_count }))
        .filter((o) => o.tokens > 0)
        .sort((a, b) => a.len - b.len)
        .map((o) => o.i);
      for (let start = 0; start < order.length; start += MAX_BATCH) {
        const chunk = order.slice(start, start + MAX_BATCH);
        const inputs = chunk.map((i) => fitted[i]?.input ?? '');
        const vectors = await forwardPass(this.extractor, this.spec.pooling, inputs);
        chunk.forEach((i, row) => {
          const stats = fitted[i]?.stats;
          const vector = vectors[row];
          if (!stats || !vector) throw new Error('embedding output does not match its inputs');
          outcomes[i] = normalise(vector, stats);
        });
      }
      return outcomes;
    });
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let the running and queued calls finish (they fail fast once `closed` is seen).
    await this.gate.run(async () => undefined);
    await this.extractor.dispose();
  }
}

/** One pooled, un-normalised forward pass: one vector per input, in order. */
async function forwardPass(
  extractor: Extractor,
  pooling: Pooling,
  inputs: string[],
): Promise<Float32Array[]> {
  const out = await extractor(inputs, { pooling, normalize: false });
  const [rows, dim] = out.dims;
  if (out.dims.length !== 2 || rows !== inputs.length || !dim) {
    throw new Error(`unexpected embedding output shape [${out.dims.join(', ')}]`);
  }
  const data = Float32Array.from(out.data);
  return Array.from({ length: rows }, (_, r) => data.subarray(r * dim, (r + 1) * dim));
}

function emptyEmbedding(stats: TextStats): EmbedOutcome {
  return { ok: false, code: 'empty_embedding', message: 'text produced no known tokens', stats };
}

function normalise(raw: Float32Array, stats: TextStats): EmbedOutcome {
  let sum = 0;
  for (const x of raw) sum += x * x;
  const norm = Math.sqrt(sum);
  if (!Number.isFinite(norm)) {
    return {
      ok: false,
      code: 'invalid_embedding',
      message: 'the model produced a non-finite embedding',
      stats,
    };
  }
  if (norm < MIN_NORM) return emptyEmbedding(stats);
  const vector = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) vector[i] = (raw[i] ?? 0) / norm;
  return { ok: true, vector, stats };
}

/** `min(tokenizer.model_max_length, config.max_position_embeddings)`, ignoring unset values. */
function windowFromModel(extractor: Extractor): number {
  const candidates = [
    extractor.tokenizer.model_max_length,
    extractor.model.config.max_position_embeddings,
  ]
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n < 1_000_000);
  return candidates.length > 0 ? Math.min(...candidates) : DEFAULT_MAX_TOKENS;
}

function resolveSource(spec: ModelSpec, config: ModelConfig): ModelSource {
  if (config.dir === null) return { id: spec.hubId ?? spec.name, dir: null };
  const candidates = spec.hubId ? [spec.name, spec.hubId] : [spec.name];
  const found = candidates.find((c) => isDirectory(path.join(config.dir as string, c)));
  if (found) return { id: found, dir: config.dir };
  const reason = `no folder named ${candidates.map((c) => `"${c}"`).join(' or ')} in EMBEDDING_MODEL_DIR=${config.dir}`;
  throw new StartupError(
    loadFailureMessage(spec, { id: spec.name, dir: config.dir }, config, reason),
  );
}

function loadFailureMessage(
  spec: ModelSpec,
  source: ModelSource,
  config: ModelConfig,
  reason: string,
): string {
  const label = spec.hubId ? `"${spec.name}" (${spec.hubId})` : `"${spec.name}"`;
  const gpuHint =
    config.device === 'cpu'
      ? ''
      : ` If the GPU runtime is not available on this machine, set EMBEDDING_DEVICE=cpu.`;
  if (source.dir === null) {
    return (
      `Could not load embedding model ${label} from the Hugging Face Hub: ${reason}. ` +
      'If this machine is offline, download the model elsewhere and set EMBEDDING_MODEL_DIR to the folder that contains it ' +
      '(e.g. EMBEDDING_MODEL_DIR=../shared/models EMBEDDING_MODEL_NAME=potion-base-2M).' +
      gpuHint
    );
  }
  const available = listModelFolders(source.dir);
  return (
    `Could not load embedding model ${label} from EMBEDDING_MODEL_DIR=${source.dir}: ${reason}. ` +
    `Put the model's folder (config.json, tokenizer.json, onnx/model${config.dtype === 'fp32' ? '' : dtypeSuffix(config.dtype)}.onnx) ` +
    `there, set EMBEDDING_MODEL_NAME to a folder that exists (${available.length > 0 ? `found: ${available.join(', ')}` : 'the folder has no model folders'}), ` +
    'or unset EMBEDDING_MODEL_DIR to download the model from the Hugging Face Hub.' +
    gpuHint
  );
}

function dtypeSuffix(dtype: ModelConfig['dtype']): string {
  return dtype === 'fp16' ? '_fp16' : dtype === 'q8' ? '_quantized' : '';
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Folders directly under `dir` that look like transformers.js model folders. */
function listModelFolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(path.join(dir, e.name, 'config.json')))
      .map((e) => e.name)
      .sort()
      .slice(0, 20);
  } catch {
    return [];
  }
}
