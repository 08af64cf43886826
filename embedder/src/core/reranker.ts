/**
 * Cross-encoder reranking (POST /v1/rerank, text-embeddings-inference's protocol): a query and up
 * to 1,000 texts in, one relevance score per text out, best first. Nothing is stored, and nothing
 * of the texts is kept, logged or counted beyond their number.
 *
 * The scores are sentence-transformers' CrossEncoder's, exactly (embedder/test/rerank.test.ts
 * checks them against it within 1e-3):
 * - each (query, text) pair is tokenized as the tokenizer's pair template has it (BERT:
 *   `[CLS] query [SEP] text [SEP]` with segment ids 0…0 1…1; XLM-RoBERTa: `<s> q </s></s> t </s>`);
 * - a pair longer than the window (min of the tokenizer's model_max_length and the model's
 *   max_position_embeddings; 512 for MS MARCO MiniLM) is cut as `tokenizer(pairs,
 *   truncation=True)` cuts it, Hugging Face tokenizers' `longest_first` (longestFirst below): the
 *   shorter side is kept whole when the longer one can give up enough, else both are cut to half
 *   the room each. A short query is therefore always kept whole;
 * - the score is the model's activation of its one logit: sigmoid for MS MARCO cross-encoders
 *   (CrossEncoder's default for a one-label model, or what its config's
 *   `sentence_transformers.activation_fn` names), the logit itself with `raw_scores`.
 *
 * Pairs are batched like embeddings: the reranker has its own Batcher (padded-token budget and
 * item cap of EMBEDDER_MAX_BATCH_TOKENS / _ITEMS, the batch metrics labelled by its name), and a
 * request is admitted by the QueueLimiter every request shares (429 beyond it) before any work.
 */
import path from 'node:path';
import {
  AutoModelForSequenceClassification,
  AutoTokenizer,
  Tensor,
  env,
} from '@huggingface/transformers';
import type { ModelConfig } from '../config.js';
import { Batcher } from './batcher.js';
import type { BatchLimits, QueueLimiter } from './batcher.js';
import { ServiceError, StartupError, shortReason } from './errors.js';
import { withInferenceFaults } from './faults.js';
import type { Faults } from './faults.js';
import type { Metrics } from './metrics.js';
import { fixAstralCjk, sessionOptions } from './model.js';
import type { Encoding } from './model.js';
import { loadFailureMessage, resolveModelSource } from './model-source.js';
import type { SourceKind } from './model-source.js';
import { rerankerSpec } from './rerank-registry.js';
import type { RerankActivation, RerankerSpec } from './rerank-registry.js';
import type { CallOptions, Timing } from './service.js';

/** Fallback window when neither the tokenizer nor the config states one. */
const DEFAULT_MAX_TOKENS = 512;
/** Texts tokenized between two yields to the event loop (so forward passes keep being fed). */
const TOKENIZE_CHUNK = 64;

/** RERANK_MODEL_NAME and RERANK_MODEL_DIR, with the embedding model's device and dtype. */
export type RerankerConfig = Pick<ModelConfig, 'name' | 'dir' | 'device' | 'dtype' | 'cpuSpinning'>;

/**
 * How many tokens of each side of a pair to keep so that `first + second <= budget`, as Hugging
 * Face tokenizers' `longest_first` truncation decides it (the Rust `truncate_encodings`; what
 * sentence-transformers' CrossEncoder gets from `tokenizer(pairs, truncation=True)`): when the
 * pair fits, both whole; else the shorter side whole if the longer one can take the rest and
 * still be at least as long, else ⌊budget/2⌋ for the shorter side and the rest for the longer.
 */
export function longestFirst(first: number, second: number, budget: number): [number, number] {
  if (first + second <= budget) return [first, second];
  const swap = first > second;
  let short = swap ? second : first;
  let long = short > budget ? short : Math.max(short, budget - short);
  if (short + long > budget) {
    short = Math.floor(budget / 2);
    long = short + (budget % 2);
  }
  const [a, b] = swap ? [long, short] : [short, long];
  return [Math.min(first, a), Math.min(second, b)];
}

