import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { JOB_STATUSES } from '../../../db/schema';
import type { AppBindings } from '../middleware/context';
import { getJob } from '../services/jobs';
import { LOOKUP_ERRORS, authenticated, found, json, operation } from './common';

export const JobParams = z.object({
  job_id: z.uuid().openapi({ param: { name: 'job_id', in: 'path' } }),
});

export const JobResponse = z
  .object({
    job_id: z.uuid(),
    status: z.enum(JOB_STATUSES),
    attempts: z.number().int(),
    asset_id: z.string(),
    segment_id: z.string(),
    model: z.string(),
    model_ver: z.string(),
    result: z
      .object({
        point_id: z.uuid().openapi({
          description: "the segment's point id (its first chunk's), shared by all its chunks",
        }),
        chunk_count: z
          .number()
          .int()
          .positive()
          .openapi({
            description:
              'points the text was stored as: 1 for a text that fits the model window (or chunking ' +
              '"truncate"), else its chunks',
          }),
        model: z.string(),
        model_ver: z.string(),
        text_len: z.number().int(),
        token_count: z.number().int(),
        truncated: z.boolean(),
        truncated_len: z.number().int(),
        applied: z.boolean(),
      })
      .nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    current: z.boolean().openapi({
      description:
        "true when the segment's stored vector is this job's: it SUCCEEDED, was not deleted, and " +
        'no later job for the segment has succeeded. Latest successful submission wins: when the ' +
        'newest job for a segment FAILS for good, the vector of the last job that succeeded stays ' +
        'searchable (that job stays `current`) until a later submission succeeds or the segment ' +
        'is deleted.',
    }),
    deleted_at: z.iso
      .datetime()
      .nullable()
      .openapi({
        description:
          "When this job's vector was deleted (DELETE of its point or asset). The same text " +
          'submitted after a delete makes a new job.',
      }),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
  })
  .openapi('Job');

export const getJobRoute = createRoute({
  summary: "Get a job's status (tenant-scoped)",
  ...operation('get', '/jobs/{job_id}', 'getJob', 'jobs'),
  ...authenticated(LOOKUP_ERRORS, { params: JobParams }, { 200: json('The job', JobResponse) }),
});

export function registerJobs(app: OpenAPIHono<AppBindings>): void {
  app.openapi(getJobRoute, async (c) => {
    const { job_id } = c.req.valid('param');
    const job = found(await getJob(c.var.db(), c.var.auth.orgId, job_id), 'job');
    return c.json(
      {
        job_id: job.id,
        status: job.status,
        attempts: job.attempts,
        asset_id: job.assetId,
        segment_id: job.segmentId,
        model: job.model,
        model_ver: job.modelVer,
        // A job that finished before texts were chunked wrote one point.
        result: job.result ? { ...job.result, chunk_count: job.result.chunk_count ?? 1 } : null,
        error: job.error ?? null,
        current: job.current,
        deleted_at: job.deletedAt?.toISOString() ?? null,
        created_at: job.createdAt.toISOString(),
        updated_at: job.updatedAt.toISOString(),
      },
      200,
    );
  });
}
