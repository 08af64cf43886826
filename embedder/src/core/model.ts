import path from 'node:path';
import { Tensor, env, pipeline } from '@huggingface/transformers';
import type { ModelConfig } from '../config.js';
import { ServiceError, StartupError, shortReason } from './errors.js';
import { loadFailureMessage, resolveModelSource } from './model-source.js';
import type { SourceKind } from './model-source.js';
import { modelSpec } from './registry.js';
import type { ModelSpec, Pooling } from './registry.js';
import type { Chunking } from '../../../contract/internal.js';
import { TextTokenizer } from './tokenization.js';
import type { ChunkEncoding, EmbedKind, Encoding } from './tokenization.js';
import { sumOfSquares } from './vector.js';
import type { TextStats } from './truncate.js';

/** A vector whose L2 norm is below this has no direction (e.g. only unknown tokens). */
const MIN_NORM = 1e-12;
/** Fallback window when neither the tokenizer nor the config states one. */
const DEFAULT_MAX_TOKENS = 512;

export type { ChunkEncoding, ChunkPlace, EmbedKind, Encoding } from './tokenization.js';

export type EmbedOutcome =
  | { ok: true; vector: Float32Array; stats: TextStats }
  | { ok: false; code: 'empty_embedding' | 'invalid_embedding'; message: string; stats: TextStats };

interface TokenizerOutput {
  input_ids: number[];
  token_type_ids?: number[];
}

/** The slice of a transformers.js tokenizer that embedding relies on. */
export interface HfTokenizer {
  (text: string, options: { add_special_tokens: boolean; return_tensor: false }): TokenizerOutput;
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  readonly model_max_length: unknown;
  readonly pad_token_id: unknown;
  readonly padding_side: unknown;
}

interface TensorLike {
  type: string;
  dims: number[];
  data: ArrayLike<number>;
  to(type: 'float32'): TensorLike;
}

/** The slice of transformers.js's feature-extraction pipeline that the embedder relies on. */
interface Extractor {
  tokenizer: HfTokenizer;
  model: {
    (inputs: Record<string, Tensor>): Promise<Record<string, TensorLike | undefined>>;
    config: Record<string, unknown>;
    sessions?: { model?: { inputNames?: string[] } };
  };
  dispose(): Promise<void>;
}

/**
 * A loaded sentence-embedding model (the backend): tokenization with truncation in model tokens,
 * padded batched inference with pooling, and L2 normalisation that refuses zero vectors.
 * It does not queue or serialise: the serving path reaches it only through its Batcher
 * (core/batcher.ts), which runs one forward pass at a time.
 */
export class EmbeddingModel {
  private closed = false;
  private measuredDim = 0;

  private constructor(
    readonly spec: ModelSpec,
    readonly version: string,
    /** Human-readable origin for logs: a Hub id or a folder. */
    readonly source: string,
    private readonly extractor: Extractor,
    private readonly tokenizer: TextTokenizer,
    private readonly padId: number,
    private readonly padLeft: boolean,
    /** Whether the ONNX graph has a `token_type_ids` input (BERT-style encoders). */
    private readonly takesTypeIds: boolean,
  ) {}

  /** Dimension of the vectors, measured on a warm-up text at load. */
  get dim(): number {
    return this.measuredDim;
  }

  get name(): string {
    return this.spec.name;
  }

  /** The model window in tokens, special tokens included. */
  get maxTokens(): number {
    return this.tokenizer.maxTokens;
  }

  get ready(): boolean {
    return !this.closed;
  }

