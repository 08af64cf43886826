import type { Hono } from 'hono';
import { RERANK_MODEL_HEADER, RerankRequest } from '../../../../contract/rerank.js';
import type { RerankResponse } from '../../../../contract/rerank.js';
import { ServiceError } from '../../core/errors.js';
import type { RerankService } from '../../core/reranker.js';
import type { AppEnv } from '../context.js';
import { setTimingHeaders } from '../timing.js';
import { readJson } from '../validate.js';

/**
 * POST /v1/rerank: text-embeddings-inference's rerank protocol (contract/rerank.ts), behind the
 * service credential like /internal. `{query, texts, raw_scores?, return_text?, truncate?}` →
 * `[{index, score, text?}]`, best first; the reranker's name in the `x-model-id` header. 404
 * `rerank_not_configured` when the embedder serves no reranker (RERANK_MODEL_NAME unset); 400
 * naming `model` for another reranker than the served one; 413 naming the text (or `query`) of a
 * pair over the window with `truncate: false`; 429 + Retry-After when the queue is full; timing
 * headers as embed and search. Texts are echoed only with `return_text`, and never logged.
 */
export function registerRerank(app: Hono<AppEnv>, reranker: RerankService | null): void {
  app.post('/v1/rerank', async (c) => {
    if (!reranker) {
      throw new ServiceError(
        'rerank_not_configured',
        'this embedder serves no reranker: set RERANK_MODEL_NAME (e.g. ms-marco-minilm-l6-v2) to enable POST /v1/rerank',
      );
    }
    const body = await readJson(c, RerankRequest);
    c.set('itemCount', body.texts.length);
    const { result, timing } = await reranker.rerank(
      {
        query: body.query,
        texts: body.texts,
        ...(body.raw_scores === undefined ? {} : { rawScores: body.raw_scores }),
        ...(body.truncate === undefined ? {} : { truncate: body.truncate }),
        ...(body.model === undefined ? {} : { model: body.model }),
      },
      { signal: c.req.raw.signal },
    );
    setTimingHeaders(c, timing);
    c.header(RERANK_MODEL_HEADER, result.model);
    const out: RerankResponse = result.ranked.map(({ index, score }) =>
      body.return_text ? { index, score, text: body.texts[index] as string } : { index, score },
    );
    return c.json(out, 200);
  });
}
