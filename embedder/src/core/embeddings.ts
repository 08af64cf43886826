/**
 * Embeddings on demand (POST /v1/embeddings, OpenAI's protocol): texts in, unit vectors out,
 * nothing stored and nothing of the texts kept, logged or counted beyond their number. The
 * vectors are exactly the ones search embeds a query with (EmbedKind `query`: the same
 * tokenization, truncation to the window, instruction prefix and normalisation), made in the
 * model's Batcher at `api` priority: after search queries, before ingestion. Admission is the
 * service's QueueLimiter: a request that does not fit is refused (429) before any work.
 */
import type { QueueLimiter } from './batcher.js';
import { ServiceError } from './errors.js';
import type { Metrics } from './metrics.js';
import { toOutcome } from './model.js';
import type { Encoding } from './model.js';
import type { EmbeddingBackend } from './backend.js';
import type { ModelPool, ServedModel } from './models.js';
import type { CallOptions, Timing } from './service.js';

export interface EmbeddingsRequest {
  /** One text, or several (one vector each, in order). Each is non-blank (the edge validates). */
  input: string | readonly string[];
  model: string;
  /** Refused unless it is the model's own dimension. */
  dimensions?: number;
}

export interface EmbeddingsResult {
  /** Unit-length vectors, one per input, in order. */
  vectors: Float32Array[];
  model: string;
  /** The model's dimension. */
  dim: number;
  /** The inputs' tokens (special tokens excluded), each input counted whole. */
  promptTokens: number;
  /** Inputs longer than the model's window, embedded as their first window. */
  truncatedInputs: number;
}

export interface EmbeddingsDeps {
  models: ModelPool<EmbeddingBackend>;
  /** The admission limit every request shares (429 beyond it). */
  admission: QueueLimiter;
  metrics: Metrics;
}

/** Inputs tokenized between two yields to the event loop (so forward passes keep being fed). */
const TOKENIZE_CHUNK = 64;

export class Embeddings {
  constructor(private readonly deps: EmbeddingsDeps) {
    // Every served model has its series from the start (a scrape shows 0, not nothing).
    for (const model of deps.models.names) {
      deps.metrics.apiEmbeddingsInputs.inc({ model }, 0);
      deps.metrics.apiEmbeddingsTruncated.inc({ model }, 0);
    }
  }

  async embed(
    request: EmbeddingsRequest,
    options: CallOptions = {},
  ): Promise<{ result: EmbeddingsResult; timing: Timing }> {
    const { models, admission, metrics } = this.deps;
    const texts = typeof request.input === 'string' ? [request.input] : request.input;
    const field = (i: number) => (typeof request.input === 'string' ? 'input' : `input.${i}`);
    const name = request.model;
    if (!models.serves(name)) {
      throw new ServiceError(
        'unknown_model',
        `"${name}" is not served here; served: ${models.names.map((n) => `"${n}"`).join(', ')}`,
        { field: 'model' },
      );
    }
    const timing: Timing = { tokenizationMs: 0, queueMs: 0, inferenceMs: 0 };
    // Reserved before any work: an overloaded embedder answers 429 without tokenizing.
    const admitted = admission.reserve(texts.length);
    try {
      const served = await models.get(name);
      const dim = served.model.dim;
      if (request.dimensions !== undefined && request.dimensions !== dim) {
        throw new ServiceError(
          'unsupported_dimensions',
          `must be ${dim} or absent: model "${name}" makes ${dim}-dimensional vectors, and ` +
            'Heimdex does not shorten them',
          { field: 'dimensions' },
        );
      }
      const encodings = await this.tokenize(served, texts, timing, options.signal);
      const blank = encodings.findIndex((e) => e.stats.token_count === 0);
      if (blank >= 0) throw nothingToEmbed(field(blank));
      const done = await served.batcher.submit(encodings, 'api', options.signal, admitted);
      timing.queueMs = done.queueMs;
      timing.inferenceMs = done.inferenceMs;
      const vectors = encodings.map((encoding, i) => {
        const outcome = toOutcome(done.vectors[i], encoding.stats);
        if (outcome.ok) return outcome.vector;
        if (outcome.code === 'empty_embedding') throw nothingToEmbed(field(i));
        throw new Error(outcome.message); // a non-finite vector: the model's fault, a 500
      });
      const truncatedInputs = encodings.filter((e) => e.stats.truncated).length;
      metrics.apiEmbeddingsInputs.inc({ model: name }, texts.length);
      if (truncatedInputs > 0) metrics.apiEmbeddingsTruncated.inc({ model: name }, truncatedInputs);
      return {
        result: {
          vectors,
          model: name,
          dim,
          promptTokens: encodings.reduce((n, e) => n + e.stats.token_count, 0),
          truncatedInputs,
        },
        timing,
      };
    } finally {
      admitted.release(); // what never reached the batcher (a refusal, a failed load)
    }
  }

  /**
   * Tokenizes each text once as a search query (truncated to the window), yielding to the event
   * loop between chunks so that a large request does not hold up the forward passes of others.
   */
  private async tokenize(
    served: ServedModel,
    texts: readonly string[],
    timing: Timing,
    signal: AbortSignal | undefined,
  ): Promise<Encoding[]> {
    const out: Encoding[] = [];
    for (let start = 0; start < texts.length; start += TOKENIZE_CHUNK) {
      if (start > 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (signal?.aborted) {
          throw new ServiceError('cancelled', 'the request was aborted by its caller');
        }
      }
      const t0 = performance.now();
      for (const text of texts.slice(start, start + TOKENIZE_CHUNK)) {
        out.push(served.model.tokenize(text, 'query'));
      }
      timing.tokenizationMs += performance.now() - t0;
    }
    return out;
  }
}

/** An input without a token the model knows: it has no direction to embed (422). */
function nothingToEmbed(field: string): ServiceError {
  return new ServiceError('empty_embedding', 'has no token the model knows: nothing to embed', {
    field,
  });
}
