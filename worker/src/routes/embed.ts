import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { requireAuth } from '../middleware/auth';
import type { AppBindings } from '../middleware/context';
import { textCipher } from '../lib/text-cipher';
import { submitJobs } from '../services/jobs';
import { relay } from '../services/outbox';
import {
  AUTH_ERRORS,
  BODY_ERRORS,
  Id,
  ModelName,
  ModelVer,
  Text,
  checkTextLength,
  errorResponses,
  refuseUnservedModels,
} from './common';

export const EmbedRequest = z
  .object({
    asset_id: Id.openapi({ example: 'doc-42' }),
    segment_id: Id.openapi({ example: 'p-1' }),
    text: Text.openapi({ example: 'A large furry dog is running in the park' }),
    model: ModelName.optional(),
    model_ver: ModelVer.optional(),
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
  security: [{ bearerAuth: [] }],
  middleware: [requireAuth] as const,
  request: {
    body: { content: { 'application/json': { schema: EmbedRequest } }, required: true },
  },
  responses: {
    202: {
      description: 'Job created (or re-queued) and sent for embedding',
      content: { 'application/json': { schema: EmbedAccepted } },
    },
    200: {
      description: 'Identical resubmission: the existing job',
      content: { 'application/json': { schema: EmbedAccepted } },
    },
    ...errorResponses([...AUTH_ERRORS, ...BODY_ERRORS, 'dependency_unavailable']),
  },
});

export function registerEmbed(app: OpenAPIHono<AppBindings>): void {
  app.openapi(embedRoute, async (c) => {
    const body = c.req.valid('json');
    const { config, auth, requestId, log } = c.var;
    checkTextLength(body.text, config.maxTextChars, 'text');
    await refuseUnservedModels(c.var, [
      {
        model: body.model ?? config.model.name,
        modelVer: body.model_ver ?? config.model.ver,
        given: body,
        path: '',
      },
    ]);
    const db = c.var.db();
    const { jobs, pending } = await submitJobs(
      db,
      await textCipher(config.textKeys.current, config.textKeys.previous),
      [
        {
          orgId: auth.orgId,
          assetId: body.asset_id,
          segmentId: body.segment_id,
          model: body.model ?? config.model.name,
          modelVer: body.model_ver ?? config.model.ver,
          text: body.text,
        },
      ],
      requestId,
    );
    await relay(db, c.env.EMBED_QUEUE, config, log, pending);
    const job = jobs[0]!;
    return c.json(
      { job_id: job.jobId, asset_id: job.assetId, segment_id: job.segmentId },
      job.outcome === 'existing' ? 200 : 202,
    );
  });
}
