import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ZodError } from 'zod';
import { isOpenAiPath, openAiError } from '../../../contract/openai.js';
import { problemBody } from '../../../contract/problem-body.js';
import { problemTable } from '../../../contract/problems.js';
import type { ProblemBody } from '../../../contract/problems.js';
import { fieldErrors, toPointer } from '../../../contract/rules.js';
import type { FieldError } from '../../../contract/rules.js';
import { ServiceError } from '../core/errors.js';
import { StoreError } from '../store/types.js';
import type { AppEnv } from './context.js';

/**
 * Every error code the embedder answers with, and its status. The error handler, the validation
 * helper, the auth middleware and the body limit all go through this one table.
 */
export const PROBLEMS = problemTable({
  unknown_model: { status: 400, title: 'Unknown model' },
  unsupported_dimensions: { status: 400, title: 'Unsupported dimensions' },
  empty_embedding: { status: 422, title: 'Text has nothing to embed' },
  overloaded: { status: 429, title: 'Too many requests' },
  // nginx's "client closed request": the caller aborted, nobody reads this answer, but the
  // request log line says what happened.
  cancelled: { status: 499 as number as ContentfulStatusCode, title: 'Client closed request' },
  model_not_ready: { status: 503, title: 'Embedding model not ready' },
  model_unavailable: { status: 503, title: 'Embedding model unavailable' },
  rerank_not_configured: { status: 404, title: 'Reranking not configured' },
  keyword_index_unavailable: { status: 409, title: 'No keyword index' },
  store_unavailable: { status: 503, title: 'Vector store unavailable' },
  backend_unavailable: { status: 503, title: 'Model server unavailable' },
  backend_error: { status: 502, title: 'Model server error' },
  unsupported_option: { status: 400, title: 'Unsupported option' },
  not_ready: { status: 503, title: 'Not ready' },
});

export type ProblemCode = keyof typeof PROBLEMS;

export type Problem = ProblemBody<ProblemCode>;

/** An error answered as an RFC 9457 problem. `detail` must never contain input text. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ProblemCode,
    detail: string,
    readonly options: { errors?: FieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail);
  }
}

/**
 * Answers with the problem. On the OpenAI-protocol routes (/v1/*) the body also carries OpenAI's
 * `error` object (contract/openai.ts), which OpenAI SDKs read their message from.
 */
export function problemResponse(c: Context<AppEnv>, err: ApiError): Response {
  c.set('problemCode', err.code);
  const body: Problem = problemBody(PROBLEMS, {
    code: err.code,
    detail: err.message,
    requestId: c.get('requestId'),
    errors: err.options.errors,
  });
  const out = isOpenAiPath(c.req.path) ? { ...body, error: openAiError(body) } : body;
  return c.body(JSON.stringify(out), PROBLEMS[err.code].status, {
    'content-type': 'application/problem+json',
    ...err.options.headers,
  });
}

/** Maps a domain error to its problem; anything unexpected is a 500 that reveals nothing. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ServiceError) {
    const { retryAfterSeconds: retryAfter, field } = err.options;
    return new ApiError(err.code, field === undefined ? err.message : `${field}: ${err.message}`, {
      ...(retryAfter === undefined ? {} : { headers: { 'retry-after': String(retryAfter) } }),
      ...(field === undefined
        ? {}
        : {
            errors: [{ field, pointer: toPointer(field.split('.')), message: err.message }],
          }),
    });
  }
  return new ApiError(
    'internal',
    'an unexpected error occurred; see the embedder log for this request id',
  );
}

/** The codes of remote model server failures, whose messages are safe to log. */
const REMOTE_CODES: ReadonlySet<string> = new Set(['backend_unavailable', 'backend_error']);

/** `app.onError`: answers with the problem and logs the failure (names and codes only). */
export function handleError(err: Error, c: Context<AppEnv>): Response {
  const apiError = toApiError(err);
  const status = PROBLEMS[apiError.code].status;
  if (status >= 500) {
    const cause = err instanceof ServiceError ? err.cause : err;
    c.get('log').error('request failed', {
      code: apiError.code,
      error: cause instanceof Error ? cause.name : typeof cause,
      // A store error describes the backend (ids, dimensions, addresses), never request text,
      // so its reason is logged, as is a remote model server's failure (core/remote-http.ts
      // withholds any server message that quotes an input); other messages could quote an
      // input and are left out.
      reason:
        cause instanceof StoreError
          ? cause.message
          : err instanceof ServiceError && REMOTE_CODES.has(err.code)
            ? err.message
            : undefined,
    });
  }
  return problemResponse(c, apiError);
}

export function validationError(error: ZodError, where: string): ApiError {
  // An unknown key is reported at the key itself, so the caller sees which field to drop.
  const errors = fieldErrors(error);
  const first = errors[0];
  const detail = first
    ? `${where} is invalid: ${first.field}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`
    : `${where} is invalid`;
  return new ApiError('validation_failed', detail, { errors });
}
