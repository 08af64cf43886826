import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppBindings } from '../middleware/context';
import { ingest } from '../services/ingest';
import { Chunking, EmbedText, INGEST_ERRORS, Id, MODEL_FIELDS } from './common';
import { authenticated, operation } from './common';
import { checkTextBytes, checkTextLength, ingestItem, json, jsonBody } from './common';

export const EmbedRequest = z
  .object({
    asset_id: Id.openapi({ example: 'doc-42' }),
    segment_id: Id.openapi({ example: 'p-1' }),
    text: EmbedText,
    ...MODEL_FIELDS,
    chunking: Chunking.optional(),
  })
  .strict()
  .openapi('EmbedRequest');

export const EmbedAccepted = z
  .object({ job_id: z.uuid(), asset_id: z.string(), segment_id: z.string() })
  .openapi('EmbedAccepted');

const RESPONSES = {
  202: json('Job created (or re-queued) and sent for embedding', EmbedAccepted),
  200: json('Identical resubmission: the existing job', EmbedAccepted),
};

export const embedRoute = createRoute({
  summary: 'Embed one text segment (asynchronous job)',
  ...operation('post', '/vectors/embed', 'embed', 'vectors'),
  ...authenticated(INGEST_ERRORS, jsonBody(EmbedRequest), RESPONSES),
});

export function registerEmbed(app: OpenAPIHono<AppBindings>): void {
  app.openapi(embedRoute, async (c) => {
    const body = c.req.valid('json');
    checkTextLength(body.text, c.var.config.maxTextChars, 'text');
    checkTextBytes(body.text, 'text');
    const [job] = await ingest(c.var, c.env.EMBED_QUEUE, [ingestItem(body, body.asset_id, '')]);
    return c.json(
      { job_id: job!.jobId, asset_id: job!.assetId, segment_id: job!.segmentId },
      job!.outcome === 'existing' ? 200 : 202,
    );
  });
}
