/**
 * EMBEDDING_BACKEND=openai: embeddings from any server of OpenAI's `POST /v1/embeddings`
 * protocol — text-embeddings-inference, Infinity, vLLM, OpenAI itself, or another Heimdex
 * embedder (its /v1/embeddings, behind its service token). The serving path is unchanged: texts
 * are tokenized here (chunked or cut to the window), queued in the model's Batcher, sent as
 * strings in requests of at most EMBEDDING_REMOTE_BATCH_SIZE (EMBEDDING_REMOTE_CONCURRENCY at a
 * time), and the vectors normalised as a local model's are (`toOutcome`).
 *
 * Tokenization (EMBEDDING_REMOTE_TOKENIZER), which decides how exact the truncation report is:
 * - `model`: the tokenizer of the served model (a registry name, a Hub id, or a folder under
 *   EMBEDDING_MODEL_DIR) is loaded — only the tokenizer, no weights — so token counts, the cut and
 *   chunk offsets are exactly a local model's. Heimdex cuts every text to the window before
 *   sending it, so the server never truncates; a server that reports it did
 *   (`usage.truncated_inputs`, which Heimdex's own /v1/embeddings answers) is logged as a warning
 *   naming the count only: its window is smaller than the one Heimdex cut to.
 * - `bytes`: for a model Heimdex has no tokenizer of (OpenAI's text-embedding-3-*): one token per
 *   UTF-8 byte (core/tokenization.ts), an upper bound on the server's own count, within a window
 *   of EMBEDDING_REMOTE_MAX_TOKENS less 2 (for the server's special tokens). `truncated` and
 *   chunk boundaries are then conservative: a text reported whole was sent whole; one reported cut
 *   may have fitted. token_count is the byte count, documented as such.
 * - `auto` (the default): `model` for a registry name or a folder under EMBEDDING_MODEL_DIR,
 *   else `bytes`.
 */
