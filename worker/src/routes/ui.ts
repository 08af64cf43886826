/** `GET /`: the search page (public HTML; it calls the API with the token the user gives it). */
import { createRoute } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppBindings } from '../middleware/context';
import { newNonce, pageHeaders } from '../ui/page';
import { renderSearchPage } from '../ui/search-page';
import { errorResponses, htmlPage } from './common';
import { devTokensEnabled } from './dev-token';

export const searchPageRoute = createRoute({
  method: 'get',
  path: '/',
  operationId: 'searchPage',
  tags: ['pages'],
  summary: 'The search page: sign in, add texts, watch jobs, search (HTML)',
  responses: {
    200: htmlPage('A self-contained HTML page (inline CSS/JS under a nonce CSP)'),
    ...errorResponses([]),
  },
});

export function registerUi(app: OpenAPIHono<AppBindings>): void {
  app.openapi(searchPageRoute, (c) => {
    const nonce = newNonce();
    const { config } = c.var;
    const html = renderSearchPage({
      nonce,
      devTokens: devTokensEnabled(config),
      tenantClaim: config.auth.tenantClaim,
    });
    return c.body(html, 200, pageHeaders(nonce));
  });
}