  /**
   * Loads the model named by `config`, runs one warm-up text to learn (and check) its dimension.
   * Every failure is a StartupError whose message names the model and says how to fix it.
   */
  static async load(config: ModelConfig): Promise<EmbeddingModel> {
    const spec = modelSpec(config.name);
    const source = resolveModelSource(spec, config, EMBEDDING_SOURCE);

    env.allowRemoteModels = source.dir === null;
    env.allowLocalModels = source.dir !== null;
    if (source.dir !== null)
      env.localModelPath = source.dir.endsWith('/') ? source.dir : `${source.dir}/`;

    let extractor: Extractor;
    try {
      extractor = (await pipeline('feature-extraction', source.id, {
        dtype: config.dtype,
        device: config.device.startsWith('cuda') ? 'cuda' : 'cpu',
        session_options: sessionOptions(config),
      })) as unknown as Extractor;
    } catch (err) {
      throw new StartupError(
        loadFailureMessage(spec, source, config, shortReason(err), EMBEDDING_SOURCE),
      );
    }

    fixAstralCjk(extractor);
    // The registry's window, never beyond what the model itself states.
    const maxTokens = Math.min(
      spec.maxTokens ?? Infinity,
      windowFromModel(extractor.tokenizer, extractor.model.config),
    );
    const padId = Number(extractor.tokenizer.pad_token_id ?? 0);
    const model = new EmbeddingModel(
      spec,
      config.version,
      source.dir === null ? `hub:${source.id}` : path.join(source.dir, source.id),
      extractor,
      textTokenizer(extractor.tokenizer, spec, maxTokens),
      Number.isInteger(padId) && padId >= 0 ? padId : 0,
      extractor.tokenizer.padding_side === 'left',
      extractor.model.sessions?.model?.inputNames?.includes('token_type_ids') ?? true,
    );

    let dim: number;
    try {
      const [warm] = await model.infer([model.tokenize('Heimdex warm-up sentence.', 'passage')]);
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
    model.measuredDim = dim;
    return model;
  }

  /** Tokenizes a text for `kind`, truncated to the window (TextTokenizer.tokenize). */
  tokenize(text: string, kind: EmbedKind): Encoding {
    return this.tokenizer.tokenize(text, kind);
  }

  /** A passage's chunks, tokenized (TextTokenizer.tokenizeChunks). */
  tokenizeChunks(text: string, chunking: Chunking | undefined): ChunkEncoding[] {
    return this.tokenizer.tokenizeChunks(text, chunking);
  }

  /**
   * One forward pass over `batch` (padded to its longest item) with the model's pooling:
   * one pooled, un-normalised vector per encoding, in order. Items are independent: the
   * attention mask keeps padding out, so a vector does not depend on its batch.
   */
  async infer(batch: readonly Encoding[]): Promise<Float32Array[]> {
    if (this.closed) throw new ServiceError('model_not_ready', 'the embedding model is not loaded');
    if (batch.length === 0) return [];
    const rows = batch.length;
    const width = Math.max(1, ...batch.map((e) => e.ids.length));
    const ids = new BigInt64Array(rows * width).fill(BigInt(this.padId));
    const mask = new BigInt64Array(rows * width);
    const kept = new Uint8Array(rows * width);
    const types = this.takesTypeIds ? new BigInt64Array(rows * width) : null;
    for (let r = 0; r < rows; r++) {
      const e = batch[r] as Encoding;
      const start = r * width + (this.padLeft ? width - e.ids.length : 0);
      for (let j = 0; j < e.ids.length; j++) {
        ids[start + j] = BigInt(e.ids[j] as number);
        mask[start + j] = 1n;
        kept[start + j] = 1;
        if (types) types[start + j] = BigInt(e.typeIds?.[j] ?? 0);
      }
    }
    const inputs: Record<string, Tensor> = {
      input_ids: new Tensor('int64', ids, [rows, width]),
      attention_mask: new Tensor('int64', mask, [rows, width]),
      ...(types ? { token_type_ids: new Tensor('int64', types, [rows, width]) } : {}),
    };
    const out = await this.extractor.model(inputs);
    let hidden = out.last_hidden_state ?? out.logits ?? out.token_embeddings;
    if (!hidden) throw new Error('the model returned no hidden states');
    if (hidden.type !== 'float32') hidden = hidden.to('float32');
    const [outRows, seq, dim] = hidden.dims;
    if (hidden.dims.length !== 3 || outRows !== rows || seq !== width || !dim) {
      throw new Error(`unexpected model output shape [${hidden.dims.join(', ')}]`);
    }
    const data = hidden.data instanceof Float32Array ? hidden.data : Float32Array.from(hidden.data);
    return pool(data, kept, rows, width, dim, this.spec.pooling);
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.extractor.dispose();
  }
}

/** Pools [rows, seq, dim] hidden states over the attention mask: mean, or the first token. */
function pool(
  data: Float32Array,
  kept: Uint8Array,
  rows: number,
  seq: number,
  dim: number,
  pooling: Pooling,
): Float32Array[] {
  const out: Float32Array[] = [];
  const sums = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const vector = new Float32Array(dim);
    out.push(vector);
    const first = kept.subarray(r * seq, (r + 1) * seq).indexOf(1);
    if (first < 0) continue;
    if (pooling === 'cls') {
      vector.set(data.subarray((r * seq + first) * dim, (r * seq + first + 1) * dim));
      continue;
    }
    sums.fill(0);
    let count = 0;
    for (let t = 0; t < seq; t++) {
      if (kept[r * seq + t] !== 1) continue;
      count++;
      const base = (r * seq + t) * dim;
      for (let k = 0; k < dim; k++) sums[k] = (sums[k] as number) + (data[base + k] as number);
    }
    for (let k = 0; k < dim; k++) vector[k] = (sums[k] as number) / count;
  }
  return out;
}

