/**
 * `POST /v1/embeddings`: OpenAI's embeddings protocol (contract/openai.ts), for clients and SDKs
 * that speak it (`baseURL: <api>/v1`, the tenant's JWT as the API key). Synchronous and stateless:
 * the texts go to the embedder's own OpenAI-protocol route, the vectors come back, nothing is
 * stored or logged. The vectors are the ones /vectors/search embeds a query with.
 */
import { createRoute } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import {
  EMBEDDINGS_MAX_BODY_BYTES,
  EMBEDDINGS_MAX_INPUT_BYTES,
  EmbeddingsRequest as EmbeddingsRequestWire,
  EmbeddingsResponse as EmbeddingsResponseWire,
  MAX_EMBEDDING_INPUTS,
  base64ToFloat32,
} from '../../../contract/openai';
import { AppError } from '../errors';
import type { ErrorCode } from '../errors';
import { jsonBytes } from '../lib/chunk';
import type { AppBindings } from '../middleware/context';
import { EmbedderRejectedError } from '../services/embedder';
import {
  BODY_ERRORS,
  authenticated,
  checkTextLength,
  documented,
  embedderProblem,
  json,
  jsonBody,
  operation,
} from './common';

export const EmbeddingsRequest = documented(EmbeddingsRequestWire).openapi('EmbeddingsRequest', {
  description:
    "OpenAI's embeddings request. Unknown fields are refused (400 naming them), as OpenAI does.",
});

export const EmbeddingsResponse = documented(EmbeddingsResponseWire).openapi('EmbeddingsResponse', {
  description:
    "OpenAI's embeddings response: one unit-length embedding per input, in input order, and the " +
    "usage. `usage.truncated_inputs` is Heimdex's extension (OpenAI clients ignore it): how many " +
    "inputs were longer than the model's window and were truncated to it.",
});

const DESCRIPTION =
  `Embeds up to ${MAX_EMBEDDING_INPUTS} texts with one of the models the embedder serves, through its dynamic ` +
  'batching (after search queries, before ingestion), and returns the vectors: exactly the ones ' +
  '`POST /vectors/search` embeds a query with. Stateless: the texts are used and forgotten ' +
  '(never stored, logged or put in a job). Point an OpenAI client at it with `baseURL` ' +
  "`<api>/v1` and the tenant's JWT as the API key. Each text: at most MAX_TEXT_CHARS characters " +
  `(413 naming \`input[i]\`); all of them: at most ${EMBEDDINGS_MAX_INPUT_BYTES} bytes of JSON ` +
  `(413 naming \`input\`). A text longer than the model's window is truncated to its first ` +
  'window, as ingestion with chunking "truncate" does; `usage.truncated_inputs` counts them. ' +
  "Errors are problem+json with OpenAI's `error` object beside the problem members. " +
  '`Server-Timing` reports the embedder call.';

export const embeddingsRoute = createRoute({
  summary: 'Embed texts (OpenAI-compatible, stateless)',
  description: DESCRIPTION,
  ...operation('post', '/v1/embeddings', 'createEmbeddings', 'openai'),
  ...authenticated(
    [...BODY_ERRORS, 'unprocessable', 'dependency_unavailable'],
    jsonBody(EmbeddingsRequest),
    { 200: json('One embedding per input, in input order', EmbeddingsResponse) },
  ),
});

/**
 * The body limit of /v1/* (instead of the API's 1 MiB): up to 2,048 texts. Beyond it, 413 naming
 * `input`, the only field that can be that large.
 */
export const openAiBodyLimit = bodyLimit({
  maxSize: EMBEDDINGS_MAX_BODY_BYTES,
  onError: () => {
    throw new AppError('payload_too_large', `the body exceeds ${EMBEDDINGS_MAX_BODY_BYTES} bytes`, {
      errors: [
        {
          field: 'input',
          pointer: '/input',
          message: `the request is over ${EMBEDDINGS_MAX_BODY_BYTES} bytes: send fewer or shorter inputs`,
        },
      ],
    });
  },
});

/** 413 naming `input` when the inputs' JSON is over EMBEDDINGS_MAX_INPUT_BYTES. */
function checkInputBytes(input: string | string[]): void {
  const bytes = jsonBytes(input);
  if (bytes <= EMBEDDINGS_MAX_INPUT_BYTES) return;
  throw new AppError(
    'payload_too_large',
    `input is ${bytes} bytes of JSON; at most ${EMBEDDINGS_MAX_INPUT_BYTES} bytes of input per request`,
    {
      errors: [
        {
          field: 'input',
          pointer: '/input',
          message: `at most ${EMBEDDINGS_MAX_INPUT_BYTES} bytes of JSON in all (got ${bytes}): send fewer or shorter inputs`,
        },
      ],
    },
  );
}

/** The embedder's refusals the client can fix, by status: the same problem, from the Worker. */
const REFUSALS: Record<number, ErrorCode> = {
  400: 'validation_failed',
  413: 'payload_too_large',
  422: 'unprocessable',
};

/**
 * Awaits the embedder's answer. Its refusals (unknown model, dimensions, an input without a known
 * token) name fields of the request the Worker forwarded as it came, so they pass through with
 * their fields; unavailability is 503 as for search (embedderProblem).
 */
async function fromEmbeddings<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    const code = err instanceof EmbedderRejectedError ? REFUSALS[err.status] : undefined;
    if (err instanceof EmbedderRejectedError && code !== undefined) {
      throw new AppError(code, err.detail || `the embedder refused the request (${err.code})`, {
        errors: err.errors,
      });
    }
    throw embedderProblem(err);
  }
}

export function registerOpenAi(app: OpenAPIHono<AppBindings>): void {
  app.openapi(embeddingsRoute, async (c) => {
    const body = c.req.valid('json');
    const { input } = body;
    const texts = typeof input === 'string' ? [input] : input;
    texts.forEach((text, i) =>
      checkTextLength(
        text,
        c.var.config.maxTextChars,
        typeof input === 'string' ? 'input' : `input.${i}`,
      ),
    );
    checkInputBytes(input);
    const started = Date.now();
    const res = await fromEmbeddings(
      c.var.embedder().embeddings({
        input,
        model: body.model,
        encoding_format: 'base64',
        ...(body.dimensions === undefined || body.dimensions === null
          ? {}
          : { dimensions: body.dimensions }),
      }),
    );
    c.header('server-timing', `embedder;dur=${Date.now() - started}`, { append: true });
    const base64 = body.encoding_format === 'base64';
    return c.json(
      {
        object: 'list' as const,
        data: res.data.map((d) => ({
          object: 'embedding' as const,
          index: d.index,
          // The embedder answers in base64 (exact float32 bytes): passed on, or decoded.
          embedding: base64 ? d.embedding : Array.from(base64ToFloat32(d.embedding as string)),
        })),
        model: res.model,
        usage: res.usage,
      },
      200,
    );
  });
}
