/** A small typed client for the public API, used by the end-to-end tests. */
import { mintDevToken } from '../../scripts/lib/token.js';

export interface ApiResult<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export class Api {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  /** A client with a dev token for `org`, at `tenantClaim` (the stack's AUTH_TENANT_CLAIM). */
  static async forOrg(
    baseUrl: string,
    secret: string,
    org: string,
    tenantClaim?: string,
  ): Promise<Api> {
    return new Api(baseUrl, await mintDevToken({ secret, org, tenantClaim }));
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiResult<T>> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: (text ? JSON.parse(text) : null) as T,
    };
  }

  embed(item: { asset_id: string; segment_id: string; text: string; chunking?: unknown }) {
    return this.request<{ job_id: string; asset_id: string; segment_id: string }>(
      'POST',
      '/vectors/embed',
      item,
    );
  }

  job(id: string) {
    return this.request<JobBody>('GET', `/jobs/${id}`);
  }

  search(body: {
    query_text: string;
    limit?: number;
    asset_id?: string;
    segment_id?: string;
    mode?: 'dense' | 'keyword' | 'hybrid';
    group_by?: 'segment' | 'chunk';
    filters?: Record<string, unknown>;
  }) {
    return this.request<SearchBody>('POST', '/vectors/search', body);
  }

  embedBatch(body: {
    asset_id?: string;
    segments: Array<{ asset_id?: string; segment_id: string; text: string }>;
  }) {
    return this.request<{ jobs: BatchJob[] }>('POST', '/vectors/embed/batch', body);
  }

  deletePoint(pointId: string) {
    return this.request<{ deleted: number; cancelled_jobs: number }>(
      'DELETE',
      `/vectors/points/${encodeURIComponent(pointId)}`,
    );
  }

  deleteAsset(assetId: string) {
    return this.request<{ deleted: number; cancelled_jobs: number }>(
      'DELETE',
      `/vectors/assets/${encodeURIComponent(assetId)}`,
    );
  }

  /**
   * A request exactly as given, for hostile-input tests: `body` is sent verbatim, no content type
   * is added, `headers` replace the defaults, and the response body is JSON when it parses (else
   * the text).
   */
  async raw<T = Record<string, unknown>>(
    method: string,
    path: string,
    opts: { body?: string | Uint8Array; headers?: Record<string, string> } = {},
  ): Promise<ApiResult<T>> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    Object.assign(headers, opts.headers);
    const res = await fetch(this.baseUrl + path, { method, headers, body: opts.body });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: body as T };
  }

  async waitForJob(id: string, timeoutMs = 60_000): Promise<JobBody> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const res = await this.job(id);
      if (res.status !== 200) throw new Error(`GET /jobs/${id} → ${res.status}`);
      if (res.body.status === 'SUCCEEDED' || res.body.status === 'FAILED') return res.body;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${res.body.status}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export interface BatchJob {
  job_id: string;
  asset_id: string;
  segment_id: string;
  existing: boolean;
}

/** An RFC 9457 problem document as the Worker writes it (worker/test/problem.ts). */
export type { ProblemBody } from '../../worker/test/problem.js';

export interface JobBody {
  job_id: string;
  status: 'QUEUED' | 'PROCESSING' | 'SUCCEEDED' | 'FAILED';
  attempts: number;
  result: {
    point_id: string;
    /** Points the text was written as (1 unless chunked). */
    chunk_count?: number;
    text_len: number;
    token_count: number;
    truncated: boolean;
    truncated_len: number;
  } | null;
  error: { code: string; message: string } | null;
  created_at: string;
  updated_at: string;
}

export interface SearchBody {
  results: Array<{ point_id: string; score: number; payload: Record<string, unknown> }>;
  query_model: string;
  query_model_ver: string;
  total: number;
}
