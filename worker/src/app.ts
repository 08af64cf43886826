/**
 * The public HTTP API. Middleware order: request context → body limit → content type and JSON
 * well-formedness → routes (auth + zod validation per route). Every error leaves through
 * `onError` or the 404/405 handler as RFC 9457 problem+json with the request id.
 */
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import { HTTPException } from 'hono/http-exception';
import { isOpenAiPath } from '../../contract/openai';
import { ConfigError } from './env';
import { AppError, invalidRequestDetail, problemResponse } from './errors';
import { requestIdFrom, initContext } from './middleware/context';
import type { AppBindings } from './middleware/context';
import { fieldErrors } from './routes/common';
import { registerBatches } from './routes/batches';
import { registerDelete } from './routes/delete';
import { registerDevToken } from './routes/dev-token';
import { registerDocs } from './routes/docs';
import { registerEmbed } from './routes/embed';
import { registerEmbedBatch } from './routes/embed-batch';
import { registerHealth } from './routes/health';
import { registerJobs } from './routes/jobs';
import { openAiBodyLimit, registerOpenAi } from './routes/openai';
import { RERANK_PATH, registerRerank, rerankBodyLimit } from './routes/rerank';
import { registerSearch } from './routes/search';
import { registerSettings } from './routes/settings';
import { registerUi } from './routes/ui';
import { MAX_BODY_BYTES } from './limits';
import { isDatabaseUnavailable } from './lib/db';
import { createLogger, errorKind } from './lib/log';

export { MAX_BODY_BYTES };

const jsonBody = createMiddleware<AppBindings>(async function jsonBody(c, next) {
  if (['POST', 'PUT', 'PATCH'].includes(c.req.method)) {
    const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json' && !type.endsWith('+json')) {
      throw new AppError('unsupported_media_type', 'send the body as application/json');
    }
    try {
      await c.req.json();
    } catch {
      throw new AppError('malformed_json', 'the request body is not valid JSON');
    }
  }
  await next();
});

/** Route patterns with the methods they accept, for 405 versus 404. */
function allowedMethods(app: OpenAPIHono<AppBindings>, path: string): string[] {
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    const re = new RegExp(
      '^' + r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/:[^/]+/g, '/[^/]+') + '$',
    );
    if (re.test(path)) methods.add(r.method);
  }
  return [...methods];
}

export function createApp(): OpenAPIHono<AppBindings> {
  const app = new OpenAPIHono<AppBindings>({
    defaultHook: (result) => {
      if (!result.success) {
        const errors = fieldErrors(result.error);
        throw new AppError('validation_failed', invalidRequestDetail(errors), { errors });
      }
    },
  });

  app.use('*', initContext);
  const apiBodyLimit = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new AppError('payload_too_large', `the body exceeds ${MAX_BODY_BYTES} bytes`);
    },
  });
  // The OpenAI-protocol routes take up to 2,048 texts a request: a limit of their own.
  app.use(
    '*',
    createMiddleware<AppBindings>(async function bodyLimits(c, next) {
      if (c.req.path === RERANK_PATH) return rerankBodyLimit(c, next);
      return (isOpenAiPath(c.req.path) ? openAiBodyLimit : apiBodyLimit)(c, next);
    }),
  );
  app.use('*', jsonBody);

  registerHealth(app);
  registerEmbed(app);
  registerEmbedBatch(app);
  registerJobs(app);
  registerBatches(app);
  registerSearch(app);
  registerSettings(app);
  registerDelete(app);
  registerOpenAi(app);
  registerRerank(app);
  registerDevToken(app);
  registerUi(app);
  registerDocs(app);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Heimdex API',
      version: '0.1.0',
      description: 'Multi-tenant semantic search. Errors are RFC 9457 problem+json.',
    },
  });

  app.notFound((c) => {
    const requestId = c.get('requestId') ?? requestIdFrom(c.req.header('x-request-id'));
    const openai = isOpenAiPath(c.req.path);
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0) {
      const res = problemResponse(
        new AppError('method_not_allowed', `${c.req.method} is not allowed here`),
        requestId,
        c.req.path,
        { openai },
      );
      res.headers.set('allow', allowed.join(', '));
      return res;
    }
    return problemResponse(new AppError('not_found', 'no such route'), requestId, c.req.path, {
      openai,
    });
  });

  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? requestIdFrom(c.req.header('x-request-id'));
    // On the OpenAI-protocol routes, problems also carry OpenAI's `error` object.
    const openai = { openai: isOpenAiPath(c.req.path) };
    if (err instanceof AppError) return problemResponse(err, requestId, c.req.path, openai);
    const log = c.get('log') ?? createLogger('info', { request_id: requestId });
    if (err instanceof ConfigError) {
      log.error('configuration invalid', { issues: err.issues.join('; ') });
      return problemResponse(
        new AppError('misconfigured', 'the service is misconfigured; see its logs'),
        requestId,
        undefined,
        openai,
      );
    }
    if (err instanceof HTTPException && err.status === 400) {
      return problemResponse(
        new AppError('malformed_json', 'malformed request'),
        requestId,
        undefined,
        openai,
      );
    }
    if (isDatabaseUnavailable(err)) {
      log.warn('database unavailable', { error: errorKind(err), route: c.req.routePath });
      return problemResponse(
        new AppError('dependency_unavailable', 'the database is unavailable; retry later', {
          retryAfterSeconds: 2,
        }),
        requestId,
        c.req.path,
        openai,
      );
    }
    log.error('unhandled error', { error: errorKind(err), route: c.req.routePath });
    return problemResponse(
      new AppError('internal', 'internal error'),
      requestId,
      c.req.path,
      openai,
    );
  });

  return app;
}
