/**
 * Client for the embedder's /internal API (and its OpenAI-protocol POST /v1/embeddings),
 * authenticated with the Worker's service credential.
 * Domain errors only: the HTTP route and the queue consumer decide what they mean at their edge.
 */
import type { z } from 'zod';
import {
  DeleteResponse,
  EmbedResponse,
  ModelsResponse,
  SearchResponse,
} from '../../../contract/internal';
import type { DeleteRequest, EmbedItem, SearchRequest } from '../../../contract/internal';
import { EmbeddingsResponse } from '../../../contract/openai';
import type { EmbeddingsRequest } from '../../../contract/openai';
import { RERANK_MODEL_HEADER, RerankResponse } from '../../../contract/rerank';
import type { RerankRequest } from '../../../contract/rerank';
import type { FieldError } from '../../../contract/rules';
import type { Config } from '../env';
import { chunkBySize, jsonBytes } from '../lib/chunk';

export type {
  EmbedItem,
  EmbedItemResult,
  EmbedResponse,
  ModelsResponse as ServedModels,
  SearchHit,
  SearchRequest,
  SearchResponse,
} from '../../../contract/internal';

/**
 * Most JSON bytes in one /internal/embed call: half the embedder's body limit (8 MiB), so a queue
 * batch of long multi-byte texts is split rather than refused.
 */
export const EMBED_CALL_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Splits a queue batch's items into embedder calls of at most `maxItems` items and `maxBytes` of
 * JSON each, in order. An item larger than `maxBytes` on its own travels alone (the embedder
 * answers for it). Calls that run together keep the embedder's batcher fed: while one call's
 * vectors are written and its response travels back, the next call's texts are in the model.
 */
export function chunkEmbedItems(
  items: EmbedItem[],
  maxItems: number,
  maxBytes = EMBED_CALL_MAX_BYTES,
): EmbedItem[][] {
  // +1 for the comma between items; the envelope ({"items":[]}) is far below the margin.
  return chunkBySize(items, maxItems, maxBytes, (item) => jsonBytes(item) + 1);
}

/**
 * The time an embeddings call may take per input: a request of 2,048 texts is more work than the
 * queue consumer's batches, and its client waits for all of it. 100 ms a text is a slow CPU host
 * under load (the embedder does hundreds a second on two cores).
 */
export const EMBEDDINGS_MS_PER_INPUT = 100;

/**
 * The time a rerank call may take per text: each is a pair of up to 512 tokens through a
 * cross-encoder (a pass per pair, where search embeds one query). A 128-token document took ~110 ms
 * on a 2-core CPU host under load (bench/lib/rerank-bench.ts); 250 ms leaves room for longer ones.
 */
export const RERANK_MS_PER_TEXT = 250;

/** The embedder could not be reached, timed out, or answered 5xx/429: try again later. */
export class EmbedderUnavailableError extends Error {
  constructor(
    readonly reason: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(`embedder unavailable: ${reason}`);
    this.name = 'EmbedderUnavailableError';
  }
}

/** The embedder refused the request (4xx other than 429): retrying will not help. */
export class EmbedderRejectedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    /** The fields the embedder's problem named (its `errors`), if any. */
    readonly errors: FieldError[] = [],
  ) {
    super(`embedder rejected the request: ${code}`);
    this.name = 'EmbedderRejectedError';
  }
}

export class EmbedderClient {
  constructor(
    private readonly cfg: Config['embedder'],
    private readonly requestId: string,
  ) {}

  embed(items: EmbedItem[]) {
    return this.call(EmbedResponse, 'POST', '/internal/embed', { items });
  }

  search(req: SearchRequest) {
    return this.call(SearchResponse, 'POST', '/internal/search', req);
  }

  /** Deletes one point or all points of an asset, within the org only. */
  delete(req: DeleteRequest) {
    return this.call(DeleteResponse, 'POST', '/internal/delete', req);
  }

