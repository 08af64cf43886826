/** Schemas shared by several routes, and the OpenAPI error responses generated from ERROR_CODES. */
import { createRoute, z } from '@hono/zod-openapi';
import * as rules from '../../../contract/rules';
import { requireAuth } from '../middleware/auth';
import { AppError, ERROR_CODES, MAX_LISTED_ERRORS } from '../errors';
import { EmbedderRejectedError, EmbedderUnavailableError } from '../services/embedder';
import type { ErrorCode } from '../errors';
import type { IngestItem } from '../services/ingest';

/**
 * A contract schema (contract/rules.ts, plain zod) with OpenAPI metadata. zod copies prototype
 * methods onto each schema when it is created, so a schema made before @hono/zod-openapi extended
 * zod has no `.openapi` of its own: this calls the extension on it, which returns a new schema
 * that has one (and carries `meta`).
 */
export function documented<T extends z.ZodType>(
  schema: T,
  meta: string | { description?: string; example?: unknown } = {},
): T {
  return (z.ZodType.prototype.openapi as (this: T, m: typeof meta) => T).call(schema, meta);
}

/** Client-chosen identifiers (contract/rules.ts), documented. */
export const Id = documented(rules.Id, {
  description:
    '1–256 characters of well-formed Unicode, no control characters, not "." or "..". ' +
    'In a URL path, percent-encode it (encodeURIComponent).',
});

export const ModelName = documented(rules.ModelName);
export const ModelVer = documented(rules.ModelVer);

/** The optional model choice of a text to embed (POST /vectors/embed and each batch segment). */
export const MODEL_FIELDS = { model: ModelName.optional(), model_ver: ModelVer.optional() };

/** A text to embed as the request wrote it, and as the ingest service takes it. */
export function ingestItem(
  segment: { segment_id: string; text: string; model?: string; model_ver?: string },
  assetId: string,
  path: string,
): IngestItem {
  const { segment_id, text, model, model_ver } = segment;
  return { assetId, segmentId: segment_id, text, model, modelVer: model_ver, path };
}

/**
 * Text to embed. Its length limit (MAX_TEXT_CHARS, in characters) is configuration, so routes check
 * it after parsing and answer 413; the body limit bounds it before that.
 */
export const Text = documented(rules.Text);

export const charLength = rules.charLength;

/** 413 naming the field when a text is longer than MAX_TEXT_CHARS characters. */
export function checkTextLength(text: string, max: number, field: string): void {
  if (charLength(text) > max) {
    throw new AppError('payload_too_large', `${field} exceeds ${max} characters`, {
      errors: [
        { field, pointer: '/' + field.split('.').join('/'), message: `at most ${max} characters` },
      ],
    });
  }
}

/**
 * The API error for a failed embedder call: unavailable (down, timed out, 5xx, 429) is 503 with
 * Retry-After; a refusal the client can fix is 400/422 naming its field. Anything else is the
 * Worker's own bug (500).
 */
export function embedderProblem(err: unknown): unknown {
  if (err instanceof EmbedderUnavailableError) {
    return new AppError('dependency_unavailable', 'the embedder is unavailable; retry later', {
      retryAfterSeconds: err.retryAfterSeconds ?? 2,
    });
  }
  if (err instanceof EmbedderRejectedError) {
    if (err.code === 'unknown_model') {
      return new AppError('validation_failed', 'unknown model', {
        errors: [{ field: 'model', pointer: '/model', message: 'this model is not served' }],
      });
    }
    if (err.code === 'keyword_index_unavailable') {
      return new AppError('unprocessable', 'this deployment has no keyword index', {
        errors: [
          {
            field: 'mode',
            pointer: '/mode',
            message:
              'the vector store has no keyword index (its collection predates it); use mode "dense"',
          },
        ],
      });
    }
    if (err.code === 'empty_embedding') {
      return new AppError('unprocessable', 'query_text contains no known tokens', {
        errors: [{ field: 'query_text', pointer: '/query_text', message: 'no known tokens' }],
      });
    }
  }
  return err;
}

