/**
 * One shared matrix of auth cases, run against every protected route: no token, malformed header,
 * garbage, wrong key, expired, not yet valid, alg none, missing/empty/invalid tenant, oversized.
 */
import { describe, expect, it } from 'vitest';
import { call, expectProblem, secret, token, uniqueOrg } from './helpers';

const ROUTES: Array<{ method: string; path: string; body?: unknown }> = [
  {
    method: 'POST',
    path: '/vectors/embed',
    body: { asset_id: 'a', segment_id: 's', text: 'hello' },
  },
  { method: 'POST', path: '/vectors/search', body: { query_text: 'hello' } },
  {
    method: 'POST',
    path: '/vectors/embed/batch',
    body: { asset_id: 'a', segments: [{ segment_id: 's', text: 'hello' }] },
  },
  { method: 'GET', path: `/jobs/${crypto.randomUUID()}` },
  { method: 'DELETE', path: `/vectors/points/${crypto.randomUUID()}` },
  { method: 'DELETE', path: '/vectors/assets/a1' },
];

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
      const t = await token('acme');
      const last = t.at(-1) === 'A' ? 'B' : 'A';
      return `Bearer ${t.slice(0, -1)}${last}`;
    },
  },
  {
    name: 'oversized token (8 KB+)',
    header: async () => `Bearer ${await token('acme', { claims: { pad: 'x'.repeat(9000) } })}`,
  },
];

describe.each(ROUTES)('auth on $method $path', (route) => {
  it.each(CASES)('401 problem+json: $name', async ({ header }) => {
    const h = await header();
    const res = await call(route.method, route.path, {
      body: route.body,
      headers: h ? { authorization: h } : {},
    });
    await expectProblem(res, 401, 'unauthorized');
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
