/**
 * Calls to a remote model server (EMBEDDING_BACKEND=openai: core/remote-embedding.ts;
 * RERANK_BACKEND=tei|cohere: core/remote-rerank.ts), with the failure handling both share:
 *
 * - a timeout per attempt (…_TIMEOUT_MS);
 * - retries (…_MAX_RETRIES) on 429, 5xx, timeouts and network errors, waiting an exponential
 *   backoff with jitter, or the server's `Retry-After` (seconds or an HTTP date) when it sends
 *   one; no wait is longer than …_RETRY_MAX_MS, and a server that asks for a longer one is not
 *   retried: the call fails at once as `backend_unavailable` carrying the server's Retry-After;
 * - no retry on any other 4xx: `backend_error` (502) naming the status and what the server said,
 *   unless its message quotes an input (then it is withheld);
 * - a circuit breaker: after …_BREAKER_THRESHOLD consecutive failed attempts (5xx, timeout,
 *   network; a 429 or 4xx is an answer from a live server and resets the count) it opens for
 *   …_BREAKER_COOLDOWN_MS, during which every call fails at once as `backend_unavailable` (503
 *   with Retry-After: the cool-down left) instead of queueing on a dead server; after the
 *   cool-down one call goes through as a probe (half-open): its success closes the breaker, its
 *   failure opens it again.
 *
 * Metrics (core/metrics.ts) count attempts by outcome, retries and the breaker's state, labelled
 * by the backend kind only. Nothing of the inputs reaches a log line, a metric or an error.
 */
import type { z } from 'zod';
import { ServiceError } from './errors.js';

export interface RemoteSettings {
  /** The base URL (an OpenAI SDK's `baseURL`: `https://api.openai.com/v1`, `http://tei:8080`). */
  url: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  apiKey: string | null;
  /** One attempt's limit (connect, send, answer). */
  timeoutMs: number;
  /** Attempts after the first, on 429, 5xx, timeout and network errors. */
  maxRetries: number;
  /** The longest wait before a retry (backoff or Retry-After). */
  retryMaxMs: number;
  /** Consecutive failed attempts that open the breaker. */
  breakerThreshold: number;
  /** How long an open breaker fails calls fast before it lets a probe through. */
  breakerCooldownMs: number;
}

/** What an attempt came to, as the metrics label it. */
export type RemoteOutcome =
  | 'ok'
  | 'rate_limited'
  | 'server_error'
  | 'client_error'
  | 'timeout'
  | 'network_error'
  | 'invalid_response'
  | 'breaker_open';

export const REMOTE_OUTCOMES: readonly RemoteOutcome[] = [
  'ok',
  'rate_limited',
  'server_error',
  'client_error',
  'timeout',
  'network_error',
  'invalid_response',
  'breaker_open',
];

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Hooks for metrics; counts, outcomes and durations only. */
export interface RemoteObserver {
  attempt(outcome: RemoteOutcome, seconds: number): void;
  retry(): void;
  breaker(state: BreakerState): void;
}

/** The first wait before a retry; each further retry doubles it (capped, jittered). */
const BACKOFF_BASE_MS = 100;
/** How much of a server's error message is reported. */
const SERVER_MESSAGE_MAX = 300;
/** A server message that contains this many characters of an input in a row quotes it. */
const QUOTE_WINDOW = 12;

/**
 * A circuit breaker over consecutive failures: closed → open after `threshold` of them → after
 * `cooldownMs`, half-open: one probe call at a time; the probe's success closes it, its failure
 * opens it again.
 */
export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private current: BreakerState = 'closed';
  private probing = false;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly onChange: (state: BreakerState) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get state(): BreakerState {
    return this.current;
  }

  /**
   * Whether a call may go through now; else the milliseconds until the breaker lets a probe
   * through (0 while another probe runs: it is about to decide).
   */
  admit(): { ok: true; probe: boolean } | { ok: false; retryInMs: number } {
    if (this.current === 'closed') return { ok: true, probe: false };
    if (this.current === 'open') {
      const left = this.openedAt + this.cooldownMs - this.now();
      if (left > 0) return { ok: false, retryInMs: left };
      this.set('half_open');
    }
    if (this.probing) return { ok: false, retryInMs: 0 };
    this.probing = true;
    return { ok: true, probe: true };
  }

  /** A call (or attempt) that reached a live server: the count starts again. */
  success(probe: boolean): void {
    if (probe) this.probing = false;
    this.failures = 0;
    if (this.current !== 'closed') this.set('closed');
  }

  /** A failed attempt (5xx, timeout, network error). */
  failure(probe: boolean): void {
    if (probe) this.probing = false;
    this.failures++;
    if (this.current === 'half_open' || this.failures >= this.threshold) {
      this.openedAt = this.now();
      this.set('open');
    }
  }

  private set(state: BreakerState): void {
    if (state === this.current) return;
    this.current = state;
    this.onChange(state);
  }
}

