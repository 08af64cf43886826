import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './context.js';
import { ApiError } from './errors.js';

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/**
 * Service authentication for /internal routes: `Authorization: Bearer <EMBEDDER_TOKEN>`.
 * Both sides are hashed first, so the comparison is constant-time whatever the lengths.
 */
export function serviceAuth(options: { token: string }): MiddlewareHandler<AppEnv> {
  if (options.token.length < 16) throw new Error('service token must be at least 16 characters');
  const expected = sha256(options.token);
  const challenge = { 'www-authenticate': 'Bearer realm="heimdex-embedder"' };
  return async function serviceAuthMiddleware(c, next) {
    const header = c.req.header('authorization');
    if (!header) {
      throw new ApiError('unauthorized', 'missing Authorization: Bearer <service token>', {
        headers: challenge,
      });
    }
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
    const presented = match?.[1];
    if (!presented || !timingSafeEqual(sha256(presented), expected)) {
      throw new ApiError('unauthorized', 'invalid service token', { headers: challenge });
    }
    await next();
  };
}
