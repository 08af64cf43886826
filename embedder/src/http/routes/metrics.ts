import type { Hono } from 'hono';
import type { Registry } from 'prom-client';
import type { AppEnv } from '../context.js';

/** GET /metrics: Prometheus text exposition; behind the service credential like /internal. */
export function registerMetrics(app: Hono<AppEnv>, registry: Registry): void {
  app.get('/metrics', async (c) => {
    const body = await registry.metrics();
    return c.body(body, 200, { 'content-type': registry.contentType });
  });
}