/** A tokenizer's pair template: the special tokens around and between the two sequences. */
interface PairTemplate {
  prefix: number[];
  middle: number[];
  suffix: number[];
  /** Segment ids of prefix + first, and of middle; of second + suffix. Null: none (RoBERTa). */
  types: { prefix: number; first: number; middle: number; second: number; suffix: number } | null;
}

/** A query/text pair, tokenized for the model; `stats` describe the text. */
export interface PairEncoding extends Encoding {
  /** Tokens of the query kept (special tokens excluded). */
  queryTokens: number;
}

interface TokenizerOutput {
  input_ids: number[];
  token_type_ids?: number[];
}

/** The slice of transformers.js's tokenizer and sequence-classification model the reranker uses. */
interface PairTokenizer {
  (
    text: string,
    options: { text_pair?: string; add_special_tokens: boolean; return_tensor: false },
  ): TokenizerOutput;
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  readonly model_max_length: unknown;
  readonly pad_token_id: unknown;
}

interface TensorLike {
  type: string;
  dims: number[];
  data: ArrayLike<number>;
  to(type: 'float32'): TensorLike;
}

interface ClassifierModel {
  (inputs: Record<string, Tensor>): Promise<{ logits?: TensorLike }>;
  config: Record<string, unknown>;
  sessions?: { model?: { inputNames?: string[] } };
  dispose(): Promise<unknown>;
}

/**
 * A loaded cross-encoder (the backend): pair tokenization with longest_first truncation, and one
 * padded forward pass per batch giving each pair's logits. It does not queue: the Reranker reaches
 * it only through its Batcher, which runs one pass at a time.
 */
export class CrossEncoderModel {
  private closed = false;

