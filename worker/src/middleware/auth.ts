/**
 * Bearer-JWT authentication. Algorithms are pinned per provider (HS256 for dev, RS256/ES256 for
 * JWKS); `none`, expired, not-yet-valid, wrong issuer/audience and a missing tenant claim are all
 * 401. The tenant (org id) is read from a configurable claim path such as `app_metadata.org_id`.
 */
import { createMiddleware } from 'hono/factory';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { Config } from '../env';
import { AppError } from '../errors';
import type { AppBindings } from './context';
import { MAX_TENANT_ID_CHARS, MAX_TOKEN_LENGTH } from '../limits';

export interface AuthContext {
  orgId: string;
  subject: string | undefined;
}

/** What a tenant (org) id may look like; the dev token endpoint validates against it too. */
export const TENANT_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,${MAX_TENANT_ID_CHARS - 1}}$`);
const jwksCache = new Map<string, JWTVerifyGetKey>();
const encoder = new TextEncoder();

export function claimAt(payload: JWTPayload, path: string): unknown {
  let cur: unknown = payload;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** The RFC 6750 challenge of every 401: `error="invalid_token"` when a token was presented. */
export function challenge(tokenSent: boolean, description?: string): Record<string, string> {
  let value = 'Bearer realm="heimdex"';
  if (tokenSent) {
    value += ', error="invalid_token"';
    if (description) value += `, error_description="${description.replace(/["\\]/g, "'")}"`;
  }
  return { 'www-authenticate': value };
}

/** 401 for a presented token that is not acceptable. */
function invalidToken(message: string): AppError {
  return new AppError('unauthorized', message, { headers: challenge(true, message) });
}

export async function verifyToken(token: string, auth: Config['auth']): Promise<AuthContext> {
  if (token.length > MAX_TOKEN_LENGTH) throw invalidToken('token too large');
  let payload: JWTPayload;
  try {
    if (auth.provider === 'dev') {
      ({ payload } = await jwtVerify(token, encoder.encode(auth.secret), {
        algorithms: ['HS256'],
        requiredClaims: ['exp'],
      }));
    } else {
      let jwks = jwksCache.get(auth.jwksUrl);
      if (!jwks) {
        jwks = createRemoteJWKSet(new URL(auth.jwksUrl), {
          cacheMaxAge: 10 * 60_000,
          cooldownDuration: 30_000,
        });
        jwksCache.set(auth.jwksUrl, jwks);
      }
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: ['RS256', 'ES256'],
        issuer: auth.issuer,
        audience: auth.audience,
        requiredClaims: ['exp'],
      }));
    }
  } catch (err) {
    // The identity provider's keys could not be fetched: not the caller's fault, so not a 401
    // (a client would throw away a good token). Retry shortly.
    if (auth.provider === 'jwks' && isJwksUnavailable(err)) {
      throw new AppError('dependency_unavailable', 'the identity provider keys are unavailable', {
        retryAfterSeconds: 5,
      });
    }
    throw invalidToken('invalid or expired token');
  }
  const org = claimAt(payload, auth.tenantClaim);
  if (typeof org !== 'string' || !TENANT_ID.test(org)) {
    throw invalidToken(`token has no valid tenant claim "${auth.tenantClaim}"`);
  }
  return { orgId: org, subject: payload.sub };
}

/**
 * A JWKS fetch that failed (network error, timeout, non-200, not a key set), as opposed to a bad
 * token: token problems are always specific JOSE errors (claims, signature, no matching key, …);
 * jose reports fetch problems as JWKSTimeout, JWKSInvalid or its generic JOSEError, and the
 * runtime's fetch failures are not JOSE errors at all.
 */
function isJwksUnavailable(err: unknown): boolean {
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  if (err instanceof joseErrors.JOSEError) return err.code === 'ERR_JOSE_GENERIC';
  return true;
}

/** Requires a valid bearer token; sets `auth` on the context. */
export const requireAuth = createMiddleware<AppBindings>(async function requireAuth(c, next) {
  const header = c.req.header('authorization') ?? '';
  const m = /^Bearer ([^\s]+)$/i.exec(header);
  if (!m) {
    // No Authorization header, or another scheme: no token was presented, so the challenge
    // carries no error code (RFC 6750 §3.1). A malformed Bearer header is an invalid token.
    throw new AppError('unauthorized', 'missing bearer token', {
      headers: challenge(header !== '' && /^Bearer\b/i.test(header)),
    });
  }
  c.set('auth', await verifyToken(m[1]!, c.var.config.auth));
  await next();
});
