/**
 * Domain errors of the embedder. They know nothing about HTTP: the HTTP edge (http/errors.ts)
 * maps each code to a status. Messages never contain input text.
 */
export type ServiceErrorCode =
  /** The request names a model this embedder does not serve. */
  | 'unknown_model'
  /** The text has no token the model knows, so it has no direction to embed. */
  | 'empty_embedding'
  /** The model is not loaded (starting up or shutting down). */
  | 'model_not_ready'
  /**
   * A model this embedder may serve could not be loaded (retry later), or produces vectors of
   * another dimension than the store holds (it can never be served here).
   */
  | 'model_unavailable'
  /** The caller went away (the HTTP request was aborted) before its work was done. */
  | 'cancelled'
  /**
   * An embeddings request asks for vectors of another size than the model's own (`dimensions`):
   * Heimdex does not shorten vectors.
   */
  | 'unsupported_dimensions'
  /** A keyword search of a store without a keyword index (a Qdrant collection older than it). */
  | 'keyword_index_unavailable'
  /** The vector store failed or could not be reached. */
  | 'store_unavailable'
  /** Too many requests are waiting for the model. */
  | 'overloaded'
  /** A text is over a limit the request asked not to cut it to (rerank with truncate: false). */
  | 'payload_too_large'
  /** POST /v1/rerank on an embedder without a reranker (RERANK_MODEL_NAME unset). */
  | 'rerank_not_configured'
  /**
   * A remote model server (EMBEDDING_BACKEND=openai, RERANK_BACKEND=tei|cohere) is down, timed
   * out, kept failing after the retries, or its circuit breaker is open: retry after Retry-After.
   */
  | 'backend_unavailable'
  /**
   * A remote model server refused the request (a 4xx other than 429) or answered something that
   * is not its protocol: a configuration problem (URL, key, model name, window), not the caller's.
   */
  | 'backend_error'
  /** A request option the configured backend cannot honour (e.g. raw_scores from Cohere). */
  | 'unsupported_option';

export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly code: ServiceErrorCode,
    message: string,
    readonly options: {
      retryAfterSeconds?: number;
      /** Whether the same request may succeed later (used for per-item results). */
      retryable?: boolean;
      /**
       * The request field the error is about, as a dotted path (`model`, `input.3`); the message
       * then says what is wrong with it without naming it. The HTTP edge names it in `errors`.
       */
      field?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * A start-up failure with a message meant for the operator: what went wrong and how to fix it.
 * main.ts prints the message (no stack trace) and exits non-zero.
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** The first line of an error's message, bounded, for "…: <short reason>" messages. */
export function shortReason(err: unknown, max = 300): string {
  const raw = err instanceof Error ? err.message : String(err);
  const line =
    raw.split('\n').find((l) => l.trim() !== '') ??
    (err instanceof Error ? err.name : 'unknown error');
  const trimmed = line.trim().replace(/\.$/, '');
  return trimmed.length > max ? `${trimmed.slice(0, max - 1)}…` : trimmed;
}
