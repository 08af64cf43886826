/**
 * `POST /v1/rerank`: reranks a query's candidate documents with the embedder's cross-encoder, in
 * Cohere's shape (`{query, documents, top_n?, return_documents?, model?}` →
 * `{results: [{index, relevance_score, document?}], model}`, best first), which TEI- and
 * Cohere-style clients speak. Synchronous and stateless: the texts go to the embedder's
 * POST /v1/rerank and are forgotten (never stored, logged or put in a job); the documents a
 * client asks back are its own request's, never a copy that travelled.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import {
  MAX_RERANK_DOCUMENTS,
  RERANK_MAX_BODY_BYTES,
  RERANK_MAX_INPUT_BYTES,
} from '../../../contract/rerank';
import { AppError } from '../errors';
import type { FieldError } from '../errors';
import { jsonBytes } from '../lib/chunk';
import type { AppBindings } from '../middleware/context';
import { EmbedderRejectedError } from '../services/embedder';
import {
  BODY_ERRORS,
  ModelName,
  Text,
  authenticated,
  checkTextLength,
  embedderProblem,
  json,
  jsonBody,
  operation,
} from './common';

export const RERANK_PATH = '/v1/rerank';

export const RerankRequest = z
  .object({
    query: Text.openapi({
      description:
        'The search query the documents are scored against: non-empty, not blank, at most ' +
        'MAX_TEXT_CHARS characters (413 naming `query`).',
      example: 'what causes the seasons on earth',
    }),
    documents: z
      .array(Text)
      .min(1)
      .max(MAX_RERANK_DOCUMENTS)
      .openapi({
        description:
          `1 to ${MAX_RERANK_DOCUMENTS} candidate texts (e.g. the texts of a search's results, ` +
          'which the client keeps: Heimdex stores none). Each: non-empty, not blank, at most ' +
          `MAX_TEXT_CHARS characters (413 naming \`documents.i\`); all: at most ` +
          `${RERANK_MAX_INPUT_BYTES} bytes of JSON with the query (413 naming \`documents\`). A ` +
          "query and document longer than the reranker's window together (512 tokens for MS " +
          "MARCO MiniLM) are cut as sentence-transformers' CrossEncoder cuts them (longest first).",
        example: [
          "The tilt of the Earth's axis causes the seasons.",
          'Bananas are yellow fruit rich in potassium.',
        ],
      }),
    top_n: z.number().int().min(1).optional().openapi({
      description: 'Return only the best `top_n` results (default: all of them).',
    }),
    return_documents: z.boolean().optional().openapi({
      description: "Add each result's document (`{text}`), as the request sent it.",
      default: false,
    }),
    model: ModelName.optional().openapi({
      description:
        "The deployment's reranker (its RERANK_MODEL_NAME, e.g. ms-marco-minilm-l6-v2). " +
        'Optional: any other name is refused (400 naming `model`).',
    }),
  })
  .strict()
  .openapi('RerankRequest');

export const RerankResponse = z
  .object({
    results: z.array(
      z.object({
        index: z.number().int().nonnegative().openapi({
          description: "The document's index in the request's `documents`.",
        }),
        relevance_score: z.number().openapi({
          description:
            "The reranker's score for the pair, higher is more relevant: for MS MARCO " +
            "cross-encoders the sigmoid of the model's logit, in (0, 1), as sentence-transformers' " +
            'CrossEncoder.predict gives it.',
        }),
        document: z
          .object({ text: z.string() })
          .optional()
          .openapi({ description: 'With return_documents: the document as it was sent.' }),
      }),
    ),
    model: z.string().openapi({ description: 'The reranker that scored the documents.' }),
  })
  .openapi('RerankResponse');

const DESCRIPTION =
  `Scores up to ${MAX_RERANK_DOCUMENTS} documents against a query with the deployment's ` +
  "cross-encoder and returns them best first (Cohere's and TEI's rerank shape). Reranking " +
  "needs the candidates' texts, and Heimdex keeps none, so the client sends them: typically " +
  'the texts of a `POST /vectors/search` page, reranked. Stateless: the texts are used for one ' +
  'forward pass and forgotten (never stored, logged or put in a job). 404 ' +
  '`rerank_not_configured` when the deployment runs without a reranker. Problems also carry ' +
  "OpenAI's `error` object, as on every /v1 route. `Server-Timing` reports the embedder call.";

export const rerankRoute = createRoute({
  summary: 'Rerank documents against a query (cross-encoder, stateless)',
  description: DESCRIPTION,
  ...operation('post', RERANK_PATH, 'rerank', 'rerank'),
  ...authenticated(
    [...BODY_ERRORS, 'rerank_not_configured', 'dependency_unavailable'],
    jsonBody(RerankRequest),
    { 200: json('The documents, best first', RerankResponse) },
  ),
});

const tooLarge = (field: string, message: string): FieldError[] => [
  { field, pointer: `/${field}`, message },
];

/** The body limit of POST /v1/rerank (instead of the API's 1 MiB): 413 naming `documents`. */
export const rerankBodyLimit = bodyLimit({
  maxSize: RERANK_MAX_BODY_BYTES,
  onError: () => {
    throw new AppError('payload_too_large', `the body exceeds ${RERANK_MAX_BODY_BYTES} bytes`, {
      errors: tooLarge(
        'documents',
        `the request is over ${RERANK_MAX_BODY_BYTES} bytes: send fewer or shorter documents`,
      ),
    });
  },
});

