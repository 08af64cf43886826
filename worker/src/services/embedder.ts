/**
 * Client for the embedder's /internal API, authenticated with the Worker's service credential.
 * Domain errors only: the HTTP route and the queue consumer decide what they mean at their edge.
 */
import type { Config } from '../env';
import { chunkBySize, jsonBytes } from '../lib/chunk';

export interface EmbedItem {
  job_id: string;
  seq: number;
  org_id: string;
  asset_id: string;
  segment_id: string;
  text: string;
  model: string;
  model_ver: string;
}

export type EmbedItemResult =
  | {
      job_id: string;
      status: 'ok';
      point_id: string;
      applied: boolean;
      text_len: number;
      token_count: number;
      truncated: boolean;
      truncated_len: number;
    }
  | { job_id: string; status: 'error'; code: string; retryable: boolean; message: string };

export interface EmbedResponse {
  results: EmbedItemResult[];
  model: string;
  model_ver: string;
}

export interface SearchRequest {
  org_id: string;
  query_text: string;
  limit: number;
  asset_id?: string;
  segment_id?: string;
  model?: string;
  filters?: {
    asset_ids?: string[];
    segment_ids?: string[];
    truncated?: boolean;
    embedded_after?: string;
    embedded_before?: string;
  };
}

export interface ServedModels {
  default_model: string;
  models: Array<{ name: string; model_ver: string }>;
}

export interface SearchHit {
  point_id: string;
  score: number;
  payload: Record<string, unknown>;
}

export interface SearchResponse {
  results: SearchHit[];
  query_model: string;
  query_model_ver: string;
  total: number;
}

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

  embed(items: EmbedItem[]): Promise<EmbedResponse> {
    return this.call<EmbedResponse>('POST', '/internal/embed', { items });
  }

  search(req: SearchRequest): Promise<SearchResponse> {
    return this.call<SearchResponse>('POST', '/internal/search', req);
  }

  /** Deletes one point or all points of an asset, within the org only. */
  delete(req: { org_id: string; point_id: string } | { org_id: string; asset_id: string }) {
    return this.call<{ deleted: number }>('POST', '/internal/delete', req);
  }

  /** The models the embedder serves (GET /internal/models). */
  models(): Promise<ServedModels> {
    return this.call<ServedModels>('GET', '/internal/models');
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

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
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
    if (res.ok) return (await res.json()) as T;
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
