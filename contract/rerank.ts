/**
 * Reranking, written once. The embedder serves Hugging Face text-embeddings-inference's protocol
 * (`POST /v1/rerank`: `{query, texts, raw_scores?, return_text?, truncate?}` →
 * `[{index, score, text?}]`, best first) behind its service credential; the Worker serves tenants
 * a Cohere-style `POST /v1/rerank` (worker/src/routes/rerank.ts) and forwards to it, parsing the
 * answer with RerankResponse below. Plain zod; the Worker adds OpenAPI documentation where it
 * exposes these rules.
 *
 * Stateless on both sides: the texts are used for one forward pass and forgotten (never stored,
 * logged or counted beyond their number).
 */
import { z } from 'zod';
import { ModelName, Text } from './rules.js';

/** Documents of one rerank request (Cohere's limit). */
export const MAX_RERANK_DOCUMENTS = 1000;

/** The largest body of a POST /v1/rerank, on the Worker and on the embedder (413 beyond). */
export const RERANK_MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * The most text the Worker takes in one rerank request: the query's and the documents' JSON
 * (UTF-8, as the Worker forwards them), 4 MiB: half the embedder's body limit, so what the Worker
 * forwards always fits it (413 naming `documents` beyond).
 */
export const RERANK_MAX_INPUT_BYTES = 4 * 1024 * 1024;

/** The response header naming the reranker that scored the texts (the Worker reports it). */
export const RERANK_MODEL_HEADER = 'x-model-id';

/** The embedder's request: TEI's `/rerank` body, plus an optional `model` check. */
export const RerankRequest = z.strictObject({
  query: Text,
  texts: z
    .array(Text)
    .min(1, `must not be empty: send 1 to ${MAX_RERANK_DOCUMENTS} texts`)
    .max(MAX_RERANK_DOCUMENTS, `at most ${MAX_RERANK_DOCUMENTS} texts`),
  /** Scores as the model's logits instead of its activation (sigmoid for MS MARCO models). */
  raw_scores: z.boolean().optional(),
  /** Echo each text in its result. */
  return_text: z.boolean().optional(),
  /**
   * Cut a pair longer than the model's window as sentence-transformers does (default true);
   * false refuses it (413 naming the text).
   */
  truncate: z.boolean().optional(),
  /** Heimdex extension: when present, must name the served reranker (else 400 naming `model`). */
  model: ModelName.optional(),
});
export type RerankRequest = z.infer<typeof RerankRequest>;

export const RankedText = z.object({
  /** The text's index in the request. */
  index: z.int().nonnegative(),
  score: z.number(),
  text: z.string().optional(),
});
export type RankedText = z.infer<typeof RankedText>;

/** One entry per text, best first (ties in request order). */
export const RerankResponse = z.array(RankedText);
export type RerankResponse = z.infer<typeof RerankResponse>;
