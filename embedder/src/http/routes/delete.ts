import type { Hono } from 'hono';
import { z } from 'zod';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';
import { Id, PointId } from '../schemas.js';
import { readJson } from '../validate.js';

export const DeleteRequestSchema = z
  .strictObject({
    org_id: Id,
    point_id: PointId.optional(),
    asset_id: Id.optional(),
  })
  .refine((b) => (b.point_id === undefined) !== (b.asset_id === undefined), {
    message: 'exactly one of point_id or asset_id is required',
    path: ['point_id'],
  });

/** POST /internal/delete: delete one point or a whole asset, within the given org only. */
export function registerDelete(app: Hono<AppEnv>, service: EmbedderService): void {
  app.post('/internal/delete', async (c) => {
    const body = await readJson(c, DeleteRequestSchema);
    const result =
      body.point_id !== undefined
        ? await service.delete({ org_id: body.org_id, point_id: body.point_id })
        : await service.delete({ org_id: body.org_id, asset_id: body.asset_id as string });
    c.set('itemCount', result.deleted);
    return c.json(result, 200);
  });
}
