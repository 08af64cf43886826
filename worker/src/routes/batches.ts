import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppBindings } from '../middleware/context';
import { BATCH_RETENTION_DAYS, getBatchStatus } from '../services/jobs';
import { LOOKUP_ERRORS, authenticated, found, json, operation } from './common';

export const BatchParams = z.object({
  batch_id: z.uuid().openapi({ param: { name: 'batch_id', in: 'path' } }),
});

const count = z.number().int().nonnegative();

export const BatchResponse = z
  .object({
    batch_id: z.uuid(),
    total: count.openapi({ description: 'segments in the batch' }),
    counts: z.object({ queued: count, processing: count, succeeded: count, failed: count }),
    done: z.boolean().openapi({ description: 'true when every job is SUCCEEDED or FAILED' }),
    failed_jobs: z
      .array(
        z.object({
          job_id: z.uuid(),
          asset_id: z.string(),
          segment_id: z.string(),
          error: z.object({ code: z.string(), message: z.string() }).nullable(),
        }),
      )
      .openapi({ description: 'The FAILED jobs of the batch, in request order' }),
    created_at: z.iso.datetime(),
  })
  .openapi('Batch');

export const getBatchRoute = createRoute({
  summary: 'Progress of a batch submission: job counts by status and the failed jobs',
  ...operation('get', '/batches/{batch_id}', 'getBatch', 'jobs'),
  description: `A batch handle answers for ${BATCH_RETENTION_DAYS} days; its jobs stay readable by id.`,
  ...authenticated(
    LOOKUP_ERRORS,
    { params: BatchParams },
    { 200: json('The batch', BatchResponse) },
  ),
});

export function registerBatches(app: OpenAPIHono<AppBindings>): void {
  app.openapi(getBatchRoute, async (c) => {
    const { batch_id } = c.req.valid('param');
    const batch = found(await getBatchStatus(c.var.db(), c.var.auth.orgId, batch_id), 'batch');
    const { counts } = batch;
    return c.json(
      {
        batch_id: batch.id,
        total: batch.total,
        counts: {
          queued: counts.QUEUED,
          processing: counts.PROCESSING,
          succeeded: counts.SUCCEEDED,
          failed: counts.FAILED,
        },
        done: counts.QUEUED + counts.PROCESSING === 0,
        failed_jobs: batch.failed.map((f) => ({
          job_id: f.id,
          asset_id: f.assetId,
          segment_id: f.segmentId,
          error: f.error,
        })),
        created_at: batch.createdAt.toISOString(),
      },
      200,
    );
  });
}
