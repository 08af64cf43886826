import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { AppError, invalidRequestDetail } from '../errors';
import type { FieldError } from '../errors';
import type { AppBindings } from '../middleware/context';
import { ingest } from '../services/ingest';
import { Chunking, EmbedText, INGEST_ERRORS, Id, MODEL_FIELDS } from './common';
import { authenticated, operation } from './common';
import { checkTextBytes, checkTextLength, ingestItem, json, jsonBody } from './common';

export { MAX_BATCH_SEGMENTS } from '../../../contract/rules';
import { MAX_BATCH_SEGMENTS } from '../../../contract/rules';

export const BatchSegment = z
  .object({
    asset_id: Id.optional(),
    segment_id: Id,
    text: EmbedText,
    ...MODEL_FIELDS,
    chunking: Chunking.optional().openapi({
      description:
        "This segment's chunking; unset: the batch's `chunking`, else the organisation's",
    }),
  })
  .strict()
  .openapi('BatchSegment');

export const EmbedBatchRequest = z
  .object({
    asset_id: Id.optional().openapi({ description: 'Default asset for segments that name none' }),
    chunking: Chunking.optional().openapi({
      description:
        "Chunking of the segments that name none; unset: the organisation's setting, else the default",
    }),
    segments: z.array(BatchSegment).min(1).max(MAX_BATCH_SEGMENTS),
  })
  .strict()
  .openapi('EmbedBatchRequest');

export const EmbedBatchResponse = z
  .object({
    batch_id: z.uuid().openapi({
      description: 'Follow every job of this batch in one request: GET /batches/{batch_id}',
    }),
    jobs: z.array(
      z.object({
        job_id: z.uuid(),
        asset_id: z.string(),
        segment_id: z.string(),
        existing: z.boolean().openapi({ description: 'true for an identical resubmission' }),
      }),
    ),
  })
  .openapi('EmbedBatchResponse');

const RESPONSES = {
  202: json('At least one job was created or re-queued', EmbedBatchResponse),
  200: json('Every segment was an identical resubmission', EmbedBatchResponse),
};

export const embedBatchRoute = createRoute({
  summary: `Embed up to ${MAX_BATCH_SEGMENTS} segments: one job each, one transaction`,
  ...operation('post', '/vectors/embed/batch', 'embedBatch', 'vectors'),
  ...authenticated(INGEST_ERRORS, jsonBody(EmbedBatchRequest), RESPONSES),
});

export function registerEmbedBatch(app: OpenAPIHono<AppBindings>): void {
  app.openapi(embedBatchRoute, async (c) => {
    const body = c.req.valid('json');
    const missing: FieldError[] = [];
    body.segments.forEach((s, i) => {
      checkTextLength(s.text, c.var.config.maxTextChars, `segments.${i}.text`);
      checkTextBytes(s.text, `segments.${i}.text`);
      if (!s.asset_id && !body.asset_id) {
        missing.push({
          field: `segments.${i}.asset_id`,
          pointer: `/segments/${i}/asset_id`,
          message: 'required when the batch has no asset_id',
        });
      }
    });
    if (missing.length > 0) {
      throw new AppError('validation_failed', invalidRequestDetail(missing), { errors: missing });
    }
    const batchId = crypto.randomUUID();
    const jobs = await ingest(
      c.var,
      c.env.EMBED_QUEUE,
      body.segments.map((s, i) =>
        ingestItem(s, (s.asset_id ?? body.asset_id)!, `segments.${i}`, body.chunking),
      ),
      { batchId },
    );
    return c.json(
      {
        batch_id: batchId,
        jobs: jobs.map((j) => ({
          job_id: j.jobId,
          asset_id: j.assetId,
          segment_id: j.segmentId,
          existing: j.outcome === 'existing',
        })),
      },
      jobs.some((j) => j.outcome !== 'existing') ? 202 : 200,
    );
  });
}
