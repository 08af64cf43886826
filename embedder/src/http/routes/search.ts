import type { Hono } from 'hono';
import { z } from 'zod';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';
import { Id, ModelRef, Text } from '../schemas.js';
import { readJson } from '../validate.js';

export const SearchRequestSchema = z.strictObject({
  org_id: Id,
  query_text: Text,
  limit: z.int().min(1).max(100).default(10),
  asset_id: Id.optional(),
  segment_id: Id.optional(),
  model: ModelRef.optional(),
});

/**
 * POST /internal/search: the org's nearest points to the query, best first. 400 `unknown_model`
 * for a model this embedder does not serve; 422 `empty_embedding` for a query with no known token.
 */
export function registerSearch(app: Hono<AppEnv>, service: EmbedderService): void {
  app.post('/internal/search', async (c) => {
    const request = await readJson(c, SearchRequestSchema);
    const result = await service.search(request);
    c.set('itemCount', result.total);
    return c.json(result, 200);
  });
}