  private constructor(
    readonly spec: RerankerSpec,
    /** Human-readable origin for logs: a Hub id or a folder. */
    readonly source: string,
    private readonly tokenizer: PairTokenizer,
    private readonly model: ClassifierModel,
    /** The window in tokens, special tokens of the pair included. */
    readonly maxTokens: number,
    readonly activation: RerankActivation,
    private readonly template: PairTemplate,
    private readonly padId: number,
    private readonly takesTypeIds: boolean,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  /** Special tokens of a pair ([CLS] … [SEP] … [SEP]: 3 for BERT, 4 for XLM-RoBERTa). */
  get pairSpecialTokens(): number {
    const t = this.template;
    return t.prefix.length + t.middle.length + t.suffix.length;
  }

  /**
   * Loads the reranker named by `config` (a registry name, a Hub id, or a folder under `dir`),
   * checks that it is a one-label sequence classifier, learns its pair template and runs one
   * warm-up pair. Every failure is a StartupError that names the model and says how to fix it.
   */
  static async load(config: RerankerConfig): Promise<CrossEncoderModel> {
    const spec = rerankerSpec(config.name);
    const source = resolveModelSource(spec, config, RERANKER_SOURCE);
    env.allowRemoteModels = source.dir === null;
    env.allowLocalModels = source.dir !== null;
    if (source.dir !== null)
      env.localModelPath = source.dir.endsWith('/') ? source.dir : `${source.dir}/`;

    let tokenizer: PairTokenizer;
    let model: ClassifierModel;
    try {
      tokenizer = (await AutoTokenizer.from_pretrained(source.id)) as unknown as PairTokenizer;
      model = (await AutoModelForSequenceClassification.from_pretrained(source.id, {
        dtype: config.dtype,
        device: config.device.startsWith('cuda') ? 'cuda' : 'cpu',
        session_options: sessionOptions(config),
      })) as unknown as ClassifierModel;
    } catch (err) {
      throw new StartupError(
        loadFailureMessage(spec, source, config, shortReason(err), RERANKER_SOURCE),
      );
    }
    const fail = async (message: string): Promise<never> => {
      await model.dispose().catch(() => undefined);
      throw new StartupError(`Reranker "${spec.name}" ${message}`);
    };
    fixAstralCjk({ tokenizer });
    const template = pairTemplate(tokenizer);
    if (!template) {
      return fail(
        'has a tokenizer whose pair template could not be read (expected special tokens around ' +
          'and between the two texts, as BERT and XLM-RoBERTa tokenizers have); use a cross-encoder.',
      );
    }
    const maxTokens = Math.min(spec.maxTokens ?? Infinity, windowFromModel(tokenizer, model));
    const padId = Number(tokenizer.pad_token_id ?? 0);
    const activation = spec.activation ?? activationFromConfig(model.config);
    if (activation === null) {
      return fail(
        'names an activation in config.json (sentence_transformers.activation_fn) that Heimdex does not apply; only Sigmoid and Identity are supported.',
      );
    }
    const reranker = new CrossEncoderModel(
      spec,
      source.dir === null ? `hub:${source.id}` : path.join(source.dir, source.id),
      tokenizer,
      model,
      maxTokens,
      activation,
      template,
      Number.isInteger(padId) && padId >= 0 ? padId : 0,
      model.sessions?.model?.inputNames?.includes('token_type_ids') ?? true,
    );
    if (maxTokens <= reranker.pairSpecialTokens + 1) {
      return fail(`has a window of ${maxTokens} tokens: too small for a query and a text.`);
    }
    let labels: number;
    try {
      const query = reranker.encodeQuery('Heimdex warm-up query');
      const [warm] = await reranker.infer([reranker.pair(query, 'Heimdex warm-up text.', true)]);
      labels = warm?.length ?? 0;
    } catch (err) {
      return fail(
        `loaded but failed its warm-up inference on ${config.device}: ${shortReason(err)}.` +
          (config.device === 'cpu'
            ? ''
            : ' If the GPU runtime is not available, set EMBEDDING_DEVICE=cpu.'),
      );
    }
    if (labels !== 1) {
      return fail(
        `outputs ${labels} labels per pair; a reranker must output one relevance logit ` +
          '(a cross-encoder with num_labels=1, e.g. ms-marco-minilm-l6-v2).',
      );
    }
    return reranker;
  }

  /** The query's tokens (special tokens excluded), once per request. */
  encodeQuery(query: string): number[] {
    return this.tokenizer.encode(query, { add_special_tokens: false });
  }

  /**
   * The pair (query, text), cut to the window by longest_first when `truncate`; with `truncate`
   * false a pair over the window is refused (`payload_too_large`, naming no field: the caller
   * knows which text it passed).
   */
  pair(queryIds: readonly number[], text: string, truncate: boolean): PairEncoding {
    const textIds = this.tokenizer.encode(text, { add_special_tokens: false });
    const budget = this.maxTokens - this.pairSpecialTokens;
    const [q, t] = longestFirst(queryIds.length, textIds.length, budget);
    const cut = q < queryIds.length || t < textIds.length;
    if (cut && !truncate) {
      throw new ServiceError(
        'payload_too_large',
        `the query and this text are ${queryIds.length + textIds.length + this.pairSpecialTokens} ` +
          `tokens together, over the reranker's window of ${this.maxTokens}; send truncate: true ` +
          '(the default) to cut the pair as sentence-transformers does',
      );
    }
    const { prefix, middle, suffix, types } = this.template;
    const ids = [...prefix, ...queryIds.slice(0, q), ...middle, ...textIds.slice(0, t), ...suffix];
    const typeIds = types
      ? [
          ...prefix.map(() => types.prefix),
          ...new Array<number>(q).fill(types.first),
          ...middle.map(() => types.middle),
          ...new Array<number>(t).fill(types.second),
          ...suffix.map(() => types.suffix),
        ]
      : null;
    const textLen = codePoints(text);
    return {
      ids,
      typeIds,
      queryTokens: q,
      // Rerank reports no character offsets: truncated_len is the text's length.
      stats: {
        text_len: textLen,
        token_count: textIds.length,
        truncated: cut,
        truncated_len: textLen,
      },
    };
  }

  /** One forward pass over `batch` (padded to its longest pair): each pair's logits, in order. */
  async infer(batch: readonly Encoding[]): Promise<Float32Array[]> {
    if (this.closed) throw new ServiceError('model_not_ready', 'the reranker is not loaded');
    if (batch.length === 0) return [];
    const rows = batch.length;
    const width = Math.max(1, ...batch.map((e) => e.ids.length));
    const ids = new BigInt64Array(rows * width).fill(BigInt(this.padId));
    const mask = new BigInt64Array(rows * width);
    const types = this.takesTypeIds ? new BigInt64Array(rows * width) : null;
    for (let r = 0; r < rows; r++) {
      const e = batch[r] as Encoding;
      const start = r * width;
      for (let j = 0; j < e.ids.length; j++) {
        ids[start + j] = BigInt(e.ids[j] as number);
        mask[start + j] = 1n;
        if (types) types[start + j] = BigInt(e.typeIds?.[j] ?? 0);
      }
    }
    const out = await this.model({
      input_ids: new Tensor('int64', ids, [rows, width]),
      attention_mask: new Tensor('int64', mask, [rows, width]),
      ...(types ? { token_type_ids: new Tensor('int64', types, [rows, width]) } : {}),
    });
    let logits = out.logits;
    if (!logits) throw new Error('the reranker returned no logits');
    if (logits.type !== 'float32') logits = logits.to('float32');
    const [outRows, labels] = logits.dims;
    if (logits.dims.length !== 2 || outRows !== rows || !labels) {
      throw new Error(`unexpected reranker output shape [${logits.dims.join(', ')}]`);
    }
    const data = logits.data;
    return Array.from({ length: rows }, (_, r) =>
      Float32Array.from({ length: labels }, (_, l) => data[r * labels + l] as number),
    );
  }

  /** The score of a logit: the model's activation, or the logit itself (`raw`). */
  score(logit: number, raw: boolean): number {
    if (raw || this.activation === 'identity') return logit;
    return 1 / (1 + Math.exp(-logit));
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.model.dispose();
  }
}

export interface RerankRequest {
  query: string;
  /** 1..1000 non-blank texts (the edge validates). */
  texts: readonly string[];
  /** Logits instead of the model's activation. */
  rawScores?: boolean;
  /** Cut pairs over the window (default true); false refuses them. */
  truncate?: boolean;
  /** When present, must be the served reranker's name. */
  model?: string;
}

export interface RerankResult {
  /** One per text, best first; ties in request order. */
  ranked: Array<{ index: number; score: number }>;
  model: string;
  /** Pairs cut to the window. */
  truncatedTexts: number;
}

/**
 * What POST /v1/rerank serves: the local cross-encoder (Reranker, RERANK_BACKEND=local) or a
 * remote rerank server (RemoteReranker, core/remote-rerank.ts, RERANK_BACKEND=tei|cohere).
 */
export interface RerankService {
  /** The served reranker's name (RERANK_MODEL_NAME). */
  readonly name: string;
  /** Human-readable origin for logs: a Hub id, a folder, or a server's URL. */
  readonly source: string;
  /** The window in tokens (query and text together), when known here. */
  readonly maxTokens: number | null;
  rerank(
    request: RerankRequest,
    options?: CallOptions,
  ): Promise<{ result: RerankResult; timing: Timing }>;
  close(): Promise<void>;
}

export interface RerankerDeps {
  model: CrossEncoderModel;
  /** The admission limit every request shares (429 beyond it). */
  admission: QueueLimiter;
  limits: BatchLimits;
  metrics: Metrics;
  /** Fault injection (tests only): `inference_delay_ms` slows every forward pass. */
  faults?: Faults | null;
}

/** The served reranker: its model, its Batcher and the request path. */
export class Reranker implements RerankService {
  private readonly batcher: Batcher;

