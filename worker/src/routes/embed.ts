import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppBindings } from '../middleware/context';
import { ingest } from '../services/ingest';
import { AUTH_ERRORS, AUTHENTICATED, BODY_ERRORS, Id, MODEL_FIELDS, Text } from './common';
import { checkTextLength, errorResponses, ingestItem, json, jsonBody } from './common';

export const EmbedRequest = z
  .object({
    asset_id: Id.openapi({ example: 'doc-42' }),
    segment_id: Id.openapi({ example: 'p-1' }),
    text: Text.openapi({ example: 'A large furry dog is running in the park' }),
    ...MODEL_FIELDS,
  })
  .strict()
  .openapi('EmbedRequest');

export const EmbedAccepted = z
  .object({ job_id: z.uuid(), asset_id: z.string(), segment_id: z.string() })
  .openapi('EmbedAccepted');

export const embedRoute = createRoute({
  method: 'post',
  path: '/vectors/embed',
  operationId: 'embed',
  tags: ['vectors'],
  summary: 'Embed one text segment (asynchronous job)',
  ...AUTHENTICATED,
  request: jsonBody(EmbedRequest),
  responses: {
    202: json('Job created (or re-queued) and sent for embedding', EmbedAccepted),
    200: json('Identical resubmission: the existing job', EmbedAccepted),
    ...errorResponses([...AUTH_ERRORS, ...BODY_ERRORS, 'dependency_unavailable']),
  },
});

export function registerEmbed(app: OpenAPIHono<AppBindings>): void {
  app.openapi(embedRoute, async (c) => {
    const body = c.req.valid('json');
    checkTextLength(body.text, c.var.config.maxTextChars, 'text');
    const [job] = await ingest(c.var, c.env.EMBED_QUEUE, [ingestItem(body, body.asset_id, '')]);
    return c.json(
      { job_id: job!.jobId, asset_id: job!.assetId, segment_id: job!.segmentId },
      job!.outcome === 'existing' ? 200 : 202,
    );
  });
}
