import type { MiddlewareHandler } from 'hono';
import type { Logger } from '../log.js';

/** Per-request values set by `requestContext`, typed for every handler. */
export interface AppVariables {
  requestId: string;
  /** `performance.now()` when the request arrived (for `x-total-time`). */
  startedAt: number;
  log: Logger;
  /** Items in the request (embed batch size, embeddings inputs), for the request log line. */
  itemCount: number | undefined;
  /** The problem code this request was answered with, if any (for metrics). */
  problemCode: string | undefined;
}

export interface AppEnv {
  Variables: AppVariables;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const KNOWN_PATHS = new Set([
  '/healthz',
  '/readyz',
  '/internal/embed',
  '/internal/search',
  '/internal/delete',
  '/v1/embeddings',
  '/v1/rerank',
  '/metrics',
]);

/**
 * Builds the request context: the request id (the caller's `x-request-id` when well-formed,
 * else a new UUID; echoed as a response header) and a logger bound to it. Logs one line per
 * request with method, route, status, duration and item count: never bodies or text.
 */
export function requestContext(logger: Logger): MiddlewareHandler<AppEnv> {
  return async function requestContextMiddleware(c, next) {
    const started = performance.now();
    const incoming = c.req.header('x-request-id');
    const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
    const log = logger.child({ request_id: requestId });
    c.set('requestId', requestId);
    c.set('startedAt', started);
    c.set('log', log);
    c.set('itemCount', undefined);
    c.set('problemCode', undefined);
    await next();
    c.res.headers.set('x-request-id', requestId);
    const path = c.req.path;
    const status = c.res.status;
    const fields = {
      method: c.req.method,
      path: KNOWN_PATHS.has(path) ? path : '(other)',
      status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
      items: c.get('itemCount'),
    };
    if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
      log.debug('request', fields);
    } else log.info('request', fields);
  };
}