import { AutoConfig, AutoTokenizer, env } from '@huggingface/transformers';
import { z } from 'zod';
import { base64ToFloat32 } from '../../../contract/openai.js';
import type { Chunking } from '../../../contract/internal.js';
import type { ModelConfig, RemoteEmbeddingConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { EmbeddingBackend } from './backend.js';
import type { BatchLimits } from './batcher.js';
import { ServiceError, StartupError, shortReason } from './errors.js';
import { fixAstralCjk, textTokenizer, windowFromModel } from './model.js';
import type { HfTokenizer } from './model.js';
import { loadFailureMessage, resolveModelSource } from './model-source.js';
import type { SourceKind } from './model-source.js';
import { modelSpec } from './registry.js';
import type { ModelSpec } from './registry.js';
import type { RemoteClient } from './remote-http.js';
import { TextTokenizer, byteTokenizer } from './tokenization.js';
import type { ChunkEncoding, EmbedKind, Encoding } from './tokenization.js';

/** Tokens the byte approximation leaves for the server's special tokens ([CLS]/[SEP], BOS/EOS). */
export const BYTE_WINDOW_RESERVE = 2;

/** OpenAI's answer, as every compatible server writes it (extra members ignored). */
const EmbeddingsAnswer = z.object({
  data: z
    .array(
      z.object({
        index: z.int().nonnegative(),
        embedding: z.union([z.array(z.number()), z.string()]),
      }),
    )
    .min(1),
  usage: z
    .object({
      prompt_tokens: z.number().optional(),
      truncated_inputs: z.int().nonnegative().optional(),
    })
    .nullish(),
});

export interface RemoteEmbeddingDeps {
  client: RemoteClient;
  logger: Logger;
}

/** A model served by a remote OpenAI-compatible embeddings server. */
export class RemoteEmbeddingModel implements EmbeddingBackend {
  private closed = false;
  private measuredDim = 0;

  private constructor(
    readonly spec: ModelSpec,
    readonly version: string,
    /** The name sent as `model` (EMBEDDING_REMOTE_MODEL, else the served name). */
    readonly remoteModel: string,
    private readonly tokenizer: TextTokenizer,
    /** `model` (the model's own tokenizer, exact) or `bytes` (the approximation). */
    readonly tokenization: 'model' | 'bytes',
    private readonly remote: RemoteEmbeddingConfig,
    private readonly deps: RemoteEmbeddingDeps,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  get source(): string {
    return `${this.deps.client.url('/embeddings')} (model "${this.remoteModel}")`;
  }

  get dim(): number {
    return this.measuredDim;
  }

  get maxTokens(): number {
    return this.tokenizer.maxTokens;
  }

  get ready(): boolean {
    return !this.closed;
  }

  /** One request per pass, EMBEDDING_REMOTE_CONCURRENCY passes at once; the server budgets tokens. */
  get passLimits(): Partial<BatchLimits> {
    return {
      maxBatchItems: this.remote.batchSize,
      maxBatchTokens: Number.MAX_SAFE_INTEGER,
      concurrency: this.remote.concurrency,
    };
  }

  /**
   * Loads the tokenizer (EMBEDDING_REMOTE_TOKENIZER), then embeds a warm-up text to learn the
   * dimension and check it against the registry's. Every failure is a StartupError that names
   * the setting to fix.
   */
  static async load(
    config: ModelConfig,
    /** The name the server knows the model by (EMBEDDING_REMOTE_MODEL for the default). */
    remoteModel: string,
    remote: RemoteEmbeddingConfig,
    deps: RemoteEmbeddingDeps,
  ): Promise<RemoteEmbeddingModel> {
    const spec = modelSpec(config.name);
    const { tokenizer, tokenization } = await loadTokenizer(spec, config, remote);
    const model = new RemoteEmbeddingModel(
      spec,
      config.version,
      remoteModel,
      tokenizer,
      tokenization,
      remote,
      deps,
    );
    let dim: number;
    try {
      const [warm] = await model.infer([model.tokenize('Heimdex warm-up sentence.', 'passage')]);
      dim = warm?.length ?? 0;
    } catch (err) {
      throw new StartupError(
        `Embedding model "${spec.name}" could not be embedded by the server at ${remote.url} ` +
          `(EMBEDDING_BACKEND=openai): ${shortReason(err)}. Check EMBEDDING_REMOTE_URL (the base ` +
          'URL, as an OpenAI SDK takes it, e.g. http://tei:8080/v1), EMBEDDING_REMOTE_API_KEY and ' +
          'EMBEDDING_REMOTE_MODEL.',
      );
    }
    if (dim <= 0 || (spec.dims !== null && dim !== spec.dims)) {
      throw new StartupError(
        `The embedding server at ${remote.url} answered ${dim}-dimensional vectors for model ` +
          `"${remoteModel}", but "${spec.name}" makes ${spec.dims ?? 'a positive number of'}-dimensional ones: ` +
          'the server serves another model. Point EMBEDDING_REMOTE_URL / EMBEDDING_REMOTE_MODEL at ' +
          `"${spec.name}", or set EMBEDDING_MODEL_NAME to the name of the model the server serves.`,
      );
    }
    model.measuredDim = dim;
    deps.logger.info('remote embedding model ready', {
      model: spec.name,
      remote_model: remoteModel,
      url: remote.url,
      dim,
      tokenizer: tokenization,
      max_tokens: model.maxTokens,
    });
    return model;
  }

  tokenize(text: string, kind: EmbedKind): Encoding {
    return this.tokenizer.tokenize(text, kind);
  }

  tokenizeChunks(text: string, chunking: Chunking | undefined): ChunkEncoding[] {
    return this.tokenizer.tokenizeChunks(text, chunking);
  }

  /** The vectors of `batch`'s input strings, in requests of at most EMBEDDING_REMOTE_BATCH_SIZE. */
  async infer(batch: readonly Encoding[]): Promise<Float32Array[]> {
    if (this.closed) throw new ServiceError('model_not_ready', 'the embedding model is not loaded');
    const inputs = batch.map((e) => {
      if (e.input === undefined) throw new Error('an encoding without its input string');
      return e.input;
    });
    const out: Float32Array[] = [];
    for (let start = 0; start < inputs.length; start += this.remote.batchSize) {
      out.push(...(await this.request(inputs.slice(start, start + this.remote.batchSize))));
    }
    return out;
  }

  async dispose(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** One POST /embeddings: a vector per input, in order, checked for shape and dimension. */
  private async request(inputs: string[]): Promise<Float32Array[]> {
    const answer = await this.deps.client.post({
      path: '/embeddings',
      body: { model: this.remoteModel, input: inputs, encoding_format: 'float' },
      schema: EmbeddingsAnswer,
      inputs,
    });
    const where = `the embedding server at ${this.deps.client.url('/embeddings')}`;
    const vectors = new Array<Float32Array | undefined>(inputs.length);
    for (const item of answer.data) {
      if (item.index >= inputs.length || vectors[item.index] !== undefined) {
        throw badAnswer(`${where} answered an embedding for an input it was not sent`);
      }
      const vector =
        typeof item.embedding === 'string'
          ? decodeBase64(item.embedding, where)
          : Float32Array.from(item.embedding);
      const expected = this.measuredDim || vector.length;
      if (vector.length !== expected || vector.length === 0) {
        throw badAnswer(
          `${where} answered a ${vector.length}-dimensional vector; "${this.name}" makes ${expected}-dimensional ones (did the server's model change?)`,
        );
      }
      vectors[item.index] = vector;
    }
    const missing = vectors.findIndex((v) => v === undefined);
    if (missing >= 0) {
      throw badAnswer(
        `${where} answered ${answer.data.length} embeddings for ${inputs.length} inputs`,
      );
    }
    const truncated = answer.usage?.truncated_inputs ?? 0;
    if (truncated > 0) {
      this.deps.logger.warn(
        'the embedding server truncated inputs Heimdex had fitted to the window',
        {
          model: this.name,
          count: truncated,
          max_tokens: this.maxTokens,
          hint: "the server's window is smaller than Heimdex's: set EMBEDDING_REMOTE_MAX_TOKENS to it",
        },
      );
    }
    return vectors as Float32Array[];
  }
}

function badAnswer(message: string): ServiceError {
  return new ServiceError('backend_error', message, { retryable: false });
}

function decodeBase64(encoded: string, where: string): Float32Array {
  try {
    return base64ToFloat32(encoded);
  } catch {
    throw badAnswer(`${where} answered a base64 embedding that is not float32 data`);
  }
}

/** EMBEDDING_REMOTE_TOKENIZER, resolved: the model's tokenizer, or the byte approximation. */
async function loadTokenizer(
  spec: ModelSpec,
  config: ModelConfig,
  remote: RemoteEmbeddingConfig,
): Promise<{ tokenizer: TextTokenizer; tokenization: 'model' | 'bytes' }> {
  const hasFolder = (): boolean => {
    try {
      resolveModelSource(spec, config, TOKENIZER_SOURCE);
      return config.dir !== null;
    } catch {
      return false;
    }
  };
  const mode =
    remote.tokenizer === 'auto'
      ? spec.hubId !== null || hasFolder()
        ? 'model'
        : 'bytes'
      : remote.tokenizer;
  if (mode === 'bytes') {
    const window = remote.maxTokens ?? spec.maxTokens;
    if (window === null) {
      throw new StartupError(
        `EMBEDDING_REMOTE_MAX_TOKENS is required for "${spec.name}": Heimdex has no tokenizer of it ` +
          "(EMBEDDING_REMOTE_TOKENIZER=bytes), so it must be told the server model's window in " +
          "tokens (e.g. 8191 for OpenAI's text-embedding-3-small, 512 for most BERT-style models).",
      );
    }
    if (window <= BYTE_WINDOW_RESERVE + 1) {
      throw new StartupError(
        `EMBEDDING_REMOTE_MAX_TOKENS=${window} is too small: it must leave room for text beside the ` +
          `${BYTE_WINDOW_RESERVE} tokens kept for the server's special tokens.`,
      );
    }
    return {
      tokenizer: new TextTokenizer(byteTokenizer, {
        maxTokens: window - BYTE_WINDOW_RESERVE,
        queryPrefix: spec.queryPrefix,
        passagePrefix: spec.passagePrefix,
      }),
      tokenization: 'bytes',
    };
  }
  const source = resolveModelSource(spec, config, TOKENIZER_SOURCE);
  env.allowRemoteModels = source.dir === null;
  env.allowLocalModels = source.dir !== null;
  if (source.dir !== null)
    env.localModelPath = source.dir.endsWith('/') ? source.dir : `${source.dir}/`;
  let hf: HfTokenizer;
  try {
    hf = (await AutoTokenizer.from_pretrained(source.id)) as unknown as HfTokenizer;
  } catch (err) {
    throw new StartupError(
      loadFailureMessage(spec, source, config, shortReason(err), TOKENIZER_SOURCE),
    );
  }
  fixAstralCjk({ tokenizer: hf });
  // The window as the local backend takes it (the model's config.json, when the folder has one),
  // never beyond what EMBEDDING_REMOTE_MAX_TOKENS says the server takes.
  let modelConfig: Record<string, unknown> = {};
  try {
    modelConfig = (await AutoConfig.from_pretrained(source.id)) as unknown as Record<
      string,
      unknown
    >;
  } catch {
    // a tokenizer-only folder: the tokenizer's model_max_length decides
  }
  const maxTokens = Math.min(
    remote.maxTokens ?? Infinity,
    spec.maxTokens ?? Infinity,
    windowFromModel(hf, modelConfig),
  );
  return { tokenizer: textTokenizer(hf, spec, maxTokens), tokenization: 'model' };
}

/** How a tokenizer's load failures name it and its settings. */
const TOKENIZER_SOURCE: SourceKind = {
  what: 'tokenizer of embedding model',
  nameVar: 'EMBEDDING_MODEL_NAME',
  dirVar: 'EMBEDDING_MODEL_DIR',
  offlineExample: ' (only its tokenizer.json and tokenizer_config.json are read).',
  otherwise: 'or unset EMBEDDING_MODEL_DIR to download it from the Hugging Face Hub.',
  tail:
    ' With EMBEDDING_BACKEND=openai, EMBEDDING_REMOTE_TOKENIZER=bytes embeds without a local ' +
    'tokenizer (token counts then approximate, see README "Remote backends").',
};
