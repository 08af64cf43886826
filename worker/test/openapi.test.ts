/**
 * The OpenAPI document against the app that serves it: the document is structurally sound, lists
 * every route the app serves (and nothing else), and documents the problem+json errors each route
 * really returns. The error expectations are not a hand-kept list: every operation is probed with
 * requests that must fail (no token, wrong content type, malformed and oversized bodies, bad and
 * unknown path parameters, a misconfigured Worker) and every error status observed must be in the
 * document, under the code the response carried.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/errors';
import type { ErrorCode } from '../src/errors';
import { app } from '../src/index';
import { MAX_BODY_BYTES } from '../src/app';
import { call, envWith, token, uniqueOrg } from './helpers';

interface Media {
  schema?: { $ref?: string };
}
interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: Array<{ name: string; in: string; required?: boolean }>;
  requestBody?: { content: Record<string, Media> };
  responses?: Record<string, { description: string; content?: Record<string, Media> }>;
}
interface Doc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const PROBLEM_REF = '#/components/schemas/Problem';

async function loadDoc(): Promise<Doc> {
  const res = await call('GET', '/openapi.json');
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
}

function operations(doc: Doc): Array<{ key: string; method: string; path: string; op: Operation }> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((method) => ({
      key: `${method.toUpperCase()} ${path}`,
      method,
      path,
      op: item[method]!,
    })),
  );
}

/** The routes Hono actually serves (middleware entries excluded), as `METHOD /openapi/{path}`. */
function servedRoutes(): string[] {
  const keys = app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
  return [...new Set(keys)].sort();
}

function resolvePointer(doc: unknown, ref: string): unknown {
  let cur: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function collectRefs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => collectRefs(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else collectRefs(v, out);
    }
  }
  return out;
}

const isAuthenticated = (op: Operation) => (op.security ?? []).some((s) => 'bearerAuth' in s);
const hasJsonBody = (op: Operation) => Boolean(op.requestBody?.content['application/json']);

