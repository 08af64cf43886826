import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { AppError } from '../errors';
import type { ErrorCode } from '../errors';
import type { AppBindings } from '../middleware/context';
import { pointKnown, retireJobs } from '../services/jobs';
import { Id, authenticated, fromEmbedder, json, operation } from './common';

export const DeleteResponse = z
  .object({
    deleted: z.number().int().openapi({ description: 'vectors removed from the store' }),
    cancelled_jobs: z.number().int().openapi({ description: 'unfinished jobs cancelled' }),
  })
  .openapi('DeleteResponse');

const DELETE_ERRORS: ErrorCode[] = ['validation_failed', 'not_found', 'dependency_unavailable'];

/** `DELETE path`: deletes what the path parameter names, answering DeleteResponse. */
function deleteRoute<P extends string, Q extends z.ZodObject>(spec: DeleteSpec<P, Q>) {
  return createRoute({
    summary: spec.summary,
    ...operation('delete', spec.path, spec.operationId, 'vectors'),
    ...authenticated(
      DELETE_ERRORS,
      { params: spec.params },
      { 200: json('Deleted', DeleteResponse) },
    ),
  });
}

interface DeleteSpec<P extends string, Q extends z.ZodObject> {
  path: P;
  operationId: string;
  summary: string;
  params: Q;
}

export const deletePointRoute = deleteRoute({
  path: '/vectors/points/{point_id}',
  operationId: 'deletePoint',
  summary: "Delete one vector of the caller's organisation",
  params: z.object({ point_id: z.uuid().openapi({ param: { name: 'point_id', in: 'path' } }) }),
});

export const deleteAssetRoute = deleteRoute({
  path: '/vectors/assets/{asset_id}',
  operationId: 'deleteAsset',
  summary: "Delete every vector of an asset of the caller's organisation",
  params: z.object({ asset_id: Id.openapi({ param: { name: 'asset_id', in: 'path' } }) }),
});

/**
 * Deletion first cancels the target's unfinished jobs (their text leaves Postgres) and retires its
 * jobs' idempotency keys, then deletes the vectors, then retires again what finished meanwhile
 * (services/jobs.ts retireJobs); a job that was mid-embedding when it was cancelled is cleaned up
 * by the consumer. The same text submitted after a delete makes a new job. A retry after an
 * embedder outage is safe: every step is idempotent.
 */
export function registerDelete(app: OpenAPIHono<AppBindings>): void {
  app.openapi(deletePointRoute, async (c) => {
    const { point_id } = c.req.valid('param');
    const { deleted, cancelled } = await deleteTarget(c.var, { pointId: point_id });
    if (
      deleted === 0 &&
      cancelled === 0 &&
      !(await pointKnown(c.var.db(), c.var.auth.orgId, point_id))
    ) {
      throw new AppError('not_found', 'point not found');
    }
    return c.json({ deleted, cancelled_jobs: cancelled }, 200);
  });

  app.openapi(deleteAssetRoute, async (c) => {
    const { asset_id } = c.req.valid('param');
    const { deleted, cancelled } = await deleteTarget(c.var, { assetId: asset_id });
    return c.json({ deleted, cancelled_jobs: cancelled }, 200);
  });
}

/** Retires the target's jobs, deletes its vectors, then retires what finished meanwhile. */
async function deleteTarget(
  vars: AppBindings['Variables'],
  target: { pointId: string } | { assetId: string },
): Promise<{ deleted: number; cancelled: number }> {
  const { orgId } = vars.auth;
  const db = vars.db();
  const before = await retireJobs(db, orgId, target);
  const { deleted } = await fromEmbedder(
    vars
      .embedder()
      .delete(
        'pointId' in target
          ? { org_id: orgId, point_id: target.pointId }
          : { org_id: orgId, asset_id: target.assetId },
      ),
  );
  const after = await retireJobs(db, orgId, target);
  return { deleted, cancelled: before.cancelled + after.cancelled };
}