  constructor(private readonly deps: RerankerDeps) {
    const { model, faults, limits, metrics } = deps;
    this.batcher = new Batcher(
      faults ? withInferenceFaults(model, faults) : model,
      limits,
      metrics.batchObserver(model.name),
    );
    metrics.rerankTexts.inc({ model: model.name }, 0);
    metrics.rerankTruncated.inc({ model: model.name }, 0);
  }

  get name(): string {
    return this.deps.model.name;
  }

  get model(): CrossEncoderModel {
    return this.deps.model;
  }

  get source(): string {
    return this.deps.model.source;
  }

  get maxTokens(): number {
    return this.deps.model.maxTokens;
  }

  async rerank(
    request: RerankRequest,
    options: CallOptions = {},
  ): Promise<{ result: RerankResult; timing: Timing }> {
    const { model, admission, metrics } = this.deps;
    if (request.model !== undefined && request.model !== model.name) {
      throw new ServiceError(
        'unknown_model',
        `"${request.model}" is not served here; the reranker is "${model.name}"`,
        { field: 'model' },
      );
    }
    const timing: Timing = { tokenizationMs: 0, queueMs: 0, inferenceMs: 0 };
    // Reserved before any work: an overloaded embedder answers 429 without tokenizing.
    const admitted = admission.reserve(request.texts.length);
    try {
      const pairs = await this.tokenize(request, timing, options.signal);
      const done = await this.batcher.submit(pairs, 'api', options.signal, admitted);
      timing.queueMs = done.queueMs;
      timing.inferenceMs = done.inferenceMs;
      const raw = request.rawScores ?? false;
      const ranked = pairs.map((_, index) => {
        const logit = done.vectors[index]?.[0];
        if (logit === undefined || !Number.isFinite(logit)) {
          throw new Error('the reranker produced a non-finite logit'); // the model's fault: 500
        }
        return { index, score: model.score(logit, raw) };
      });
      ranked.sort((a, b) => b.score - a.score || a.index - b.index);
      const truncatedTexts = pairs.filter((p) => p.stats.truncated).length;
      metrics.rerankTexts.inc({ model: model.name }, pairs.length);
      if (truncatedTexts > 0) metrics.rerankTruncated.inc({ model: model.name }, truncatedTexts);
      return { result: { ranked, model: model.name, truncatedTexts }, timing };
    } finally {
      admitted.release(); // what never reached the batcher (a refusal, a cancellation)
    }
  }