/** Awaits an embedder call, throwing its API error (embedderProblem) when it fails. */
export async function fromEmbedder<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw embedderProblem(err);
  }
}

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    detail: z.string(),
    instance: z.string().optional(),
    request_id: z.string(),
    errors: z
      .array(z.object({ field: z.string(), pointer: z.string(), message: z.string() }))
      .max(MAX_LISTED_ERRORS)
      .optional(),
    errors_omitted: z
      .number()
      .int()
      .positive()
      .optional()
      .openapi({ description: `field errors left out: at most ${MAX_LISTED_ERRORS} are listed` }),
  })
  .openapi('Problem');

/** Any route can fail with 500: an unexpected error, or a misconfigured Worker. */
export const SERVER_ERRORS: ErrorCode[] = ['internal', 'misconfigured'];

/** OpenAPI responses for the given error codes (plus SERVER_ERRORS), from the one code→status table. */
export function errorResponses(codes: ErrorCode[]) {
  const out: Record<
    number,
    { description: string; content: Record<string, { schema: typeof ProblemSchema }> }
  > = {};
  for (const code of new Set([...codes, ...SERVER_ERRORS])) {
    const { status, title } = ERROR_CODES[code];
    const prev = out[status];
    out[status] = {
      description: prev ? `${prev.description}; ${title} (${code})` : `${title} (${code})`,
      content: { 'application/problem+json': { schema: ProblemSchema } },
    };
  }
  return out;
}

/** Every authenticated route: a bad token, or (AUTH_PROVIDER=jwks) the identity provider down. */
export const AUTH_ERRORS: ErrorCode[] = ['unauthorized', 'dependency_unavailable'];
export const BODY_ERRORS: ErrorCode[] = [
  'validation_failed',
  'malformed_json',
  'payload_too_large',
  'unsupported_media_type',
];

export const fieldErrors = rules.fieldErrors;

/** Texts to embed: a bad body, or the database or the queue down. */
export const INGEST_ERRORS: ErrorCode[] = [...BODY_ERRORS, 'dependency_unavailable'];

/** A lookup by an id in the path: a malformed id (400), or none of the caller's (404). */
export const LOOKUP_ERRORS: ErrorCode[] = ['validation_failed', 'not_found'];

/** What a lookup found, or a 404 (`${what} not found`) when the caller's organisation has none. */
export function found<T>(row: T | null | undefined, what: string): T {
  if (!row) throw new AppError('not_found', `${what} not found`);
  return row;
}

/** Every authenticated route: a bearer JWT, verified before the handler runs. */
export const AUTHENTICATED = {
  security: [{ bearerAuth: [] }],
  middleware: [requireAuth] as [typeof requireAuth],
};

/** A required JSON request body. */
export function jsonBody<S extends z.ZodType>(schema: S) {
  return { body: { content: { 'application/json': { schema } }, required: true } };
}

/** A JSON response. */
export function json<S extends z.ZodType>(description: string, schema: S) {
  return { description, content: { 'application/json': { schema } } };
}

/** A self-contained HTML page response. */
export function htmlPage(description: string) {
  return { description, content: { 'text/html': { schema: z.string() } } };
}

/** The name of an operation in the OpenAPI document: its method, path, operationId and tag. */
export function operation<M extends 'get' | 'post' | 'delete', P extends string>(
  method: M,
  path: P,
  operationId: string,
  tag: string,
) {
  return { method, path, operationId, tags: [tag] };
}

/**
 * The rest of an authenticated operation: the bearer-token security and middleware, its request,
 * and its responses — `ok`, then the problem responses of AUTH_ERRORS, `errors` and SERVER_ERRORS.
 */
export function authenticated<Req extends object, Ok extends object>(
  errors: ErrorCode[],
  request: Req,
  ok: Ok,
) {
  return {
    ...AUTHENTICATED,
    request,
    responses: { ...ok, ...errorResponses([...AUTH_ERRORS, ...errors]) },
  };
}

/** What a page is, for the OpenAPI document. */
export interface PageDoc {
  summary: string;
  description: string;
}

/** A public HTML page: `GET path`, tagged `pages`, that can only fail with SERVER_ERRORS. */
export function pageRoute<P extends string>(path: P, operationId: string, doc: PageDoc) {
  return createRoute({
    ...operation('get', path, operationId, 'pages'),
    summary: doc.summary,
    responses: { 200: htmlPage(doc.description), ...errorResponses([]) },
  });
}
