/**
 * One shared matrix of auth cases, run against every protected route: no token, malformed header,
 * garbage, wrong key, expired, not yet valid, alg none, missing/empty/invalid tenant, oversized.
 */
import { describe, expect, it } from 'vitest';
import { call, callRoute, expectProblem, secret, token, uniqueOrg } from './helpers';
import { MAX_TOKEN_LENGTH } from '../src/limits';
import { ROUTES } from './routes';
import type { OwnerFixture } from './routes';

// Auth is checked before anything is looked up, so any owner-shaped values will do here.
const nobody: OwnerFixture = {
  org: 'acme',
  token: '',
  asset: 'a1',
  segment: 's1',
  text: 'hello',
  jobId: crypto.randomUUID(),
  pointId: crypto.randomUUID(),
  batchId: crypto.randomUUID(),
};

function b64url(obj: unknown): string {
  return btoa(JSON.stringify(obj)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

const now = () => Math.floor(Date.now() / 1000);

const CASES: Array<{ name: string; header: () => Promise<string | undefined> }> = [
  { name: 'no Authorization header', header: async () => undefined },
  { name: 'not a Bearer scheme', header: async () => `Basic ${btoa('a:b')}` },
  { name: 'garbage token', header: async () => 'Bearer not.a.jwt' },
  {
    name: 'signed with another key',
    header: async () =>
      `Bearer ${await token('acme', { key: new TextEncoder().encode('x'.repeat(40)) })}`,
  },
  { name: 'expired', header: async () => `Bearer ${await token('acme', { exp: now() - 60 })}` },
  {
    name: 'not yet valid',
    header: async () => `Bearer ${await token('acme', { nbf: now() + 600 })}`,
  },
  {
    name: 'alg none',
    header: async () =>
      `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ org_id: 'acme', exp: now() + 600 })}.`,
  },
  { name: 'missing org claim', header: async () => `Bearer ${await token(null)}` },
  { name: 'empty org claim', header: async () => `Bearer ${await token('')}` },
  {
    name: 'org claim not a string',
    header: async () => `Bearer ${await token(null, { claims: { org_id: 42 } })}`,
  },
  {
    name: 'tampered signature',
    header: async () => {
      // Flip a character inside the signature: the last base64url character of a 32-byte HMAC
      // holds 2 padding bits, so changing it can decode to the very same signature.
      const t = await token('acme');
      const i = t.lastIndexOf('.') + 5;
      return `Bearer ${t.slice(0, i)}${t[i] === 'A' ? 'B' : 'A'}${t.slice(i + 1)}`;
    },
  },
  {
    name: `oversized token (over ${MAX_TOKEN_LENGTH} characters)`,
    header: async () =>
      `Bearer ${await token('acme', { claims: { pad: 'x'.repeat(MAX_TOKEN_LENGTH) } })}`,
  },
];

/** Cases in which no bearer token was presented: their challenge carries no error code. */
const NO_TOKEN = new Set(['no Authorization header', 'not a Bearer scheme']);

describe.each(ROUTES)('auth on $method $template', (route) => {
  it.each(CASES)('401 problem+json with a Bearer challenge: $name', async ({ name, header }) => {
    const res = await callRoute(route, nobody, await header());
    await expectProblem(res, 401, 'unauthorized');
    // RFC 6750 §3: every 401 challenges; error="invalid_token" where a token was sent.
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer realm="heimdex"/);
    if (NO_TOKEN.has(name)) expect(challenge).toBe('Bearer realm="heimdex"');
    else expect(challenge).toMatch(/^Bearer realm="heimdex", error="invalid_token"/);
  });
});

describe('a valid token', () => {
  it('is accepted and binds the tenant from org_id', async () => {
    const res = await call('GET', `/jobs/${crypto.randomUUID()}`, {
      token: await token(uniqueOrg()),
    });
    // Authenticated: an unknown job is a 404, not a 401.
    await expectProblem(res, 404, 'not_found');
  });

  it('uses HS256 only: an HS384 token with the right key is refused', async () => {
    const { SignJWT } = await import('jose');
    const t = await new SignJWT({ org_id: 'acme' })
      .setProtectedHeader({ alg: 'HS384' })
      .setExpirationTime('1h')
      .sign(secret());
    const res = await call('GET', `/jobs/${crypto.randomUUID()}`, { token: t });
    expect(res.status).toBe(401);
  });
});
