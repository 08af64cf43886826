/**
 * `GET /docs`: the interactive API reference, rendered in the browser from `/openapi.json`. The
 * document's own route is registered here too, so that the document lists every route served.
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppBindings } from '../middleware/context';
import { renderDocsPage } from '../ui/docs-page';
import { newNonce, pageHeaders } from '../ui/page';
import { errorResponses, htmlPage } from './common';

export const docsPageRoute = createRoute({
  method: 'get',
  path: '/docs',
  operationId: 'apiReference',
  tags: ['pages'],
  summary: 'Interactive API reference with "Try it" forms (HTML)',
  responses: {
    200: htmlPage('A self-contained HTML page that renders /openapi.json'),
    ...errorResponses([]),
  },
});

export function registerDocs(app: OpenAPIHono<AppBindings>): void {
  app.openapi(docsPageRoute, (c) => {
    const nonce = newNonce();
    return c.body(renderDocsPage({ nonce }), 200, pageHeaders(nonce));
  });
  // Served by `app.doc31` (in app.ts); described here so the document covers it.
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/openapi.json',
    operationId: 'openApiDocument',
    tags: ['pages'],
    summary: 'This OpenAPI 3.1 document, generated from the request and response schemas',
    responses: {
      200: {
        description: 'The OpenAPI document',
        content: { 'application/json': { schema: z.object({}).passthrough() } },
      },
      ...errorResponses([]),
    },
  });
}
