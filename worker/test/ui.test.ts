/**
 * The HTML pages (`/`, `/docs`) and the dev-only token endpoint, inside workerd. The pages' browser
 * behaviour is tested end to end in headless Chromium (test/e2e/ui.test.ts); here: headers, CSP,
 * self-containment, and when `POST /dev/token` exists.
 */
import { jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SEARCH_MODE, SEARCH_MODES } from '../../contract/internal';
import { call, envWith, expectProblem, secret, uniqueOrg } from './helpers';

const devEnv = envWith({ ENVIRONMENT: 'development', AUTH_PROVIDER: 'dev' });
const jwksEnv = (environment: string) =>
  envWith({
    ENVIRONMENT: environment,
    AUTH_PROVIDER: 'jwks',
    AUTH_JWKS_URL: 'https://idp.invalid/.well-known/jwks.json',
    AUTH_ISSUER: 'https://idp.invalid/',
    AUTH_AUDIENCE: 'heimdex',
  });

/** The CSP's nonce, checked against every inline <script> and <style>. */
function checkSelfContained(html: string, csp: string): void {
  const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
  expect(nonce).toBeTruthy();
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain(`style-src 'nonce-${nonce}'`);
  expect(csp).toContain("connect-src 'self'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
  const tags = [...html.matchAll(/<(script|style)\b([^>]*)>/g)];
  expect(tags.length).toBeGreaterThanOrEqual(2);
  for (const [, , attrs] of tags) expect(attrs).toContain(`nonce="${nonce}"`);
  // Nothing is loaded from elsewhere: no src/href to another origin, no external scripts or sheets.
  expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?(https?:)?\/\//i);
  expect(html).not.toMatch(/<script[^>]+\bsrc=/i);
  expect(html).not.toMatch(/<link[^>]+stylesheet/i);
  expect(html).not.toMatch(/\bon[a-z]+\s*=\s*["']/i); // no inline event handlers (CSP blocks them)
}

async function page(path: string, env = envWith()) {
  const res = await call('GET', path, { env });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('x-frame-options')).toBe('DENY');
  expect(res.headers.get('x-request-id')).toBeTruthy();
  const csp = res.headers.get('content-security-policy') ?? '';
  return { html: await res.text(), csp };
}

describe('GET / (the search page)', () => {
  it('is public, self-contained HTML under a nonce CSP', async () => {
    const { html, csp } = await page('/');
    checkSelfContained(html, csp);
    for (const id of ['token', 'asset', 'segment', 'text', 'add', 'jobs', 'query', 'results']) {
      expect(html).toContain(`id="${id}"`);
    }
  });

  it("offers every search mode with the API's default selected, and an explain toggle", async () => {
    const { html } = await page('/');
    const select = /<select id="mode" name="mode">(.*?)<\/select>/s.exec(html)?.[1] ?? '';
    const options = [...select.matchAll(/<option value="([^"]*)"( selected)?>([^<]*)<\/option>/g)];
    expect(options.map((o) => o[1])).toEqual([...SEARCH_MODES]);
    expect(options.filter((o) => o[2]).map((o) => o[1])).toEqual([DEFAULT_SEARCH_MODE]);
    expect(options.map((o) => o[3])).toEqual([
      'dense: by meaning',
      'keyword: exact words (BM25)',
      'hybrid: both, fused',
    ]);
    expect(html).toMatch(
      /<label class="check" for="explain"[^>]*><input id="explain" name="explain" type="checkbox">/,
    );
    expect(html).toContain('<label for="mode">Mode</label>');
    // The script sends the mode (and explain only when asked), labels the score by the mode the
    // API answered with, and renders each ranking's rank and score; text only via textContent.
    expect(html).toContain("mode: $('mode').value");
    expect(html).toContain("if ($('explain').checked) req.explain = true;");
    expect(html).toContain('const mode = data.mode || req.mode;');
    expect(html).toContain("SCORE_KIND = { dense: 'cosine', keyword: 'BM25', hybrid: 'fused' }");
    expect(html).toContain("for (const ranking of ['dense', 'keyword'])");
    expect(html).not.toMatch(/innerHTML|insertAdjacentHTML|document\.write/);
  });

  it('uses a fresh nonce for every response', async () => {
    const a = (await page('/')).csp;
    const b = (await page('/')).csp;
    expect(a).not.toBe(b);
  });

  it('offers dev-token minting only under ENVIRONMENT=development with AUTH_PROVIDER=dev', async () => {
    expect((await page('/')).html).toContain('data-dev-tokens="false"');
    expect((await page('/', devEnv)).html).toContain('data-dev-tokens="true"');
    expect((await page('/', jwksEnv('development'))).html).toContain('data-dev-tokens="false"');
  });

  it('tells the page which claim holds the tenant', async () => {
    const env = envWith({ AUTH_TENANT_CLAIM: 'app_metadata.org_id' });
    expect((await page('/', env)).html).toContain('data-tenant-claim="app_metadata.org_id"');
  });
});

describe('GET /docs (the API reference)', () => {
  it('is public, self-contained HTML that renders /openapi.json', async () => {
    const { html, csp } = await page('/docs');
    checkSelfContained(html, csp);
    expect(html).toContain("fetch('/openapi.json'");
    expect(html).toContain('Try it');
  });
});

describe('POST /dev/token', () => {
  it('mints a token the API accepts, for the requested org, in development', async () => {
    const org = uniqueOrg('dev');
    const res = await call('POST', '/dev/token', { body: { org_id: org }, env: devEnv });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; org_id: string; expires_at: string };
    expect(body.org_id).toBe(org);
    const { payload, protectedHeader } = await jwtVerify(body.token, secret(), {
      algorithms: ['HS256'],
    });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload.org_id).toBe(org);
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(Date.parse(body.expires_at)).toBe(payload.exp! * 1000);
    // The API takes it: an unknown job is a 404 for this org, not a 401.
    const job = await call('GET', `/jobs/${crypto.randomUUID()}`, { token: body.token });
    await expectProblem(job, 404, 'not_found');
  });

  it('puts the tenant where AUTH_TENANT_CLAIM says, and honours ttl_seconds', async () => {
    const env = envWith({ ENVIRONMENT: 'development', AUTH_TENANT_CLAIM: 'app_metadata.org_id' });
    const res = await call('POST', '/dev/token', {
      body: { org_id: 'acme', ttl_seconds: 120 },
      env,
    });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const { payload } = await jwtVerify(token, secret());
    expect(payload).toMatchObject({ app_metadata: { org_id: 'acme' } });
    expect(payload.org_id).toBeUndefined();
    expect(payload.exp! - payload.iat!).toBe(120);
    const job = await call('GET', `/jobs/${crypto.randomUUID()}`, { token, env });
    await expectProblem(job, 404, 'not_found');
  });

  it.each([
    ['missing org_id', {}, 'org_id'],
    ['org_id with a space', { org_id: 'a b' }, 'org_id'],
    ['org_id too long', { org_id: 'a'.repeat(129) }, 'org_id'],
    ['ttl below a minute', { org_id: 'acme', ttl_seconds: 5 }, 'ttl_seconds'],
    ['ttl above a day', { org_id: 'acme', ttl_seconds: 86_401 }, 'ttl_seconds'],
    ['unknown field', { org_id: 'acme', admin: true }, 'admin'],
  ])('400 in development: %s', async (_name, body, field) => {
    const res = await call('POST', '/dev/token', { body, env: devEnv });
    const problem = await expectProblem(res, 400, 'validation_failed');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
  });

  it.each([
    ['ENVIRONMENT=test', envWith()],
    ['ENVIRONMENT=development with AUTH_PROVIDER=jwks', jwksEnv('development')],
    ['ENVIRONMENT=production with AUTH_PROVIDER=jwks', jwksEnv('production')],
  ])('is a 404, like an unknown route, under %s', async (_name, env) => {
    for (const body of [{ org_id: 'acme' }, { nonsense: 1 }]) {
      const res = await call('POST', '/dev/token', { body, env });
      const problem = await expectProblem(res, 404, 'not_found');
      const unknown = await call('POST', '/dev/nothing-here', { body, env });
      expect(problem.detail).toBe((await expectProblem(unknown, 404, 'not_found')).detail);
    }
  });
});
