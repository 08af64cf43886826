import type { Hono } from 'hono';
import { SearchRequest } from '../../../../contract/internal.js';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';
import { setTimingHeaders } from '../timing.js';
import { readJson } from '../validate.js';
import { searchQuery, searchResponse } from '../wire.js';

/**
 * POST /internal/search: the org's nearest points to the query, best first, among the vectors of
 * the query's model only (default: EMBEDDING_MODEL_NAME). 400 `unknown_model` for a model this
 * embedder does not serve; 422 `empty_embedding` for a query with no known token; 429 when the
 * queue is full; 503 `model_unavailable` when the model cannot be loaded. Timing headers as embed.
 */
export function registerSearch(app: Hono<AppEnv>, service: EmbedderService): void {
  app.post('/internal/search', async (c) => {
    const request = await readJson(c, SearchRequest);
    const { result, timing } = await service.search(searchQuery(request), {
      signal: c.req.raw.signal,
    });
    c.set('itemCount', result.total);
    setTimingHeaders(c, timing);
    return c.json(searchResponse(result), 200);
  });
}
