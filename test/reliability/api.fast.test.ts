/**
 * The public API against hostile input, through the real stack, driven by the shared route table
 * (worker/test/routes.ts): every route's malformed and out-of-contract requests (each must get its
 * status and a problem+json body, and write nothing), a catalogue of forged and broken tokens
 * against a JWKS-configured production Worker (each 401 on every route), and cross-tenant access
 * to every route (404 or empty).
 */
import { SignJWT, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TENANT_ID_CHARS, MAX_TOKEN_LENGTH } from '../../worker/src/limits.js';
import { checkProblem, expectFieldErrors, expectProblem } from '../../worker/test/problem.js';
import type { ProblemBody } from '../../worker/test/problem.js';
import { ROUTES, badRequests } from '../../worker/test/routes.js';
import type { OwnerFixture, RouteCase } from '../../worker/test/routes.js';
import { mintDevToken } from '../../scripts/lib/token.js';
import { Api } from '../helpers/api.js';
import { recordFigures } from '../helpers/report.js';
import { startJwksServer } from '../helpers/jwks.js';
import { rerankerEnv } from '../helpers/paths.js';
import type { JwksServer } from '../helpers/jwks.js';
import { startWorkerOnly } from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';
import { runSuffix, useTestStack } from '../helpers/suite.js';

const run = runSuffix();

// The embedder serves a reranker too, so that POST /v1/rerank's cases reach a real one.
const suite = useTestStack({ name: 'rel-api', env: rerankerEnv() });
let jwksWorker: TestStack;
let jwks: JwksServer;

beforeAll(async () => {
  jwks = await startJwksServer();
  // A production Worker with JWKS auth (Supabase-style tenant claim) over the same database.
  jwksWorker = await startWorkerOnly(suite.stack, {
    name: 'rel-jwks',
    workerVars: {
      ENVIRONMENT: 'production',
      AUTH_PROVIDER: 'jwks',
      AUTH_JWKS_URL: jwks.url,
      AUTH_ISSUER: jwks.issuer,
      AUTH_AUDIENCE: jwks.audience,
      AUTH_TENANT_CLAIM: 'app_metadata.org_id',
    },
  });
}, 240_000);

afterAll(async () => {
  await jwksWorker?.dispose();
  await jwks?.close();
}, 60_000);

