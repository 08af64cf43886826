/**
 * RERANK_BACKEND=tei|cohere: POST /v1/rerank served by a remote rerank server, through the same
 * retries and circuit breaker as remote embeddings (core/remote-http.ts). The route, its
 * validation and its answer are the local reranker's (core/reranker.ts), so the Worker's
 * POST /v1/rerank works unchanged on top.
 *
 * - `tei`: text-embeddings-inference's `POST {base}/rerank` `{query, texts, raw_scores,
 *   return_text, truncate}` → `[{index, score}]`; Heimdex's own embedder serves exactly this at
 *   `POST /v1/rerank` (base `http://embedder:8788/v1`, its service token as the key).
 * - `cohere`: Cohere's `POST {base}/rerank` `{model, query, documents, top_n}` →
 *   `{results: [{index, relevance_score}]}` with a Bearer key (Cohere `https://api.cohere.com/v2`,
 *   Jina, Infinity, vLLM). Scores are the server's relevance scores: `raw_scores` is refused, and
 *   so is `truncate: false` (Cohere's servers cut long documents themselves).
 *
 * A request of more than RERANK_REMOTE_BATCH_SIZE texts is split (TEI's default
 * max_client_batch_size is 32), RERANK_REMOTE_CONCURRENCY parts at a time; a pair's score does not
 * depend on the others, so the parts are merged and ranked here. The servers do not say which
 * pairs they cut to the window, so the truncation metric is not counted for a remote reranker.
 */
import { z } from 'zod';
import type { RemoteRerankConfig } from '../config.js';
import type { QueueLimiter } from './batcher.js';
import { ServiceError, StartupError, shortReason } from './errors.js';
import type { Metrics } from './metrics.js';
import type { RemoteClient } from './remote-http.js';
import type { RerankRequest, RerankResult, RerankService } from './reranker.js';
import type { CallOptions, Timing } from './service.js';

const TeiAnswer = z.array(z.object({ index: z.int().nonnegative(), score: z.number() }));

const CohereAnswer = z.object({
  results: z.array(z.object({ index: z.int().nonnegative(), relevance_score: z.number() })),
});

export interface RemoteRerankerDeps {
  config: RemoteRerankConfig;
  client: RemoteClient;
  /** The admission limit every request shares (429 beyond it). */
  admission: QueueLimiter;
  metrics: Metrics;
}

export class RemoteReranker implements RerankService {
  constructor(private readonly deps: RemoteRerankerDeps) {
    deps.metrics.rerankTexts.inc({ model: deps.config.name }, 0);
  }

  get name(): string {
    return this.deps.config.name;
  }

  get source(): string {
    const { config, client } = this.deps;
    return `${client.url('/rerank')} (${config.protocol}${config.model ? `, model "${config.model}"` : ''})`;
  }

  get maxTokens(): null {
    return null;
  }

