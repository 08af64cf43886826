/** Schemas shared by several routes, and the OpenAPI error responses generated from ERROR_CODES. */
import { createRoute, z } from '@hono/zod-openapi';
import * as rules from '../../../contract/rules';
import {
  ChunkWindows,
  DEFAULT_CHUNK_OVERLAP_TOKENS,
  MAX_CHUNK_TOKENS,
  MIN_CHUNK_TOKENS,
} from '../../../contract/internal';
import type { Chunking as ChunkingValue } from '../../../contract/internal';
import { MAX_TEXT_BYTES } from '../limits';
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

/**
 * How a long text is embedded (contract/internal.ts `Chunking`), documented. A union: a value of
 * neither form gets CHUNKING_ERROR; an object with a bad field gets that field's error
 * (fieldErrors below).
 */
const CHUNKING_ERROR = `must be "truncate" or an object {max_tokens?, overlap_tokens?}`;

const ChunkWindowsDoc = documented(ChunkWindows, {
  description:
    `Split a text longer than the model's window into chunks of at most \`max_tokens\` model ` +
    `tokens (${MIN_CHUNK_TOKENS}–${MAX_CHUNK_TOKENS}; default and cap: the model's window, e.g. ` +
    `256 for all-MiniLM-L6-v2), consecutive chunks sharing \`overlap_tokens\` tokens (default ` +
    `${DEFAULT_CHUNK_OVERLAP_TOKENS}; less than max_tokens). Each chunk is a point of the segment.`,
  example: { max_tokens: 128, overlap_tokens: 16 },
});

export const Chunking = z
  .union([z.literal('truncate'), ChunkWindowsDoc], { error: CHUNKING_ERROR })
  .openapi('Chunking', {
    description:
      'How a text longer than the model\'s window is embedded: `"truncate"` embeds its first ' +
      'window only (one point, the behaviour before chunking); an object (`{}` for the defaults) ' +
      "splits it into overlapping windows, one point each. Unset: the organisation's setting " +
      '(PUT /vectors/settings), else windows with the defaults. Part of the idempotency key: ' +
      'the same text with another chunking is a new job.',
    example: { max_tokens: 128, overlap_tokens: 16 },
  });

/**
 * Chunking or null (an organisation's setting), as one flat union: a union of Chunking and null
 * would nest the unions' errors, and `.nullable()` loses the null in the OpenAPI document.
 */
export const NullableChunking = z.union([z.literal('truncate'), ChunkWindowsDoc, z.null()], {
  error: (issue) => `${issue.input === undefined ? 'required: ' : ''}${CHUNKING_ERROR}, or null`,
});

/** A text to embed as the request wrote it, and as the ingest service takes it. */
export function ingestItem(
  segment: {
    segment_id: string;
    text: string;
    model?: string;
    model_ver?: string;
    chunking?: ChunkingValue;
  },
  assetId: string,
  path: string,
  /** The batch's chunking, for a segment that names none. */
  batchChunking?: ChunkingValue,
): IngestItem {
  const { segment_id, text, model, model_ver } = segment;
  const chunking = segment.chunking ?? batchChunking;
  return {
    assetId,
    segmentId: segment_id,
    text,
    model,
    modelVer: model_ver,
    ...(chunking !== undefined ? { chunking } : {}),
    path,
  };
}

/**
 * Text to search for. Its length limit (MAX_TEXT_CHARS, in characters) is configuration, so routes
 * check it after parsing and answer 413; the body limit bounds it before that.
 */
export const Text = documented(rules.Text);

/**
 * Text to embed: as Text, and at most MAX_TEXT_BYTES bytes of UTF-8, the most one queue message
 * carries (limits.ts; 413 naming the field beyond).
 */
export const EmbedText = documented(rules.Text, {
  description:
    'The text to embed: non-empty, not blank, no NUL, well-formed Unicode. At most ' +
    'MAX_TEXT_CHARS characters (Unicode code points; 32,000 unless the deployment sets ' +
    `otherwise) and at most ${MAX_TEXT_BYTES} bytes of UTF-8 (what one queue message carries: ` +
    'Cloudflare Queues take 128 KB a message, and the text travels encrypted and base64-encoded). ' +
    'A longer text is refused with 413 naming the field, never truncated. Texts longer than the ' +
    "model's window are chunked (see `chunking`).",
  example: 'A large furry dog is running in the park',
});

export const charLength = rules.charLength;

const utf8 = new TextEncoder();

/**
 * 413 naming the field when a text to embed is longer than MAX_TEXT_BYTES bytes of UTF-8: the
 * most one queue message carries (limits.ts).
 */
export function checkTextBytes(text: string, field: string): void {
  // Cheap bound first: a UTF-16 code unit is at most 3 bytes of UTF-8.
  if (text.length * 3 <= MAX_TEXT_BYTES) return;
  const bytes = utf8.encode(text).byteLength;
  if (bytes > MAX_TEXT_BYTES) {
    throw new AppError(
      'payload_too_large',
      `${field} is ${bytes} bytes of UTF-8; at most ${MAX_TEXT_BYTES} bytes fit in one queue message`,
      {
        errors: [
          {
            field,
            pointer: '/' + field.split('.').join('/'),
            message: `at most ${MAX_TEXT_BYTES} bytes of UTF-8 (got ${bytes})`,
          },
        ],
      },
    );
  }
}

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
    error: z
      .object({
        message: z.string(),
        type: z.string(),
        param: z.string().nullable(),
        code: z.string(),
      })
      .optional()
      .openapi({
        description:
          "On the OpenAI-compatible routes (/v1/*) only: the same problem as OpenAI's error " +
          'object, which OpenAI SDKs read their message from. `message` names the fields and ' +
          "what is wrong with each; `param` is the first field in OpenAI's notation (`input[3]`); " +
          '`code` is the problem code; `type` is invalid_request_error, authentication_error, ' +
          'rate_limit_error or server_error by status.',
      }),
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

type Issue = z.core.$ZodIssue;

/**
 * An issue of a union (chunking) whose input had the shape of one option and failed inside it
 * (`{"max_tokens": 64.5}`): that option's issues, at their full paths, so that the problem names
 * `chunking.max_tokens`, not `chunking`. A value of no option's shape keeps the union's issue.
 */
function unwrapUnion(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union') return [issue];
  const inside = issue.errors.filter(
    (branch) =>
      branch.length > 0 &&
      branch.every(
        (i) => i.path.length > 0 || i.code === 'unrecognized_keys' || i.code === 'custom',
      ),
  );
  if (inside.length !== 1) return [issue];
  return inside[0]!.flatMap((i) => unwrapUnion({ ...i, path: [...issue.path, ...i.path] }));
}

/** The field errors of a failed parse (contract/rules.ts), a union's named by its option's. */
export function fieldErrors(error: z.ZodError): rules.FieldError[] {
  return rules.fieldErrors(new z.ZodError(error.issues.flatMap(unwrapUnion)));
}

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
export function operation<M extends 'get' | 'post' | 'put' | 'delete', P extends string>(
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