export function emptyEmbedding(stats: TextStats): EmbedOutcome {
  return { ok: false, code: 'empty_embedding', message: 'text produced no known tokens', stats };
}

/**
 * Normalises a pooled vector to unit length. A vector without direction (norm ~0: the text
 * had only unknown tokens) is `empty_embedding`, a non-finite one `invalid_embedding`.
 */
export function toOutcome(raw: Float32Array | undefined, stats: TextStats): EmbedOutcome {
  if (!raw) throw new Error('embedding output does not match its inputs');
  const norm = Math.sqrt(sumOfSquares(raw));
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

/** CJK ideographs as BERT's tokenizer (and Hugging Face `tokenizers`) define them. */
function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * transformers.js's BertNormalizer puts spaces around CJK ideographs one UTF-16 unit at a time, so
 * ideographs outside the BMP (CJK Extension B and later, e.g. U+20000) are never split into
 * tokens of their own, unlike in the reference tokenizer (Hugging Face `tokenizers`). Its
 * normalizer gets a version that walks code points; other tokenizers are left as they are.
 */
export function fixAstralCjk(extractor: { tokenizer: unknown }): void {
  const tokenizer = extractor.tokenizer as {
    _tokenizer?: { normalizer?: { tokenize_chinese_chars?: (text: string) => string } };
  };
  const normalizer = tokenizer._tokenizer?.normalizer;
  if (typeof normalizer?.tokenize_chinese_chars !== 'function') return;
  normalizer.tokenize_chinese_chars = (text: string): string => {
    let out = '';
    for (const ch of text) out += isCjkIdeograph(ch.codePointAt(0) ?? 0) ? ` ${ch} ` : ch;
    return out;
  };
}

/**
 * Tokenization in a transformers.js tokenizer's tokens for `spec` (its instruction prefixes) with
 * a window of `maxTokens`: exact counts, truncation where sentence-transformers cuts, and chunks.
 */
export function textTokenizer(
  tokenizer: HfTokenizer,
  spec: Pick<ModelSpec, 'queryPrefix' | 'passagePrefix'>,
  maxTokens: number,
): TextTokenizer {
  return new TextTokenizer(
    {
      withSpecialTokens: (text) => {
        const out = tokenizer(text, { add_special_tokens: true, return_tensor: false });
        return {
          ids: out.input_ids,
          typeIds: out.token_type_ids ?? null,
          count: out.input_ids.length,
        };
      },
      encode: (text) => tokenizer.encode(text, { add_special_tokens: false }),
      // [CLS]/[SEP] for BERT, 0 for Model2Vec.
      specialTokens: tokenizer.encode('', { add_special_tokens: true }).length,
    },
    { maxTokens, queryPrefix: spec.queryPrefix, passagePrefix: spec.passagePrefix },
  );
}

/** `min(tokenizer.model_max_length, config.max_position_embeddings)`, ignoring unset values. */
export function windowFromModel(
  tokenizer: Pick<HfTokenizer, 'model_max_length'>,
  config: Record<string, unknown>,
): number {
  const candidates = [tokenizer.model_max_length, config.max_position_embeddings]
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n < 1_000_000);
  return candidates.length > 0 ? Math.min(...candidates) : DEFAULT_MAX_TOKENS;
}

/** How the embedding model's load failures name it and its settings. */
const EMBEDDING_SOURCE: SourceKind = {
  what: 'embedding model',
  nameVar: 'EMBEDDING_MODEL_NAME',
  dirVar: 'EMBEDDING_MODEL_DIR',
  offlineExample:
    ' (e.g. EMBEDDING_MODEL_DIR=../shared/models EMBEDDING_MODEL_NAME=potion-base-2M).',
  otherwise: 'or unset EMBEDDING_MODEL_DIR to download the model from the Hugging Face Hub.',
  tail: '',
};

/**
 * onnxruntime session options for a model: the CUDA device when one is named, and (on CPU)
 * whether the intra/inter-op threads may spin (`session.*.allow_spinning` config entries).
 */
export function sessionOptions(
  config: Pick<ModelConfig, 'device' | 'cpuSpinning'>,
): Record<string, unknown> {
  const deviceId = config.device.startsWith('cuda:') ? Number(config.device.slice(5)) : null;
  const spinning = config.cpuSpinning === false ? '0' : '1';
  return {
    ...(deviceId === null ? {} : { executionProviders: [{ name: 'cuda', deviceId }] }),
    extra: {
      session: {
        intra_op: { allow_spinning: spinning },
        inter_op: { allow_spinning: spinning },
      },
    },
  };
}