/** 413 naming `documents` when the query's and documents' JSON is over RERANK_MAX_INPUT_BYTES. */
function checkInputBytes(query: string, documents: string[]): void {
  // Cheap bound first: a UTF-16 unit is at most 6 bytes of JSON (a \u escape), plus the quotes
  // and commas: most requests never pay for serialising their texts twice.
  const units = documents.reduce((n, d) => n + d.length + 3, query.length + 4);
  if (units * 6 <= RERANK_MAX_INPUT_BYTES) return;
  const bytes = jsonBytes(query) + jsonBytes(documents);
  if (bytes <= RERANK_MAX_INPUT_BYTES) return;
  throw new AppError(
    'payload_too_large',
    `the query and documents are ${bytes} bytes of JSON; at most ${RERANK_MAX_INPUT_BYTES} bytes per request`,
    {
      errors: tooLarge(
        'documents',
        `at most ${RERANK_MAX_INPUT_BYTES} bytes of JSON with the query (got ${bytes}): send fewer or shorter documents`,
      ),
    },
  );
}

/** The embedder's request fields, as this route's (`texts.3` → `documents.3`). */
const publicField = (field: string) => field.replace(/^texts(?=\.|$)/, 'documents');

/**
 * Awaits the embedder's ranking. No reranker there: 404 `rerank_not_configured`. Its refusals the
 * client can fix (another reranker than the served one) pass through with their fields named as
 * this route names them; unavailability is 503 as for search (embedderProblem).
 */
async function fromReranker<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof EmbedderRejectedError && err.code === 'rerank_not_configured') {
      throw new AppError(
        'rerank_not_configured',
        'reranking is not enabled on this deployment (its embedder has no RERANK_MODEL_NAME)',
      );
    }
    if (err instanceof EmbedderRejectedError && (err.status === 400 || err.status === 413)) {
      const errors = err.errors.map((e) => ({
        ...e,
        field: publicField(e.field),
        pointer: `/${publicField(e.field).split('.').join('/')}`,
      }));
      throw new AppError(
        err.status === 413 ? 'payload_too_large' : 'validation_failed',
        errors.length > 0
          ? `invalid request: ${errors.map((e) => e.field).join(', ')}`
          : 'the reranker refused the request',
        { errors },
      );
    }
    throw embedderProblem(err);
  }
}

export function registerRerank(app: OpenAPIHono<AppBindings>): void {
  app.openapi(rerankRoute, async (c) => {
    const body = c.req.valid('json');
    const { maxTextChars } = c.var.config;
    // A text of at most maxTextChars UTF-16 units has at most as many characters: counted only
    // when it may be over.
    const check = (text: string, field: string) =>
      text.length > maxTextChars && checkTextLength(text, maxTextChars, field);
    check(body.query, 'query');
    body.documents.forEach((d, i) => check(d, `documents.${i}`));
    checkInputBytes(body.query, body.documents);
    const started = Date.now();
    const { ranked, model } = await fromReranker(
      c.var.embedder().rerank({
        query: body.query,
        texts: body.documents,
        truncate: true,
        ...(body.model === undefined ? {} : { model: body.model }),
      }),
    );
    c.header('server-timing', `embedder;dur=${Date.now() - started}`, { append: true });
    const top = body.top_n === undefined ? ranked : ranked.slice(0, body.top_n);
    return c.json(
      {
        results: top.map(({ index, score }) => ({
          index,
          relevance_score: score,
          ...(body.return_documents ? { document: { text: body.documents[index]! } } : {}),
        })),
        model,
      },
      200,
    );
  });
}
