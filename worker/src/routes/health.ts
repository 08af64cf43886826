import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { sql } from 'drizzle-orm';
import type { AppBindings } from '../middleware/context';
import { errorResponses, json } from './common';

const Health = z.object({ status: z.literal('ok') }).openapi('Health');
const Ready = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.object({ database: z.enum(['ok', 'error']), embedder: z.enum(['ok', 'error']) }),
  })
  .openapi('Readiness');

export const healthzRoute = createRoute({
  method: 'get',
  path: '/healthz',
  operationId: 'healthz',
  tags: ['health'],
  summary: 'Liveness',
  responses: {
    200: json('Alive', Health),
    ...errorResponses([]),
  },
});

export const readyzRoute = createRoute({
  method: 'get',
  path: '/readyz',
  operationId: 'readyz',
  tags: ['health'],
  summary: 'Readiness: Postgres and the embedder are reachable',
  responses: {
    200: json('Ready', Ready),
    503: json('Not ready', Ready),
    ...errorResponses([]),
  },
});

export function registerHealth(app: OpenAPIHono<AppBindings>): void {
  app.openapi(healthzRoute, (c) => c.json({ status: 'ok' as const }, 200));
  app.openapi(readyzRoute, async (c) => {
    const [database, embedder] = await Promise.all([
      c.var
        .db()
        .execute(sql`select 1`)
        .then(() => 'ok' as const)
        .catch(() => 'error' as const),
      c.var
        .embedder()
        .ready()
        .then((ok) => (ok ? ('ok' as const) : ('error' as const))),
    ]);
    const ready = database === 'ok' && embedder === 'ok';
    return c.json(
      {
        status: ready ? ('ready' as const) : ('not_ready' as const),
        checks: { database, embedder },
      },
      ready ? 200 : 503,
    );
  });
}
