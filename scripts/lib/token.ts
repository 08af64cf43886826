/**
 * The one minter of dev-mode tokens (the Worker's AUTH_PROVIDER=dev): HS256 JWTs signed with
 * DEV_JWT_SECRET that carry the organisation at the AUTH_TENANT_CLAIM path. `npm run token`, the
 * CLI, the end-to-end and reliability helpers, the bench and the Worker's own tests mint with it.
 * It imports nothing from Node, so it also runs inside workerd.
 */
import { SignJWT } from 'jose';

/** The Worker's default AUTH_TENANT_CLAIM. */
export const DEFAULT_TENANT_CLAIM = 'org_id';

export interface DevTokenOptions {
  /** DEV_JWT_SECRET, or the raw key bytes. */
  secret: string | Uint8Array;
  /** The organisation; null leaves the tenant claim out (a token the Worker must refuse). */
  org: string | null;
  /** AUTH_TENANT_CLAIM: a dotted claim path such as `app_metadata.org_id` (default `org_id`). */
  tenantClaim?: string | undefined;
  subject?: string | undefined;
  /** Lifetime in seconds (default 3600). */
  ttlSeconds?: number | undefined;
  /** Absolute expiry, in seconds since the epoch; wins over `ttlSeconds`. */
  expiresAt?: number | undefined;
  /** `nbf`, in seconds since the epoch. */
  notBefore?: number | undefined;
  /** Further claims, set over the tenant claim. */
  claims?: Record<string, unknown> | undefined;
}

/** Claims with `value` at the dotted `path`: `claimsAt('app_metadata.org_id', 'acme')`. */
export function claimsAt(path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.');
  let claims: Record<string, unknown> = { [keys.pop() as string]: value };
  for (const key of keys.reverse()) claims = { [key]: claims };
  return claims;
}

/** Mints a dev-mode token for `org`, as the Worker's AUTH_PROVIDER=dev verifies it. */
export async function mintDevToken(opts: DevTokenOptions): Promise<string> {
  const tenant =
    opts.org === null ? {} : claimsAt(opts.tenantClaim || DEFAULT_TENANT_CLAIM, opts.org);
  const jwt = new SignJWT({ ...tenant, ...opts.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.subject ?? 'dev-user')
    .setIssuedAt()
    .setExpirationTime(opts.expiresAt ?? `${opts.ttlSeconds ?? 3600}s`);
  if (opts.notBefore !== undefined) jwt.setNotBefore(opts.notBefore);
  const key = typeof opts.secret === 'string' ? new TextEncoder().encode(opts.secret) : opts.secret;
  return jwt.sign(key);
}
