import { openAiError } from '../../contract/openai';
import type { OpenAiError } from '../../contract/openai';
import { problemBody } from '../../contract/problem-body';
import { problemTable } from '../../contract/problems';
import type { ProblemBody } from '../../contract/problems';
import type { FieldError } from '../../contract/rules';
export type { FieldError };

/**
 * One error type with a stable code, and one code→status table. `app.onError`, the zod hook, the
 * not-found/405 handlers and the OpenAPI error responses all use this table, so the documented
 * codes are the thrown codes.
 */
export const ERROR_CODES = problemTable({
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  unprocessable: { status: 422, title: 'Unprocessable content' },
  dependency_unavailable: { status: 503, title: 'A dependency is unavailable' },
  rerank_not_configured: { status: 404, title: 'Reranking not configured' },
  misconfigured: { status: 500, title: 'Service misconfigured' },
});

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: {
      errors?: FieldError[];
      retryAfterSeconds?: number;
      /** Extra response headers, e.g. the WWW-Authenticate challenge of a 401. */
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
  }
}

/**
 * At most this many field errors are listed in a problem body (and field names in its detail);
 * `errors_omitted` says how many more there were. A body of 100,000 unknown keys must not
 * produce a response many times its size.
 */
export const MAX_LISTED_ERRORS = 50;
export const MAX_DETAIL_FIELDS = 10;

/** "invalid request: a, b, c and 17 more" — the detail line for a list of field errors. */
export function invalidRequestDetail(errors: readonly FieldError[]): string {
  const named = errors.slice(0, MAX_DETAIL_FIELDS).map((e) => e.field);
  const more = errors.length - named.length;
  return `invalid request: ${named.join(', ')}${more > 0 ? ` and ${more} more` : ''}`;
}

/** A problem body; on the OpenAI-protocol routes (/v1/*) it also carries OpenAI's `error`. */
export type Problem = ProblemBody<ErrorCode> & { error?: OpenAiError };

export function problemResponse(
  err: AppError,
  requestId: string,
  instance?: string,
  options: {
    /** Add OpenAI's `error` object (contract/openai.ts), for the /v1/* routes. */
    openai?: boolean;
  } = {},
): Response {
  const headers = new Headers({
    'content-type': 'application/problem+json',
    'x-request-id': requestId,
  });
  for (const [name, value] of Object.entries(err.options.headers ?? {})) headers.set(name, value);
  if (err.options.retryAfterSeconds !== undefined) {
    headers.set('retry-after', String(err.options.retryAfterSeconds));
  }
  const body: Problem = problemBody(ERROR_CODES, {
    code: err.code,
    detail: err.message,
    requestId,
    instance,
    errors: err.options.errors,
    maxErrors: MAX_LISTED_ERRORS,
  });
  if (options.openai) body.error = openAiError(body);
  return new Response(JSON.stringify(body), {
    status: err.status,
    headers,
  });
}

export { toPointer } from '../../contract/rules';
