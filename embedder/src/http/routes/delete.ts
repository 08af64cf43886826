import type { Hono } from 'hono';
import { DeleteRequest } from '../../../../contract/internal.js';
import type { DeleteRequest as DeleteRequestBody } from '../../../../contract/internal.js';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';
import { readJson } from '../validate.js';
import { deleteTarget } from '../wire.js';

/** POST /internal/delete: delete one point or a whole asset, within the given org only. */
export function registerDelete(app: Hono<AppEnv>, service: EmbedderService): void {
  app.post('/internal/delete', async (c) => {
    const body = await readJson(c, DeleteRequest);
    const result = await service.delete(deleteTarget(body as DeleteRequestBody));
    c.set('itemCount', result.deleted);
    return c.json(result, 200);
  });
}