export interface RemoteClientOptions {
  /** How error messages name the server: "the embedding server", "the rerank server". */
  what: string;
  /** The settings' variable prefix for fix-it hints: EMBEDDING_REMOTE, RERANK_REMOTE. */
  envPrefix: string;
  observer?: RemoteObserver;
  /** Waits (tests shorten nothing: the real clock; injectable for unit tests). */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** One POST: its path under the base URL, its JSON body, and the schema of a good answer. */
export interface RemotePost<T> {
  path: string;
  body: unknown;
  schema: z.ZodType<T>;
  /** The texts the body carries: a server message that quotes one of them is withheld. */
  inputs: readonly string[];
}

/** A failed attempt, before the retry decision. */
interface AttemptFailure {
  outcome: Exclude<RemoteOutcome, 'ok' | 'breaker_open'>;
  retryable: boolean;
  /** Whether it counts against the breaker (the server is down or broken, not just busy). */
  breaks: boolean;
  /** The server's Retry-After, in ms (uncapped), when it sent one. */
  retryAfterMs: number | null;
  message: string;
}

/** JSON over HTTP to one remote model server, with retries and a circuit breaker. */
export class RemoteClient {
  readonly breaker: CircuitBreaker;
  private readonly base: string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly settings: RemoteSettings,
    private readonly options: RemoteClientOptions,
  ) {
    this.base = settings.url.replace(/\/+$/, '');
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.breaker = new CircuitBreaker(
      settings.breakerThreshold,
      settings.breakerCooldownMs,
      (state) => options.observer?.breaker(state),
      options.now,
    );
    options.observer?.breaker('closed');
  }

  /** The URL of `path` under the base URL (for messages). */
  url(path: string): string {
    return `${this.base}${path}`;
  }

  /**
   * POSTs `request.body` and returns the parsed answer. Throws `backend_unavailable` (retryable,
   * with Retry-After) when the server is down, keeps failing or the breaker is open, and
   * `backend_error` when it refuses the request or answers outside its protocol.
   */
  async post<T>(request: RemotePost<T>): Promise<T> {
    const { observer } = this.options;
    for (let attempt = 0; ; attempt++) {
      const admitted = this.breaker.admit();
      if (!admitted.ok) {
        observer?.attempt('breaker_open', 0);
        throw new ServiceError(
          'backend_unavailable',
          `${this.options.what} at ${this.base} is failing; its circuit breaker is open (calls fail ` +
            'fast until a probe succeeds): retry later',
          { retryable: true, retryAfterSeconds: Math.max(1, Math.ceil(admitted.retryInMs / 1000)) },
        );
      }
      const started = performance.now();
      const result = await this.attempt(request);
      const seconds = (performance.now() - started) / 1000;
      if (result.ok) {
        this.breaker.success(admitted.probe);
        observer?.attempt('ok', seconds);
        return result.value;
      }
      const failure = result.failure;
      observer?.attempt(failure.outcome, seconds);
      if (failure.breaks) this.breaker.failure(admitted.probe);
      else this.breaker.success(admitted.probe);

      if (!failure.retryable) {
        throw new ServiceError('backend_error', failure.message, { retryable: false });
      }
      const wait = this.retryWait(attempt, failure.retryAfterMs);
      const retryAfterSeconds = Math.max(
        1,
        Math.ceil((failure.retryAfterMs ?? this.backoff(attempt)) / 1000),
      );
      if (attempt >= this.settings.maxRetries || wait === null) {
        const tries = attempt + 1;
        throw new ServiceError(
          'backend_unavailable',
          `${failure.message} (${tries} attempt${tries === 1 ? '' : 's'}` +
            (wait === null
              ? `; it asks to wait ${retryAfterSeconds} s, over ${this.options.envPrefix}_RETRY_MAX_MS)`
              : ')'),
          { retryable: true, retryAfterSeconds },
        );
      }
      observer?.retry();
      await this.sleep(wait);
    }
  }

