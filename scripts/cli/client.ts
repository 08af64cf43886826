/**
 * The CLI's HTTP client for the public API: JSON in and out, bearer token, and retries with
 * exponential backoff (full jitter) on 429 and 5xx, honouring `Retry-After`. A connection failure
 * before the server has ever answered is reported at once (nothing is listening there); after
 * that, it is retried like a 503. Errors are CliErrors with one-line messages.
 */
import { ApiError, CliError } from './errors.js';
import type { Problem } from './errors.js';

export interface ClientOptions {
  baseUrl: URL;
  token?: string;
  /** Retries after the first attempt (0 = none). */
  retries?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  /** Called before each retry wait (the progress display counts them). */
  onRetry?: (info: { status: number | 'network'; attempt: number; delayMs: number }) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

const RETRY_AFTER_CAP_MS = 120_000;

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent/invalid. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Math.min(Number(value) * 1000, RETRY_AFTER_CAP_MS);
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), RETRY_AFTER_CAP_MS);
}

/** Full-jitter exponential backoff: uniform in [0, min(max, base·2^attempt)]. */
export function backoffMs(attempt: number, base: number, max: number, random: () => number) {
  return Math.round(random() * Math.min(max, base * 2 ** attempt));
}

export const isRetryableStatus = (status: number) => status === 429 || status >= 500;

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
      return 'connection reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connection timed out';
    default:
      if (err instanceof Error && err.name === 'TimeoutError') return 'request timed out';
      return cause?.message ?? (err instanceof Error ? err.message : String(err));
  }
}

export class ApiClient {
  private answered = false;
  private readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly opts: ClientOptions) {
    this.retries = opts.retries ?? 4;
    this.baseDelayMs = opts.baseDelayMs ?? 500;
    this.maxDelayMs = opts.maxDelayMs ?? 30_000;
    this.sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = opts.random ?? Math.random;
  }

  get origin(): string {
    return this.opts.baseUrl.href.replace(/\/+$/, '');
  }

  private url(path: string): string {
    return this.origin + path;
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const payload = body === undefined ? undefined : JSON.stringify(body);

    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(this.url(path), {
          method,
          headers,
          body: payload,
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 60_000),
        });
      } catch (err) {
        const reason = networkReason(err);
        if (!this.answered || attempt >= this.retries) {
          throw new CliError(
            `cannot reach the Heimdex API at ${this.origin}: ${reason}` +
              (this.answered
                ? ` (after ${attempt + 1} attempts)`
                : ' (is it running? check --url)'),
          );
        }
        await this.wait('network', attempt, undefined);
        continue;
      }
      this.answered = true;
      if (isRetryableStatus(res.status) && attempt < this.retries) {
        await res.body?.cancel();
        await this.wait(res.status, attempt, retryAfterMs(res.headers.get('retry-after')));
        continue;
      }
      return this.parse<T>(method, path, res);
    }
  }

  private async wait(status: number | 'network', attempt: number, retryAfter?: number) {
    const delayMs =
      retryAfter ?? backoffMs(attempt, this.baseDelayMs, this.maxDelayMs, this.random);
    this.opts.onRetry?.({ status, attempt: attempt + 1, delayMs });
    await this.sleep(delayMs);
  }

  private async parse<T>(method: string, path: string, res: Response): Promise<ApiResponse<T>> {
    const type = res.headers.get('content-type') ?? '';
    const text = await res.text();
    const json = /^application\/([a-z.+-]*\+)?json\b/i.test(type);
    let data: unknown = undefined;
    if (json && text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = undefined;
      }
    }
    if (res.ok) {
      if (data === undefined) {
        throw new CliError(
          `unexpected answer from ${this.origin} to ${method} ${path}: ${res.status} ${type || 'no content type'} (is --url a Heimdex API?)`,
        );
      }
      return { status: res.status, body: data as T, headers: res.headers };
    }
    const problem: Problem =
      data && typeof data === 'object' ? (data as Problem) : { detail: `HTTP ${res.status}` };
    if (res.status === 401) {
      throw new CliError(
        `the API rejected the token (401 ${problem.code ?? 'unauthorized'}: ${problem.detail ?? 'no detail'}); ` +
          (this.opts.token
            ? 'mint a fresh one with `heimdex token --org <org>`'
            : 'pass --token or set HEIMDEX_TOKEN'),
      );
    }
    if (!json && res.status === 404) {
      throw new CliError(
        `${method} ${path} is not found at ${this.origin} (HTTP 404, ${type || 'no content type'}): is --url a Heimdex API?`,
      );
    }
    throw new ApiError(res.status, problem);
  }
}
