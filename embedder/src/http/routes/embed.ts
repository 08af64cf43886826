import type { Hono } from 'hono';
import { z } from 'zod';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';
import { Id, ModelRef, Text } from '../schemas.js';
import { setTimingHeaders } from '../timing.js';
import { readJson } from '../validate.js';

export const MAX_EMBED_ITEMS = 512;

export const EmbedItemSchema = z.strictObject({
  job_id: z.uuid(),
  /** The job's sequence number from Postgres; the highest seq of a point wins. */
  seq: z.int().positive(),
  org_id: Id,
  asset_id: Id,
  segment_id: Id,
  text: Text,
  model: ModelRef,
  model_ver: ModelRef,
});

export const EmbedRequestSchema = z.strictObject({
  items: z.array(EmbedItemSchema).min(1).max(MAX_EMBED_ITEMS),
});

export type EmbedRequest = z.infer<typeof EmbedRequestSchema>;

/**
 * POST /internal/embed: embed a batch and store the vectors (latest wins by seq). 200 with one
 * result per item, in order, and timing headers; 503 when the model or store is unavailable and
 * 429 + Retry-After when the queue is full (retry the batch). When the caller aborts, its items
 * still queued are dropped.
 */
export function registerEmbed(app: Hono<AppEnv>, service: EmbedderService): void {
  app.post('/internal/embed', async (c) => {
    const { items } = await readJson(c, EmbedRequestSchema);
    c.set('itemCount', items.length);
    const { result, timing } = await service.embed(items, { signal: c.req.raw.signal });
    const errors = result.results.filter((r) => r.status === 'error').length;
    const applied = result.results.filter((r) => r.status === 'ok' && r.applied).length;
    const truncated = result.results.filter((r) => r.status === 'ok' && r.truncated).length;
    c.get('log').debug('embedded batch', { items: items.length, applied, errors, truncated });
    setTimingHeaders(c, timing);
    return c.json(result, 200);
  });
}
