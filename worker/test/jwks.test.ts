/**
 * AUTH_PROVIDER=jwks against a real JWKS HTTP server (started by the global setup, like an
 * identity provider such as Supabase): RS256 and ES256 accepted with issuer and audience enforced,
 * the tenant read from a nested claim path, every forgery refused, and keys cached.
 */
import { SignJWT, exportSPKI, importJWK } from 'jose';
import type { JWK } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import type { Env } from '../src/env';
import { UNREACHABLE, call, envWith, expectProblem, uniqueOrg, withUnreachable } from './helpers';

const jwks = inject('jwks');
const now = () => Math.floor(Date.now() / 1000);

/** A Worker env that trusts the fixture's JWKS (at `search`, so each test can get a fresh cache). */
function jwksEnv(search = '', overrides: Record<string, string> = {}): Env {
  return envWith({
    AUTH_PROVIDER: 'jwks',
    AUTH_JWKS_URL: `${jwks.url}/jwks.json${search}`,
    AUTH_ISSUER: jwks.issuer,
    AUTH_AUDIENCE: jwks.audience,
    AUTH_TENANT_CLAIM: 'app_metadata.org_id',
    DEV_JWT_SECRET: '',
    ...overrides,
  });
}

interface SignOptions {
  key?: JWK;
  alg?: string;
  claims?: Record<string, unknown>;
  issuer?: string;
  audience?: string;
  exp?: number;
  nbf?: number;
  kid?: string | null;
}

/** A Supabase-shaped access token: the tenant lives at app_metadata.org_id. */
async function sign(org: string | null, o: SignOptions = {}): Promise<string> {
  const key = o.key ?? jwks.rsa;
  const alg = o.alg ?? (key.alg as string);
  const claims = { ...(org === null ? {} : { app_metadata: { org_id: org } }), ...o.claims };
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg, ...(o.kid === null ? {} : { kid: o.kid ?? key.kid }) })
    .setSubject('user-1')
    .setIssuer(o.issuer ?? jwks.issuer)
    .setAudience(o.audience ?? jwks.audience)
    .setIssuedAt()
    .setExpirationTime(o.exp ?? now() + 600);
  if (o.nbf !== undefined) jwt.setNotBefore(o.nbf);
  return jwt.sign(await importJWK(key, alg));
}

async function getJob(t: string, env: Env): Promise<Response> {
  return call('GET', `/jobs/${crypto.randomUUID()}`, { token: t, env });
}

async function fetchCount(search: string): Promise<number> {
  const res = await fetch(`${jwks.url}/fetches?search=${encodeURIComponent(search)}`);
  return ((await res.json()) as { count: number }).count;
}

function b64url(obj: unknown): string {
  return btoa(JSON.stringify(obj)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

describe('AUTH_PROVIDER=jwks', () => {
  const env = jwksEnv();

  it.each([
    ['RS256', () => jwks.rsa],
    ['ES256', () => jwks.ec],
  ])('accepts a %s token and binds the tenant from app_metadata.org_id', async (_alg, key) => {
    const org = uniqueOrg();
    const t = await sign(org, { key: key() });
    // Authenticated: an unknown job is a 404, not a 401.
    await expectProblem(await getJob(t, env), 404, 'not_found');
    // The tenant is really the nested claim: an embed lands in that org's job list.
    const res = await call('POST', '/vectors/embed', {
      token: t,
      env: jwksEnv('', { QUEUE_SEND_DISABLED: 'true' }),
      body: { asset_id: 'a', segment_id: 's', text: 'Signed by the identity provider' },
    });
    expect(res.status).toBe(202);
  });

  const forged: Array<[string, () => Promise<string>]> = [
    ['wrong issuer', () => sign('acme', { issuer: 'https://evil.example/auth/v1' })],
    ['wrong audience', () => sign('acme', { audience: 'service_role' })],
    ['expired', () => sign('acme', { exp: now() - 60 })],
    ['not yet valid', () => sign('acme', { nbf: now() + 600 })],
    ['a key the JWKS does not serve', () => sign('acme', { key: jwks.stranger })],
    [
      'a known kid on a token signed by another key',
      () => sign('acme', { key: jwks.stranger, kid: jwks.rsa.kid as string }),
    ],
    [
      'HS256 signed with the RSA public key (algorithm confusion)',
      async () => {
        const { kty, n, e } = jwks.rsa;
        const spki = await exportSPKI((await importJWK({ kty, n, e }, 'RS256')) as CryptoKey);
        return new SignJWT({ app_metadata: { org_id: 'acme' } })
          .setProtectedHeader({ alg: 'HS256', kid: jwks.rsa.kid as string })
          .setIssuer(jwks.issuer)
          .setAudience(jwks.audience)
          .setExpirationTime('1h')
          .sign(new TextEncoder().encode(spki));
      },
    ],
    [
      'alg none',
      async () =>
        `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({
          app_metadata: { org_id: 'acme' },
          iss: jwks.issuer,
          aud: jwks.audience,
          exp: now() + 600,
        })}.`,
    ],
    ['the tenant claim missing', () => sign(null)],
    [
      'the tenant only at the top level, not at the configured path',
      () => sign(null, { claims: { org_id: 'acme' } }),
    ],
    ['an empty tenant claim', () => sign('')],
    [
      'a tampered payload',
      async () => {
        const [h, , s] = (await sign('acme')).split('.');
        const payload = b64url({
          app_metadata: { org_id: 'victim' },
          iss: jwks.issuer,
          aud: jwks.audience,
          exp: now() + 600,
        });
        return `${h}.${payload}.${s}`;
      },
    ],
  ];

  it.each(forged)('401 for %s', async (_name, make) => {
    await expectProblem(await getJob(await make(), env), 401, 'unauthorized');
  });

  it('fetches the JWKS once and serves later requests from its cache', async () => {
    const search = `?cache-test=${crypto.randomUUID()}`;
    const cached = jwksEnv(search);
    for (let i = 0; i < 5; i++) {
      await expectProblem(await getJob(await sign(uniqueOrg()), cached), 404, 'not_found');
    }
    expect(await fetchCount(search)).toBe(1);
  });

  it('503 with Retry-After (not 401) when the JWKS cannot be reached', async () => {
    const down = jwksEnv('', { AUTH_JWKS_URL: `${UNREACHABLE}/jwks.json` });
    const signed = await sign('acme');
    const { result: res } = await withUnreachable(UNREACHABLE, () => getJob(signed, down));
    await expectProblem(res, 503, 'dependency_unavailable');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('401, not 503, for a garbage token even when the JWKS is unreachable', async () => {
    const down = jwksEnv('', { AUTH_JWKS_URL: `${UNREACHABLE}/jwks.json` });
    const { result } = await withUnreachable(UNREACHABLE, () => getJob('not.a.jwt', down));
    await expectProblem(result, 401, 'unauthorized');
  });

  it('refuses to start without issuer and audience (fails closed)', async () => {
    const res = await getJob(await sign('acme'), jwksEnv('', { AUTH_ISSUER: '' }));
    await expectProblem(res, 500, 'misconfigured');
  });
});