/** Runs `route`'s request against `apiUrl` with the given Authorization header (or none). */
function callRoute(
  apiUrl: string,
  route: RouteCase,
  owner: OwnerFixture,
  authorization: string | undefined,
): Promise<Response> {
  const { path, body } = route.request(owner);
  const headers: Record<string, string> = authorization ? { authorization } : {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  return fetch(apiUrl + path, {
    method: route.method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Owner-shaped values for requests that must be refused before anything is looked up. */
const nobody: OwnerFixture = {
  org: 'nobody',
  token: '',
  asset: 'a',
  segment: 's',
  text: 'attack',
  jobId: '00000000-0000-4000-8000-000000000001',
  pointId: '00000000-0000-4000-8000-000000000002',
  batchId: '00000000-0000-4000-8000-000000000003',
};

// ---------------------------------------------------------------------------------------------
// Bad input catalogue: every route's error cases (worker/test/routes.ts)
// ---------------------------------------------------------------------------------------------

const BAD_INPUTS = badRequests();

describe('bad input catalogue', () => {
  const org = `bad-${run}`;
  let client: Api;
  let anon: Api;

  beforeAll(async () => {
    client = await Api.forOrg(suite.stack.apiUrl, suite.stack.devJwtSecret, org);
    anon = new Api(suite.stack.apiUrl);
  });

  it.each(BAD_INPUTS.map((c) => [`${c.method} ${c.path.slice(0, 40)}: ${c.name}`, c] as const))(
    '%s',
    async (_name, c) => {
      const before = await suite.db.counts();
      const headers: Record<string, string> = { ...c.headers };
      let body: string | Uint8Array | undefined;
      if (c.body !== undefined) {
        body =
          typeof c.body === 'string' || c.body instanceof Uint8Array
            ? c.body
            : JSON.stringify(c.body);
        const type = c.contentType === undefined ? 'application/json' : c.contentType;
        if (type !== null) headers['content-type'] = type;
      }
      const res = await (c.anonymous ? anon : client).raw<ProblemBody>(c.method, c.path, {
        body,
        headers,
      });
      const problem = checkProblem(res, c.status, c.code);
      if (c.fields) expectFieldErrors(problem, c.fields);
      c.check?.(problem, res.headers);
      expect(await suite.db.counts(), 'nothing was written').toEqual(before);
    },
  );

  it('wrote no job, outbox row or vector for the tenant', async () => {
    expect(await suite.db.jobCount(org)).toBe(0);
    expect(await suite.vectors.count(org)).toBe(0);
    recordFigures('bad_input_catalogue', {
      cases: BAD_INPUTS.length,
      by_status: BAD_INPUTS.reduce<Record<number, number>>((m, c) => {
        m[c.status] = (m[c.status] ?? 0) + 1;
        return m;
      }, {}),
      rows_written: 0,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Auth attack catalogue (AUTH_PROVIDER=jwks, ENVIRONMENT=production)
// ---------------------------------------------------------------------------------------------

const b64url = (v: unknown) =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('auth attack catalogue (JWKS provider)', () => {
  const org = `jwks-${run}`;
  const claims = () => ({ sub: 'user-1', app_metadata: { org_id: org } });
  const now = () => Math.floor(Date.now() / 1000);
  const probeJob = '/jobs/00000000-0000-4000-8000-000000000001';

  /** Tries `authorization` on every route of the table (refused before anything is looked up). */
  async function callEvery(authorization: string | undefined) {
    const out: Array<{ route: RouteCase; res: Response }> = [];
    for (const route of ROUTES) {
      out.push({ route, res: await callRoute(jwksWorker.apiUrl, route, nobody, authorization) });
    }
    return out;
  }

  /** A probe job and an embed, the control's two requests. */
  async function call(token: string) {
    const a = new Api(jwksWorker.apiUrl);
    const headers = { authorization: `Bearer ${token}` };
    const get = await a.raw<ProblemBody>('GET', probeJob, { headers });
    const post = await a.raw<ProblemBody>('POST', '/vectors/embed', {
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ asset_id: 'a', segment_id: 's', text: 'attack' }),
    });
    return { get, post };
  }

  it('accepts a valid RS256 and a valid ES256 token (the control)', async () => {
    const client = new Api(jwksWorker.apiUrl, await jwks.sign(claims()));
    for (const alg of ['RS256', 'ES256'] as const) {
      const { get, post } = await call(await jwks.sign(claims(), { alg }));
      // Authenticated: the probe job simply does not exist, and the embed is accepted.
      checkProblem(get, 404, 'not_found');
      expect([200, 202]).toContain(post.status);
      const job = await client.waitForJob((post.body as unknown as { job_id: string }).job_id);
      expect(job.status).toBe('SUCCEEDED');
    }
    // The signed-in tenant is the one in the claim path.
    expect(await suite.db.jobCount(org)).toBe(1);
    const s = await new Api(jwksWorker.apiUrl, await jwks.sign(claims())).search({
      query_text: 'anything at all',
    });
    expect(s.status).toBe(200);
    expect(jwks.fetches()).toBeGreaterThanOrEqual(1);
  });

  const attacks: Array<[string, () => Promise<{ token?: string; authorization?: string }>]> = [
    [
      'alg none',
      async () => ({
        token: `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...claims(), iss: jwks.issuer, aud: jwks.audience, exp: now() + 600 })}.`,
      }),
    ],
    [
      'alg NONE (case variant)',
      async () => ({
        token: `${b64url({ alg: 'NONE' })}.${b64url({ ...claims(), iss: jwks.issuer, aud: jwks.audience, exp: now() + 600 })}.`,
      }),
    ],
    [
      'HS256 signed with the RSA public key (PEM) as the secret',
      async () => ({
        token: await hs256(new TextEncoder().encode(jwks.rsa.publicPem), { kid: jwks.rsa.kid }),
      }),
    ],
    [
      'HS256 signed with the RSA public JWK as the secret',
      async () => ({
        token: await hs256(new TextEncoder().encode(JSON.stringify(jwks.rsa.publicJwk)), {
          kid: jwks.rsa.kid,
        }),
      }),
    ],
    [
      'HS256 signed with the dev secret (another provider)',
      async () => ({ token: await hs256(new TextEncoder().encode(suite.stack.devJwtSecret)) }),
    ],
    [
      'RS512 with the JWKS key material (algorithm not allowed)',
      async () => ({ token: await jwks.sign(claims(), { alg: 'RS512' }) }),
    ],
    [
      'PS256 with the JWKS key material (algorithm not allowed)',
      async () => ({ token: await jwks.sign(claims(), { alg: 'PS256' }) }),
    ],
    [
      'expired',
      async () => ({ token: await jwks.sign({ ...claims(), iat: now() - 7200, exp: now() - 60 }) }),
    ],
    [
      'not yet valid (nbf in the future)',
      async () => ({ token: await jwks.sign({ ...claims(), nbf: now() + 3600 }) }),
    ],
    ['no exp', async () => ({ token: await jwks.sign({ ...claims(), exp: undefined }) })],
    [
      'wrong issuer',
      async () => ({
        token: await jwks.sign({ ...claims(), iss: 'https://evil.example/auth/v1' }),
      }),
    ],
    ['no issuer', async () => ({ token: await jwks.sign({ ...claims(), iss: undefined }) })],
    [
      'wrong audience',
      async () => ({ token: await jwks.sign({ ...claims(), aud: 'someone-else' }) }),
    ],
    [
      'audience list without ours',
      async () => ({ token: await jwks.sign({ ...claims(), aud: ['a', 'b'] }) }),
    ],
    [
      'missing org claim',
      async () => ({ token: await jwks.sign({ sub: 'user-1', app_metadata: {} }) }),
    ],
    [
      'empty org claim',
      async () => ({ token: await jwks.sign({ sub: 'user-1', app_metadata: { org_id: '' } }) }),
    ],
    [
      'org claim at the wrong path (top level)',
      async () => ({ token: await jwks.sign({ sub: 'user-1', org_id: org }) }),
    ],
    [
      'numeric org claim',
      async () => ({ token: await jwks.sign({ app_metadata: { org_id: 42 } }) }),
    ],
    [
      'array org claim',
      async () => ({ token: await jwks.sign({ app_metadata: { org_id: [org] } }) }),
    ],
    [
      'org claim with a path separator',
      async () => ({ token: await jwks.sign({ app_metadata: { org_id: `${org}/../x` } }) }),
    ],
    [
      `org claim of ${MAX_TENANT_ID_CHARS + 1} characters`,
      async () => ({
        token: await jwks.sign({ app_metadata: { org_id: 'o'.repeat(MAX_TENANT_ID_CHARS + 1) } }),
      }),
    ],
    ['tampered signature', async () => ({ token: flipSignature(await jwks.sign(claims())) })],
    [
      'signature removed',
      async () => ({ token: (await jwks.sign(claims())).split('.').slice(0, 2).join('.') + '.' }),
    ],
    [
      'tampered payload (another org, original signature)',
      async () => ({
        token: swapPayload(await jwks.sign(claims()), {
          ...claims(),
          app_metadata: { org_id: 'victim' },
        }),
      }),
    ],
    [
      'unknown kid, signed by a key not in the JWKS',
      async () => ({
        token: await jwks.sign(claims(), {
          kid: 'attacker',
          key: (await generateKeyPair('RS256')).privateKey,
        }),
      }),
    ],
    [
      'known kid, signed by another key',
      async () => ({
        token: await jwks.sign(claims(), { key: (await generateKeyPair('RS256')).privateKey }),
      }),
    ],
    ['embedded jwk header (self-signed)', async () => ({ token: await selfSignedWithJwkHeader() })],
    [
      'jku header pointing elsewhere',
      async () => ({
        token: await jwksSignWithHeader(
          { jku: 'http://127.0.0.1:9/evil.json' },
          { key: (await generateKeyPair('RS256')).privateKey },
        ),
      }),
    ],
    [
      'unknown crit header (validly signed)',
      async () => ({
        token: await signRaw({ alg: 'RS256', kid: jwks.rsa.kid, crit: ['x-evil'], 'x-evil': 1 }),
      }),
    ],
    ['garbage', async () => ({ token: 'not-a-jwt' })],
    ['two segments', async () => ({ token: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0' })],
    [
      'header is not JSON',
      async () => ({ token: `${b64url('not json')}.${b64url(claims())}.c2ln` }),
    ],
    [
      `valid token of more than ${MAX_TOKEN_LENGTH} characters`,
      async () => ({ token: await jwks.sign({ ...claims(), pad: 'p'.repeat(MAX_TOKEN_LENGTH) }) }),
    ],
    ['empty bearer', async () => ({ authorization: 'Bearer ' })],
    ['Basic scheme', async () => ({ authorization: 'Basic dXNlcjpwYXNz' })],
    ['no Authorization header', async () => ({})],
  ];

  async function hs256(secret: Uint8Array, header: Record<string, string> = {}) {
    return new SignJWT({ ...claims(), iss: jwks.issuer, aud: jwks.audience })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(secret);
  }
  /** Signs any header as given (jose refuses to produce some of these), RS256 with the JWKS key. */
  async function signRaw(header: Record<string, unknown>) {
    const payload = { ...claims(), iss: jwks.issuer, aud: jwks.audience, exp: now() + 600 };
    const input = `${b64url(header)}.${b64url(payload)}`;
    const sig = await crypto.subtle.sign(
      'RSASSA-PKCS1-v1_5',
      jwks.rsa.privateKey,
      new TextEncoder().encode(input),
    );
    return `${input}.${Buffer.from(sig).toString('base64url')}`;
  }
  function flipSignature(token: string) {
    const [h, p, s] = token.split('.') as [string, string, string];
    const i = Math.floor(s.length / 2);
    return `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
  }
  function swapPayload(token: string, payload: Record<string, unknown>) {
    const [h, p, s] = token.split('.') as [string, string, string];
    const original = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    return `${h}.${b64url({ ...original, ...payload })}.${s}`;
  }
  async function jwksSignWithHeader(header: Record<string, unknown>, o: { key?: CryptoKey } = {}) {
    return new SignJWT({ ...claims(), iss: jwks.issuer, aud: jwks.audience })
      .setProtectedHeader({ alg: 'RS256', kid: jwks.rsa.kid, ...header })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(o.key ?? jwks.rsa.privateKey);
  }
  async function selfSignedWithJwkHeader() {
    const { exportJWK } = await import('jose');
    const pair = await generateKeyPair('RS256', { extractable: true });
    return new SignJWT({ ...claims(), iss: jwks.issuer, aud: jwks.audience })
      .setProtectedHeader({ alg: 'RS256', jwk: await exportJWK(pair.publicKey) })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(pair.privateKey);
  }

  it.each(attacks)('rejects %s with 401 on every route and writes nothing', async (_name, make) => {
    const before = await suite.db.counts();
    const { token, authorization } = await make();
    const header = authorization ?? (token === undefined ? undefined : `Bearer ${token}`);
    for (const { route, res } of await callEvery(header)) {
      expect(res.status, `${route.method} ${route.template}`).toBe(401);
      await expectProblem(res, 401, 'unauthorized');
    }
    expect(await suite.db.counts()).toEqual(before);
  });

  afterAll(() => {
    recordFigures('auth_attacks', {
      attacks: attacks.length,
      routes_per_attack: ROUTES.length,
      status: 401,
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Tenant isolation
// ---------------------------------------------------------------------------------------------

describe('cross-tenant access', () => {
  const text = 'Confidential quarterly merger plans for the northern subsidiary';
  let acme: Api;
  let globex: Api;
  let jobId: string;
  let pointId: string;
  let owner: OwnerFixture;

  beforeAll(async () => {
    acme = await Api.forOrg(suite.stack.apiUrl, suite.stack.devJwtSecret, `acme-${run}`);
    globex = await Api.forOrg(suite.stack.apiUrl, suite.stack.devJwtSecret, `globex-${run}`);
    const res = await acme.request<{ batch_id: string; jobs: Array<{ job_id: string }> }>(
      'POST',
      '/vectors/embed/batch',
      { asset_id: 'deal', segments: [{ segment_id: 'p1', text }] },
    );
    expect(res.status).toBe(202);
    jobId = res.body.jobs[0]!.job_id;
    const job = await acme.waitForJob(jobId, 30_000);
    expect(job.status).toBe('SUCCEEDED');
    pointId = job.result!.point_id;
    owner = {
      org: `acme-${run}`,
      token: '',
      asset: 'deal',
      segment: 'p1',
      text,
      jobId,
      pointId,
      batchId: res.body.batch_id,
    };
  });

  /** The owner still has its job and its one vector, found first for its own text. */
  async function expectOwnerIntact() {
    expect((await acme.job(jobId)).body).toMatchObject({ status: 'SUCCEEDED' });
    expect(await suite.vectors.count(`acme-${run}`)).toBe(1);
    const still = await acme.search({ query_text: text, asset_id: 'deal', mode: 'dense' });
    expect(still.body.results[0]).toMatchObject({ point_id: pointId });
    expect(still.body.results[0]!.score).toBeGreaterThan(0.99);
  }

  it.each(ROUTES)(
    "another tenant's token on $method $template sees none of the owner's data",
    async (route) => {
      const intruder = await mintDevToken({
        secret: suite.stack.devJwtSecret,
        org: `intruder-${run}-${ROUTES.indexOf(route)}`, // a fresh tenant per route
      });
      const res = await callRoute(suite.stack.apiUrl, route, owner, `Bearer ${intruder}`);
      await route.expectIsolated(res, owner);
      await expectOwnerIntact();
    },
  );

  it("another tenant's job is a 404", async () => {
    checkProblem(await globex.job(jobId), 404, 'not_found');
  });

  it("another tenant's search finds nothing, even with the asset filter", async () => {
    for (const body of [
      { query_text: text, limit: 100 },
      { query_text: text, asset_id: 'deal' },
      { query_text: text, asset_id: 'deal', segment_id: 'p1' },
    ]) {
      const res = await globex.search(body);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ results: [], total: 0 });
    }
  });

  it('another tenant cannot delete the point (404) or the asset (nothing deleted)', async () => {
    checkProblem(await globex.deletePoint(pointId), 404, 'not_found');
    const asset = await globex.deleteAsset('deal');
    expect(asset.status).toBe(200);
    expect(asset.body).toEqual({ deleted: 0, cancelled_jobs: 0 });
    await expectOwnerIntact();
  });

  it('the same ids and text in another tenant are another job and another point', async () => {
    const res = await globex.embed({ asset_id: 'deal', segment_id: 'p1', text });
    expect(res.status).toBe(202);
    expect(res.body.job_id).not.toBe(jobId);
    const job = await globex.waitForJob(res.body.job_id, 30_000);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.result!.point_id).not.toBe(pointId);
    const [acmePoint] = await suite.vectors.points(`acme-${run}`);
    expect(acmePoint).toMatchObject({ id: pointId, job_id: jobId });
    // And the owner can delete its own point.
    const del = await acme.deletePoint(pointId);
    expect(del.status).toBe(200);
    expect(del.body.deleted).toBe(1);
    expect(await suite.vectors.count(`globex-${run}`)).toBe(1);
  });
});