  /**
   * Embeds texts through the embedder's OpenAI-protocol route (POST /v1/embeddings), always as
   * base64 (a quarter of the float JSON's size, and exact). The answer must hold one embedding per
   * input, in order, else it is a bad response. Its timeout grows with the inputs
   * (EMBEDDINGS_MS_PER_INPUT) from EMBEDDER_TIMEOUT_MS up to EMBEDDER_QUEUE_TIMEOUT_MS.
   */
  async embeddings(req: EmbeddingsRequest & { encoding_format: 'base64' }) {
    const inputs = typeof req.input === 'string' ? 1 : req.input.length;
    const timeoutMs = Math.min(
      Math.max(this.cfg.timeoutMs, this.cfg.queueTimeoutMs),
      Math.max(this.cfg.timeoutMs, inputs * EMBEDDINGS_MS_PER_INPUT),
    );
    const res = await this.call(EmbeddingsResponse, 'POST', '/v1/embeddings', req, timeoutMs);
    const inOrder =
      res.data.length === inputs &&
      res.data.every((d, i) => d.index === i && typeof d.embedding === 'string');
    if (!inOrder) throw new EmbedderUnavailableError('bad_response');
    return res;
  }

  /**
   * Reranks texts through the embedder's TEI-protocol route (POST /v1/rerank): each text's index
   * and score, best first, and the reranker's name (its `x-model-id` header). An answer that does
   * not rank every text exactly once, best first, is a bad response. Its timeout grows with the
   * texts (RERANK_MS_PER_TEXT) from EMBEDDER_TIMEOUT_MS up to EMBEDDER_QUEUE_TIMEOUT_MS.
   */
  async rerank(req: RerankRequest): Promise<{ ranked: RerankResponse; model: string }> {
    const timeoutMs = Math.min(
      Math.max(this.cfg.timeoutMs, this.cfg.queueTimeoutMs),
      Math.max(this.cfg.timeoutMs, req.texts.length * RERANK_MS_PER_TEXT),
    );
    let model = '';
    const ranked = await this.call(
      RerankResponse,
      'POST',
      '/v1/rerank',
      req,
      timeoutMs,
      (headers) => (model = headers.get(RERANK_MODEL_HEADER) ?? ''),
    );
    const indexes = new Set(ranked.map((r) => r.index));
    const complete =
      ranked.length === req.texts.length &&
      indexes.size === ranked.length &&
      ranked.every(
        (r, i) => r.index < req.texts.length && (i === 0 || ranked[i - 1]!.score >= r.score),
      );
    if (!complete || model === '') throw new EmbedderUnavailableError('bad_response');
    return { ranked, model };
  }

  /** The models the embedder serves (GET /internal/models). */
  models() {
    return this.call(ModelsResponse, 'GET', '/internal/models');
  }

  async ready(): Promise<boolean> {
    try {
      const res = await fetch(this.cfg.url + '/readyz', {
        signal: AbortSignal.timeout(Math.min(this.cfg.timeoutMs, 5000)),
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }

  /**
   * One /internal call. A 2xx answer is parsed with the contract's response schema: an answer
   * that does not fit it is the embedder misbehaving (EmbedderUnavailableError `bad_response`).
   */
  private async call<S extends z.ZodType>(
    schema: S,
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = this.cfg.timeoutMs,
    /** Reads a 2xx answer's headers. */
    onHeaders?: (headers: Headers) => void,
  ): Promise<z.output<S>> {
    let res: Response;
    try {
      res = await fetch(this.cfg.url + path, {
        method,
        headers: {
          authorization: `Bearer ${this.cfg.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          'x-request-id': this.requestId,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const reason = err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'network';
      throw new EmbedderUnavailableError(reason);
    }
    if (res.ok) {
      onHeaders?.(res.headers);
      const parsed = schema.safeParse(await res.json().catch(() => undefined));
      if (!parsed.success) throw new EmbedderUnavailableError('bad_response');
      return parsed.data;
    }
    let code = `http_${res.status}`;
    let detail = '';
    let errors: FieldError[] = [];
    try {
      const problem = (await res.json()) as { code?: unknown; detail?: unknown; errors?: unknown };
      if (typeof problem.code === 'string') code = problem.code;
      if (typeof problem.detail === 'string') detail = problem.detail;
      if (Array.isArray(problem.errors)) errors = problem.errors.filter(isFieldError);
    } catch {
      // not a problem document
    }
    if (res.status === 429 || res.status >= 500) {
      const ra = Number(res.headers.get('retry-after'));
      throw new EmbedderUnavailableError(code, Number.isFinite(ra) && ra > 0 ? ra : undefined);
    }
    throw new EmbedderRejectedError(res.status, code, detail, errors);
  }
}

function isFieldError(e: unknown): e is FieldError {
  const f = e as Partial<Record<keyof FieldError, unknown>> | null;
  return (
    typeof f === 'object' &&
    f !== null &&
    typeof f.field === 'string' &&
    typeof f.pointer === 'string' &&
    typeof f.message === 'string'
  );
}
