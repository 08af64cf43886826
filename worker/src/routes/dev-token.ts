/**
 * `POST /dev/token`: mints a dev-mode JWT for an organisation, so the search page at `/` can sign
 * in with one click during local development. It exists only when ENVIRONMENT=development and
 * AUTH_PROVIDER=dev; everywhere else it answers 404 exactly like an unknown route. (Production
 * refuses AUTH_PROVIDER=dev at configuration time, so it can never be reached there.)
 */
import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { createMiddleware } from 'hono/factory';
import { SignJWT } from 'jose';
import type { Config } from '../env';
import { AppError } from '../errors';
import { TENANT_ID } from '../middleware/auth';
import type { AppBindings } from '../middleware/context';
import { BODY_ERRORS, errorResponses, jsonBody, json } from './common';

export const DEV_TOKEN_MAX_TTL_SECONDS = 86_400;

export const DevTokenRequest = z
  .object({
    org_id: z
      .string()
      .regex(TENANT_ID, 'letters, digits and . _ : @ - (at most 128, starting alphanumeric)')
      .openapi({ example: 'acme' }),
    ttl_seconds: z.number().int().min(60).max(DEV_TOKEN_MAX_TTL_SECONDS).default(3600),
  })
  .strict()
  .openapi('DevTokenRequest');

export const DevTokenResponse = z
  .object({
    token: z.string().openapi({ description: 'HS256 JWT signed with DEV_JWT_SECRET' }),
    token_type: z.literal('Bearer'),
    org_id: z.string(),
    expires_at: z.iso.datetime(),
  })
  .openapi('DevTokenResponse');

export function devTokensEnabled(config: Config): boolean {
  return config.environment === 'development' && config.auth.provider === 'dev';
}

/** Runs before body validation, so that outside development nothing distinguishes it from 404. */
const devOnly = createMiddleware<AppBindings>(async function devOnly(c, next) {
  if (!devTokensEnabled(c.var.config)) throw new AppError('not_found', 'no such route');
  await next();
});

export const devTokenRoute = createRoute({
  method: 'post',
  path: '/dev/token',
  operationId: 'mintDevToken',
  tags: ['development'],
  middleware: [devOnly] as const,
  summary: 'Mint a dev token for an organisation (local development only)',
  description:
    'Exists only when the Worker runs with ENVIRONMENT=development and AUTH_PROVIDER=dev ' +
    '(as `npm run dev` starts it); anywhere else it is a 404. The token carries the tenant in ' +
    'the configured AUTH_TENANT_CLAIM path.',
  request: jsonBody(DevTokenRequest),
  responses: {
    200: json('A signed dev token', DevTokenResponse),
    ...errorResponses([...BODY_ERRORS, 'not_found']),
  },
});

/** Claims with `value` at the dotted `path` (e.g. `app_metadata.org_id`). */
function claimsWith(path: string, value: string): Record<string, unknown> {
  const keys = path.split('.');
  let claims: Record<string, unknown> = { [keys.pop()!]: value };
  for (const key of keys.reverse()) claims = { [key]: claims };
  return claims;
}

export function registerDevToken(app: OpenAPIHono<AppBindings>): void {
  app.openapi(devTokenRoute, async (c) => {
    const { config } = c.var;
    if (config.auth.provider !== 'dev') throw new AppError('not_found', 'no such route');
    const { org_id, ttl_seconds } = c.req.valid('json');
    const expiresAt = Math.floor(Date.now() / 1000) + ttl_seconds;
    const token = await new SignJWT(claimsWith(config.auth.tenantClaim, org_id))
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('dev-ui')
      .setIssuedAt()
      .setExpirationTime(expiresAt)
      .sign(new TextEncoder().encode(config.auth.secret));
    return c.json(
      {
        token,
        token_type: 'Bearer' as const,
        org_id,
        expires_at: new Date(expiresAt * 1000).toISOString(),
      },
      200,
    );
  });
}
