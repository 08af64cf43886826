import type { Hono } from 'hono';
import { EmbedRequest } from '../../../../contract/internal.js';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';
import { setTimingHeaders } from '../timing.js';
import { readJson } from '../validate.js';
import { embedJob, embedResponse } from '../wire.js';

export { MAX_EMBED_ITEMS } from '../../../../contract/internal.js';

/**
 * POST /internal/embed: embed a batch and store the vectors (latest wins by seq). 200 with one
 * result per item, in order, and timing headers; 503 when the model or store is unavailable and
 * 429 + Retry-After when the queue is full (retry the batch). When the caller aborts, its items
 * still queued are dropped.
 */
export function registerEmbed(app: Hono<AppEnv>, service: EmbedderService): void {
  app.post('/internal/embed', async (c) => {
    const { items } = await readJson(c, EmbedRequest);
    c.set('itemCount', items.length);
    const { result, timing } = await service.embed(items.map(embedJob), {
      signal: c.req.raw.signal,
    });
    const errors = result.results.filter((r) => r.status === 'error').length;
    const applied = result.results.filter((r) => r.status === 'ok' && r.applied).length;
    const truncated = result.results.filter((r) => r.status === 'ok' && r.truncated).length;
    c.get('log').debug('embedded batch', { items: items.length, applied, errors, truncated });
    setTimingHeaders(c, timing);
    return c.json(embedResponse(result), 200);
  });
}
