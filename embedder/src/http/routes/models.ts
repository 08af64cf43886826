import type { Hono } from 'hono';
import type { EmbedderService } from '../../core/service.js';
import type { AppEnv } from '../context.js';

/**
 * GET /internal/models: the models this embedder serves, so that the Worker refuses a job for a
 * model it would only fail later (`unknown_model`). Every served model shares one version.
 */
export function registerModels(app: Hono<AppEnv>, service: EmbedderService): void {
  app.get('/internal/models', (c) =>
    c.json(
      {
        default_model: service.modelName,
        models: service.servedModels.map((name) => ({ name, model_ver: service.modelVersion })),
      },
      200,
    ),
  );
}
