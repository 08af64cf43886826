/**
 * Client for the embedder's /internal API, authenticated with the Worker's service credential.
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
        signal: AbortSignal.timeout(this.cfg.timeoutMs),
      });
    } catch (err) {
      const reason = err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'network';
      throw new EmbedderUnavailableError(reason);
    }
    if (res.ok) {
      const parsed = schema.safeParse(await res.json().catch(() => undefined));
      if (!parsed.success) throw new EmbedderUnavailableError('bad_response');
      return parsed.data;
    }
    let code = `http_${res.status}`;
    let detail = '';
    try {
      const problem = (await res.json()) as { code?: unknown; detail?: unknown };
      if (typeof problem.code === 'string') code = problem.code;
      if (typeof problem.detail === 'string') detail = problem.detail;
    } catch {
      // not a problem document
    }
    if (res.status === 429 || res.status >= 500) {
      const ra = Number(res.headers.get('retry-after'));
      throw new EmbedderUnavailableError(code, Number.isFinite(ra) && ra > 0 ? ra : undefined);
    }
    throw new EmbedderRejectedError(res.status, code, detail);
  }
}