  /** Finishes queued and running passes, then releases the model. */
  async close(): Promise<void> {
    await this.batcher.close();
    await this.deps.model.dispose().catch(() => undefined);
  }

  /**
   * The query once, then each pair, yielding to the event loop between chunks so that a large
   * request does not hold up the forward passes of others.
   */
  private async tokenize(
    request: RerankRequest,
    timing: Timing,
    signal: AbortSignal | undefined,
  ): Promise<PairEncoding[]> {
    const { model } = this.deps;
    const truncate = request.truncate ?? true;
    const t0 = performance.now();
    const query = model.encodeQuery(request.query);
    timing.tokenizationMs += performance.now() - t0;
    if (!truncate && query.length + model.pairSpecialTokens >= model.maxTokens) {
      throw new ServiceError(
        'payload_too_large',
        `is ${query.length} tokens: no text fits beside it in the reranker's window of ` +
          `${model.maxTokens}; send truncate: true (the default) to cut the pairs`,
        { field: 'query' },
      );
    }
    const out: PairEncoding[] = [];
    for (let start = 0; start < request.texts.length; start += TOKENIZE_CHUNK) {
      if (start > 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (signal?.aborted) {
          throw new ServiceError('cancelled', 'the request was aborted by its caller');
        }
      }
      const t1 = performance.now();
      request.texts.slice(start, start + TOKENIZE_CHUNK).forEach((text, i) => {
        try {
          out.push(model.pair(query, text, truncate));
        } catch (err) {
          if (err instanceof ServiceError) {
            throw new ServiceError(err.code, err.message, { field: `texts.${start + i}` });
          }
          throw err;
        }
      });
      timing.tokenizationMs += performance.now() - t1;
    }
    return out;
  }
}

/**
 * The tokenizer's template for a pair, read by tokenizing a probe pair whose pieces are known,
 * and checked on a second probe; null when it cannot be read.
 */
function pairTemplate(tokenizer: PairTokenizer): PairTemplate | null {
  const read = (a: string, b: string): PairTemplate | null => {
    const first = tokenizer.encode(a, { add_special_tokens: false });
    const second = tokenizer.encode(b, { add_special_tokens: false });
    const out = tokenizer(a, { text_pair: b, add_special_tokens: true, return_tensor: false });
    const ids = out.input_ids;
    const at = (needle: number[], from: number): number => {
      for (let i = from; i + needle.length <= ids.length; i++) {
        if (needle.every((v, j) => ids[i + j] === v)) return i;
      }
      return -1;
    };
    const i = at(first, 0);
    const j = i < 0 ? -1 : at(second, i + first.length);
    if (first.length === 0 || second.length === 0 || i < 0 || j < 0) return null;
    const tt = out.token_type_ids;
    const type = (k: number, fallback: number) => (tt ? (tt[k] ?? fallback) : fallback);
    return {
      prefix: ids.slice(0, i),
      middle: ids.slice(i + first.length, j),
      suffix: ids.slice(j + second.length),
      types: tt
        ? {
            prefix: type(0, 0),
            first: type(i, 0),
            middle: type(i + first.length, 0),
            second: type(j, 1),
            suffix: type(ids.length - 1, 1),
          }
        : null,
    };
  };
  const template = read('a', 'b');
  if (!template) return null;
  // The template must rebuild another pair exactly, segment ids included.
  const [a, b] = ['Heimdex checks pairs', 'of two texts, token by token'];
  const expected = tokenizer(a, { text_pair: b, add_special_tokens: true, return_tensor: false });
  const first = tokenizer.encode(a, { add_special_tokens: false });
  const second = tokenizer.encode(b, { add_special_tokens: false });
  const ids = [...template.prefix, ...first, ...template.middle, ...second, ...template.suffix];
  const sameIds =
    ids.length === expected.input_ids.length && ids.every((v, k) => v === expected.input_ids[k]);
  if (!sameIds) return null;
  if (template.types && expected.token_type_ids) {
    const t = template.types;
    const types = [
      ...template.prefix.map(() => t.prefix),
      ...first.map(() => t.first),
      ...template.middle.map(() => t.middle),
      ...second.map(() => t.second),
      ...template.suffix.map(() => t.suffix),
    ];
    if (!types.every((v, k) => v === expected.token_type_ids?.[k])) return null;
  }
  return template;
}

/** CrossEncoder's default: config.json's activation_fn when it names one, else sigmoid. */
function activationFromConfig(config: Record<string, unknown>): RerankActivation | null {
  const st = config.sentence_transformers as { activation_fn?: unknown } | undefined;
  const named = st?.activation_fn ?? config.sbert_ce_default_activation_function;
  if (typeof named !== 'string') return 'sigmoid';
  if (/(^|\.)Sigmoid$/.test(named)) return 'sigmoid';
  if (/(^|\.)Identity$/.test(named)) return 'identity';
  return null;
}

/** `min(tokenizer.model_max_length, config.max_position_embeddings)`, ignoring unset values. */
function windowFromModel(tokenizer: PairTokenizer, model: ClassifierModel): number {
  const candidates = [tokenizer.model_max_length, model.config.max_position_embeddings]
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n < 1_000_000);
  return candidates.length > 0 ? Math.min(...candidates) : DEFAULT_MAX_TOKENS;
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** How the reranker's load failures name it and its settings. */
const RERANKER_SOURCE: SourceKind = {
  what: 'reranker',
  nameVar: 'RERANK_MODEL_NAME',
  dirVar: 'RERANK_MODEL_DIR',
  offlineExample: '.',
  otherwise: 'or set RERANK_MODEL_DIR to where the model is.',
  tail: ' Unset RERANK_MODEL_NAME to run without reranking.',
};