  /**
   * How long to wait before retry `attempt + 1`: the server's Retry-After (null when it is over
   * the cap: not worth waiting for here), else the capped exponential backoff with equal jitter.
   */
  private retryWait(attempt: number, retryAfterMs: number | null): number | null {
    if (retryAfterMs !== null) {
      return retryAfterMs > this.settings.retryMaxMs ? null : retryAfterMs;
    }
    const ceiling = this.backoff(attempt);
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  private backoff(attempt: number): number {
    return Math.min(this.settings.retryMaxMs, BACKOFF_BASE_MS * 2 ** attempt);
  }

  private async attempt<T>(
    request: RemotePost<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; failure: AttemptFailure }> {
    const fail = (failure: AttemptFailure) => ({ ok: false as const, failure });
    const where = `${this.options.what} at ${this.url(request.path)}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.url(request.path), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(this.settings.apiKey ? { authorization: `Bearer ${this.settings.apiKey}` } : {}),
        },
        body: JSON.stringify(request.body),
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      return fail({
        outcome: timedOut ? 'timeout' : 'network_error',
        retryable: true,
        breaks: true,
        retryAfterMs: null,
        message: timedOut
          ? `${where} did not answer within ${this.settings.timeoutMs} ms (${this.options.envPrefix}_TIMEOUT_MS)`
          : `${where} could not be reached: ${networkReason(err)}`,
      });
    }
    if (res.ok) {
      let parsed: ReturnType<typeof request.schema.safeParse> | null = null;
      try {
        parsed = request.schema.safeParse(JSON.parse(text));
      } catch {
        parsed = null;
      }
      if (parsed?.success) return { ok: true, value: parsed.data };
      return fail({
        outcome: 'invalid_response',
        retryable: false,
        breaks: false,
        retryAfterMs: null,
        message:
          `${where} answered ${res.status} with a body that is not the expected protocol` +
          (parsed && !parsed.success ? ` (${schemaIssue(parsed.error)})` : ' (not JSON)') +
          `: check ${this.options.envPrefix}_URL`,
      });
    }
    const said = serverMessage(text, request.inputs);
    const status = `${res.status}${said ? `: ${said}` : ''}`;
    if (res.status === 429 || res.status >= 500) {
      return fail({
        outcome: res.status === 429 ? 'rate_limited' : 'server_error',
        retryable: true,
        breaks: res.status !== 429,
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after'), Date.now()),
        message: `${where} answered ${status}`,
      });
    }
    const hint =
      res.status === 401 || res.status === 403
        ? `; check ${this.options.envPrefix}_API_KEY`
        : res.status === 404
          ? `; check ${this.options.envPrefix}_URL and ${this.options.envPrefix}_MODEL`
          : '';
    return fail({
      outcome: 'client_error',
      retryable: false,
      breaks: false,
      retryAfterMs: null,
      message: `${where} refused the request: ${status}${hint}`,
    });
  }
}

/**
 * A Retry-After header in milliseconds: delay-seconds, or an HTTP date (its distance from `now`,
 * at least 0); null when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/**
 * What an error body says (OpenAI's `error.message`, TEI's `error`, Cohere's `message`, an RFC
 * 9457 `detail`, else the text), bounded, on one line; withheld when it quotes one of `inputs`.
 */
export function serverMessage(body: string, inputs: readonly string[]): string {
  let message = body;
  try {
    const parsed = JSON.parse(body) as unknown;
    if (typeof parsed === 'string') message = parsed;
    const json = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<
      string,
      unknown
    >;
    const error = json.error;
    const candidates = [
      typeof error === 'object' && error !== null
        ? (error as Record<string, unknown>).message
        : error,
      json.message,
      json.detail,
    ];
    const found = candidates.find((c): c is string => typeof c === 'string' && c.trim() !== '');
    if (found !== undefined) message = found;
  } catch {
    // not JSON: the text itself
  }
  message = message.replace(/\s+/g, ' ').trim();
  if (message.length > SERVER_MESSAGE_MAX) message = `${message.slice(0, SERVER_MESSAGE_MAX - 1)}…`;
  if (message === '') return '';
  if (quotesAnInput(message, inputs)) {
    return '(the server’s message is withheld: it quotes the input)';
  }
  return message;
}

/**
 * Whether `message` holds QUOTE_WINDOW characters in a row of an input (whitespace and case
 * folded), or the whole of a shorter one: one pass over each input against the message's windows.
 */
function quotesAnInput(message: string, inputs: readonly string[]): boolean {
  const fold = (s: string) => s.replace(/\s+/g, ' ').toLowerCase();
  const haystack = fold(message);
  const windows = new Set<string>();
  for (let i = 0; i + QUOTE_WINDOW <= haystack.length; i++) {
    windows.add(haystack.slice(i, i + QUOTE_WINDOW));
  }
  for (const input of inputs) {
    const text = fold(input).trim();
    if (text.length < QUOTE_WINDOW) {
      if (text.length >= 4 && haystack.includes(text)) return true;
      continue;
    }
    for (let i = 0; i + QUOTE_WINDOW <= text.length; i++) {
      if (windows.has(text.slice(i, i + QUOTE_WINDOW))) return true;
    }
  }
  return false;
}

/** A network failure's reason: undici's cause code (ECONNREFUSED, ENOTFOUND …) when it has one. */
function networkReason(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (cause && typeof cause.code === 'string') return cause.code;
  return err instanceof Error ? err.message : 'unknown error';
}

/** The first schema problem of a server's answer: its path and message (no values). */
function schemaIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'unexpected shape';
  return `${issue.path.length > 0 ? issue.path.join('.') : 'body'}: ${issue.message}`;
}
