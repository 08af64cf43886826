import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { EMBEDDINGS_MAX_BODY_BYTES } from '../../../contract/openai.js';
import type { Embeddings } from '../core/embeddings.js';
import type { RerankService } from '../core/reranker.js';
import { RERANK_MAX_BODY_BYTES } from '../../../contract/rerank.js';
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
import { registerOpenAi } from './routes/openai.js';
import { registerRerank } from './routes/rerank.js';
import { registerSearch } from './routes/search.js';
import { observeRoute } from './timing.js';

export const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface AppDeps {
  service: EmbedderService;
  /** POST /v1/embeddings (OpenAI's protocol). */
  embeddings: Embeddings;
  /** POST /v1/rerank (TEI's protocol); null or absent: no reranker (404 rerank_not_configured). */
  reranker?: RerankService | null;
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
  app.use(
    '/v1/embeddings',
    observeRoute({
      requests: metrics.apiEmbeddingsRequests,
      duration: metrics.apiEmbeddingsDuration,
      errors: metrics.apiEmbeddingsErrors,
    }),
  );
  app.use(
    '/v1/rerank',
    observeRoute({
      requests: metrics.rerankRequests,
      duration: metrics.rerankDuration,
      errors: metrics.rerankErrors,
    }),
  );
  const auth = serviceAuth({ token: deps.token });
  app.use('/internal/*', auth);
  app.use('/v1/*', auth);
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

  // Before /v1/*'s limit (the same size), so that a body too large for a rerank names `texts`.
  app.use('/v1/rerank', fieldBodyLimit(RERANK_MAX_BODY_BYTES, 'texts', 'texts'));
  app.use('/v1/*', fieldBodyLimit(EMBEDDINGS_MAX_BODY_BYTES, 'input', 'inputs'));

  registerHealth(app, deps.service, deps.isDraining ?? (() => false));
  registerEmbed(app, deps.service);
  registerSearch(app, deps.service);
  registerModels(app, deps.service);
  registerDelete(app, deps.service);
  registerOpenAi(app, deps.embeddings);
  registerRerank(app, deps.reranker ?? null);
  registerMetrics(app, metrics.registry);

  app.notFound((c) => problemResponse(c, new ApiError('not_found', 'no such route')));
  app.onError(handleError);
  return app;
}

/** A body limit whose 413 names the request's list field (`field`, of `what`). */
function fieldBodyLimit(maxSize: number, field: string, what: string) {
  return bodyLimit({
    maxSize,
    onError: (c) =>
      problemResponse(
        c,
        new ApiError('payload_too_large', `the body exceeds ${maxSize} bytes`, {
          errors: [
            {
              field,
              pointer: `/${field}`,
              message: `the request is over ${maxSize} bytes: send fewer or shorter ${what}`,
            },
          ],
        }),
      ),
  });
}
