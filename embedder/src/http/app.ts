import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Metrics } from '../core/metrics.js';
import type { EmbedderService } from '../core/service.js';
import type { Logger } from '../log.js';
import { serviceAuth } from './auth.js';
import { requestContext } from './context.js';
import type { AppEnv } from './context.js';
import { ApiError, handleError, problemResponse } from './errors.js';
import { registerDelete } from './routes/delete.js';
import { registerEmbed } from './routes/embed.js';
import { registerHealth } from './routes/health.js';
import { registerMetrics } from './routes/metrics.js';
import { registerModels } from './routes/models.js';
import { registerSearch } from './routes/search.js';
import { observeRoute } from './timing.js';

export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface AppDeps {
  service: EmbedderService;
  metrics: Metrics;
  token: string;
  logger: Logger;
  /** True once shutdown has begun: /readyz answers 503 so load balancers stop sending. */
  isDraining?: () => boolean;
}

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', requestContext(deps.logger));
  const { metrics } = deps;
  app.use(
    '/internal/embed',
    observeRoute({
      requests: metrics.embeddingRequests,
      duration: metrics.embeddingDuration,
      errors: metrics.embeddingErrors,
    }),
  );
  app.use(
    '/internal/search',
    observeRoute({
      requests: metrics.searchRequests,
      duration: metrics.searchDuration,
      errors: metrics.searchErrors,
    }),
  );
  const auth = serviceAuth({ token: deps.token });
  app.use('/internal/*', auth);
  app.use('/metrics', auth);

  app.use(
    '/internal/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        problemResponse(
          c,
          new ApiError('payload_too_large', `the body exceeds ${MAX_BODY_BYTES} bytes`),
        ),
    }),
  );

  registerHealth(app, deps.service, deps.isDraining ?? (() => false));
  registerEmbed(app, deps.service);
  registerSearch(app, deps.service);
  registerModels(app, deps.service);
  registerDelete(app, deps.service);
  registerMetrics(app, metrics.registry);

  app.notFound((c) => problemResponse(c, new ApiError('not_found', 'no such route')));
  app.onError(handleError);
  return app;
}
