import type { Hono } from 'hono';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';
import { ApiError, problemResponse } from '../errors.js';

/**
 * GET /healthz: the process is alive. GET /readyz: the model is loaded and the store answers
 * (503 problem otherwise, and while shutting down). Both are public.
 */
export function registerHealth(
  app: Hono<AppEnv>,
  service: EmbedderService,
  isDraining: () => boolean,
): void {
  app.get('/healthz', (c) => c.json({ status: 'ok' }, 200));

  app.get('/readyz', async (c) => {
    if (isDraining()) return problemResponse(c, new ApiError('not_ready', 'shutting down'));
    const r = await service.readiness();
    if (!r.ready) {
      // The reason goes to the log only: this endpoint is public.
      c.get('log').warn('not ready', { model: r.model, store: r.store, reason: r.storeError });
      const detail = `model: ${r.model ? 'loaded' : 'not loaded'}; store: ${r.store ? 'ok' : 'unreachable'}`;
      return problemResponse(c, new ApiError('not_ready', detail));
    }
    return c.json(
      { status: 'ready', model: service.modelName, model_ver: service.modelVersion },
      200,
    );
  });
}
