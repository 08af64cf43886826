/**
 * One init middleware builds the per-request context: request id (echoed as a header), parsed
 * config, logger, and a lazily opened database handle closed after the response. Every response
 * carries `Server-Timing: app;dur=<ms>` (the Worker's own handling time, embedder calls included;
 * routes add their dependencies' shares), so a client can tell the API's time from the network's.
 */
import { createMiddleware } from 'hono/factory';
import type { Config, Env } from '../env';
import { parseConfig } from '../env';
import type { DbHandle } from '../lib/db';
import { openDb } from '../lib/db';
import { createLogger } from '../lib/log';
import { EmbedderClient } from '../services/embedder';
import type { Logger } from '../lib/log';
import type { AuthContext } from './auth';

export interface AppVariables {
  requestId: string;
  config: Config;
  log: Logger;
  db: () => DbHandle['db'];
  /** The embedder's /internal API, for this request (built on first use). */
  embedder: () => EmbedderClient;
  auth: AuthContext;
}

export interface AppBindings {
  Bindings: Env;
  Variables: AppVariables;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

export function requestIdFrom(header: string | undefined): string {
  return header && REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

export const initContext = createMiddleware<AppBindings>(async function initContext(c, next) {
  const requestId = requestIdFrom(c.req.header('x-request-id'));
  c.set('requestId', requestId);
  c.header('x-request-id', requestId);
  const config = parseConfig(c.env);
  c.set('config', config);
  const log = createLogger(config.logLevel, { request_id: requestId });
  c.set('log', log);
  let handle: DbHandle | undefined;
  c.set('db', () => (handle ??= openDb(config)).db);
  let embedder: EmbedderClient | undefined;
  c.set('embedder', () => (embedder ??= new EmbedderClient(config.embedder, requestId)));
  const started = Date.now();
  try {
    await next();
  } finally {
    if (handle) {
      const closing = handle.close().catch(() => undefined);
      try {
        c.executionCtx.waitUntil(closing);
      } catch {
        await closing;
      }
    }
    const durationMs = Date.now() - started;
    try {
      c.res.headers.append('server-timing', `app;dur=${durationMs}`);
    } catch {
      // a response with immutable headers (none of ours today) goes out without it
    }
    log.info('request', {
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      duration_ms: durationMs,
      org_id: c.get('auth')?.orgId,
    });
  }
});