describe('the OpenAPI document is well-formed', () => {
  it('is OpenAPI 3.1 with info, paths and the bearerAuth scheme', async () => {
    const doc = await loadDoc();
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBeTruthy();
    expect(doc.info.version).toBeTruthy();
    expect(Object.keys(doc.paths).length).toBeGreaterThan(5);
    expect(doc.components.securitySchemes.bearerAuth).toEqual({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
  });

  it('resolves every $ref', async () => {
    const doc = await loadDoc();
    const refs = collectRefs(doc);
    expect(refs.length).toBeGreaterThan(10);
    const broken = refs.filter((r) => !r.startsWith('#/') || resolvePointer(doc, r) === undefined);
    expect(broken).toEqual([]);
  });

  it('gives every operation responses, a summary, a tag and a unique operationId', async () => {
    const doc = await loadDoc();
    const ops = operations(doc);
    for (const { key, op } of ops) {
      expect(Object.keys(op.responses ?? {}), key).not.toHaveLength(0);
      expect(op.summary, key).toBeTruthy();
      expect(op.tags?.length, key).toBeGreaterThan(0);
      expect(op.operationId, key).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
    }
    const ids = ops.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('declares every path template parameter, and only those', async () => {
    const doc = await loadDoc();
    for (const { key, path, op } of operations(doc)) {
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = (op.parameters ?? [])
        .filter((p) => p.in === 'path')
        .map((p) => {
          expect(p.required, `${key} ${p.name}`).toBe(true);
          return p.name;
        })
        .sort();
      expect(declared, key).toEqual(inPath);
    }
  });

  it('references only security schemes it defines', async () => {
    const doc = await loadDoc();
    for (const { key, op } of operations(doc)) {
      for (const req of op.security ?? []) {
        for (const name of Object.keys(req)) {
          expect(doc.components.securitySchemes, key).toHaveProperty(name);
        }
      }
    }
  });
});

describe('the document matches the routes the app serves', () => {
  it('lists every served route and nothing that is not served', async () => {
    const doc = await loadDoc();
    const documented = operations(doc)
      .map((o) => o.key)
      .sort();
    expect(documented).toEqual(servedRoutes());
  });

  it('documents every error response as problem+json under a code from ERROR_CODES', async () => {
    const doc = await loadDoc();
    const statuses = new Set<number>(Object.values(ERROR_CODES).map((e) => e.status));
    for (const { key, op, path } of operations(doc)) {
      for (const [status, res] of Object.entries(op.responses ?? {})) {
        if (Number(status) < 400) continue;
        // /readyz's 503 is its readiness report (JSON), not an error.
        if (path === '/readyz' && status === '503') continue;
        expect(statuses.has(Number(status)), `${key} ${status}`).toBe(true);
        expect(res.content?.['application/problem+json']?.schema?.$ref, `${key} ${status}`).toBe(
          PROBLEM_REF,
        );
        const codes = [...res.description.matchAll(/\(([a-z_]+)\)/g)].map((m) => m[1]);
        expect(codes.length, `${key} ${status} names its codes`).toBeGreaterThan(0);
        for (const code of codes) {
          expect(ERROR_CODES[code as ErrorCode]?.status, `${key} ${code}`).toBe(Number(status));
        }
      }
    }
  });

  it('requires bearerAuth, and documents 401 and 503, on every authenticated route', async () => {
    const doc = await loadDoc();
    const authenticated = operations(doc).filter((o) => isAuthenticated(o.op));
    expect(authenticated.length).toBeGreaterThanOrEqual(6);
    for (const { key, op } of authenticated) {
      expect(op.security, key).toEqual([{ bearerAuth: [] }]);
      // 503: with AUTH_PROVIDER=jwks the identity provider's keys can be unavailable.
      expect(Object.keys(op.responses!), key).toEqual(expect.arrayContaining(['401', '503']));
    }
  });

  it('documents 400, 413 and 415 on every route with a JSON body', async () => {
    const doc = await loadDoc();
    const bodyRoutes = operations(doc).filter((o) => hasJsonBody(o.op));
    expect(bodyRoutes.map((o) => o.key)).toEqual(
      expect.arrayContaining([
        'POST /vectors/embed',
        'POST /vectors/embed/batch',
        'POST /vectors/search',
      ]),
    );
    for (const { key, op } of bodyRoutes) {
      expect(Object.keys(op.responses!), key).toEqual(
        expect.arrayContaining(['400', '413', '415']),
      );
    }
  });
});

/**
 * Requests that must fail, per operation. Whatever error each one yields must be documented for
 * that operation, under the code the response carried.
 */
async function probes(method: string, path: string, op: Operation) {
  const fill = (value: string) => path.replace(/\{[^}]+\}/g, encodeURIComponent(value));
  const realPath = fill(crypto.randomUUID());
  const valid = await token(uniqueOrg('probe'));
  const out: Array<{ name: string; res: Response }> = [];
  const send = async (
    name: string,
    opts: Parameters<typeof call>[2] & { path?: string } = {},
  ): Promise<void> => {
    out.push({ name, res: await call(method.toUpperCase(), opts.path ?? realPath, opts) });
  };
  const jsonBody = hasJsonBody(op) ? { body: {} } : {};
  await send('no token', jsonBody);
  await send('valid token, unknown ids, empty body', { token: valid, ...jsonBody });
  await send('misconfigured Worker', { ...jsonBody, env: envWith({ DATABASE_URL: '' }) });
  if (path.includes('{')) {
    await send('malformed path parameter', { token: valid, path: fill('not a uuid\u0007') });
  }
  if (hasJsonBody(op)) {
    await send('text/plain body', {
      token: valid,
      rawBody: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    await send('malformed JSON', {
      token: valid,
      rawBody: '{"oops":',
      headers: { 'content-type': 'application/json' },
    });
    await send('oversized body', {
      token: valid,
      rawBody: JSON.stringify({ text: 'x'.repeat(MAX_BODY_BYTES) }),
      headers: { 'content-type': 'application/json' },
    });
  }
  return out;
}

describe('every error a route returns is documented for it', () => {
  it('holds for each operation under failing requests', async () => {
    const doc = await loadDoc();
    const seen = new Set<number>();
    for (const { key, method, path, op } of operations(doc)) {
      for (const { name, res } of await probes(method, path, op)) {
        if (res.status < 400) {
          await res.body?.cancel();
          continue;
        }
        if (path === '/readyz' && res.status === 503) continue;
        seen.add(res.status);
        const where = `${key} (${name}) → ${res.status}`;
        expect(res.headers.get('content-type'), where).toContain('application/problem+json');
        const problem = (await res.json()) as { code: string };
        const documented = op.responses?.[String(res.status)];
        expect(documented, `${where} is not documented`).toBeDefined();
        expect(documented!.description, where).toContain(`(${problem.code})`);
        if (res.status === 401) expect(isAuthenticated(op), where).toBe(true);
      }
    }
    // The probes did exercise the error table.
    expect([...seen].sort()).toEqual(expect.arrayContaining([400, 401, 404, 413, 415, 500]));
  });

  it('answers 401 without a token on exactly the operations that declare bearerAuth', async () => {
    const doc = await loadDoc();
    for (const { key, method, path, op } of operations(doc)) {
      const res = await call(method.toUpperCase(), path.replace(/\{[^}]+\}/g, 'x'), {
        ...(hasJsonBody(op) ? { body: {} } : {}),
      });
      await res.body?.cancel();
      expect(res.status === 401, `${key} → ${res.status}`).toBe(isAuthenticated(op));
    }
  });
});