  async rerank(
    request: RerankRequest,
    options: CallOptions = {},
  ): Promise<{ result: RerankResult; timing: Timing }> {
    const { config, admission, metrics } = this.deps;
    if (request.model !== undefined && request.model !== config.name) {
      throw new ServiceError(
        'unknown_model',
        `"${request.model}" is not served here; the reranker is "${config.name}"`,
        { field: 'model' },
      );
    }
    if (config.protocol === 'cohere') {
      if (request.rawScores === true) {
        throw new ServiceError(
          'unsupported_option',
          "is not available: this embedder's rerank server (RERANK_BACKEND=cohere) answers relevance scores only",
          { field: 'raw_scores' },
        );
      }
      if (request.truncate === false) {
        throw new ServiceError(
          'unsupported_option',
          "must be true or absent: this embedder's rerank server (RERANK_BACKEND=cohere) always cuts long texts to its window",
          { field: 'truncate' },
        );
      }
    }
    const timing: Timing = { tokenizationMs: 0, queueMs: 0, inferenceMs: 0 };
    // Reserved before any work: an overloaded embedder answers 429 without calling the server.
    const admitted = admission.reserve(request.texts.length);
    try {
      const started = performance.now();
      const scores = new Array<number | undefined>(request.texts.length);
      const parts: number[] = [];
      for (let start = 0; start < request.texts.length; start += config.batchSize) {
        parts.push(start);
      }
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < parts.length) {
          if (options.signal?.aborted) {
            throw new ServiceError('cancelled', 'the request was aborted by its caller');
          }
          const start = parts[next++] as number;
          const texts = request.texts.slice(start, start + config.batchSize);
          for (const { index, score } of await this.call(request, texts)) {
            if (index >= texts.length || scores[start + index] !== undefined) {
              throw this.badAnswer('a score for a text it was not sent');
            }
            if (!Number.isFinite(score))
              throw this.badAnswer('a score that is not a finite number');
            scores[start + index] = score;
          }
        }
      };
      await Promise.all(
        Array.from({ length: Math.min(config.concurrency, parts.length) }, () => worker()),
      );
      timing.inferenceMs = performance.now() - started;
      const missing = scores.findIndex((s) => s === undefined);
      if (missing >= 0) throw this.badAnswer('no score for some of the texts it was sent');
      const ranked = scores.map((score, index) => ({ index, score: score as number }));
      ranked.sort((a, b) => b.score - a.score || a.index - b.index);
      metrics.rerankTexts.inc({ model: config.name }, ranked.length);
      return { result: { ranked, model: config.name, truncatedTexts: 0 }, timing };
    } finally {
      admitted.release();
    }
  }

  /**
   * Scores one warm-up pair, so that a server that cannot be reached or does not speak the
   * protocol stops the start (a StartupError naming the settings to check).
   */
  async check(): Promise<void> {
    const { config } = this.deps;
    try {
      const [scored] = await this.call({ query: 'Heimdex warm-up query', texts: [] }, [
        'Heimdex warm-up text.',
      ]);
      if (scored?.index !== 0 || !Number.isFinite(scored.score)) {
        throw this.badAnswer('no score for its one text');
      }
    } catch (err) {
      throw new StartupError(
        `Reranker "${config.name}" could not be reached through the rerank server at ${config.url} ` +
          `(RERANK_BACKEND=${config.protocol}): ${shortReason(err)}. Check RERANK_REMOTE_URL (the base ` +
          'URL, /rerank is added: e.g. http://tei:8080 or https://api.cohere.com/v2), ' +
          'RERANK_REMOTE_API_KEY and RERANK_REMOTE_MODEL.',
      );
    }
  }

  async close(): Promise<void> {
    return Promise.resolve();
  }

  /** One request to the server: `texts`' scores, by their index in `texts`. */
  private async call(
    request: RerankRequest,
    texts: readonly string[],
  ): Promise<Array<{ index: number; score: number }>> {
    const { config, client } = this.deps;
    const inputs = [request.query, ...texts];
    if (config.protocol === 'tei') {
      return client.post({
        path: '/rerank',
        body: {
          query: request.query,
          texts,
          raw_scores: request.rawScores ?? false,
          return_text: false,
          truncate: request.truncate ?? true,
          ...(config.model === null ? {} : { model: config.model }),
        },
        schema: TeiAnswer,
        inputs,
      });
    }
    const answer = await client.post({
      path: '/rerank',
      body: {
        model: config.model,
        query: request.query,
        documents: texts,
        top_n: texts.length,
        return_documents: false,
      },
      schema: CohereAnswer,
      inputs,
    });
    return answer.results.map((r) => ({ index: r.index, score: r.relevance_score }));
  }

  private badAnswer(what: string): ServiceError {
    return new ServiceError(
      'backend_error',
      `the rerank server at ${this.deps.client.url('/rerank')} answered ${what}`,
      { retryable: false },
    );
  }
}
