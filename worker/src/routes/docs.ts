/**
 * `GET /docs`: the interactive API reference, rendered in the browser from `/openapi.json`. The
 * document's own route is registered here too, so that the document lists every route served.
 */
import { z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppBindings } from '../middleware/context';
import { DOCS_PAGE, renderDocsPage } from '../ui/docs-page';
import { newNonce, pageHeaders } from '../ui/page';
import { errorResponses, operation, pageRoute } from './common';

export const docsPageRoute = pageRoute('/docs', 'apiReference', DOCS_PAGE);

export function registerDocs(app: OpenAPIHono<AppBindings>): void {
  app.openapi(docsPageRoute, (c) => {
    const nonce = newNonce();
    return c.body(renderDocsPage({ nonce }), 200, pageHeaders(nonce));
  });
  // Served by `app.doc31` (in app.ts); described here so the document covers it.
  app.openAPIRegistry.registerPath({
    ...operation('get', '/openapi.json', 'openApiDocument', 'pages'),
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
