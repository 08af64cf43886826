/** `GET /`: the search page (public HTML; it calls the API with the token the user gives it). */
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppBindings } from '../middleware/context';
import { newNonce, pageHeaders } from '../ui/page';
import { SEARCH_PAGE, renderSearchPage } from '../ui/search-page';
import { pageRoute } from './common';
import { devTokensEnabled } from './dev-token';

export const searchPageRoute = pageRoute('/', 'searchPage', SEARCH_PAGE);

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
