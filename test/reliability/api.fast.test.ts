/**
 * The public API against hostile input, through the real stack: a catalogue of malformed and
 * out-of-contract requests (each must get its status and a problem+json body, and write nothing),
 * a catalogue of forged and broken tokens against a JWKS-configured production Worker (each 401),
 * and cross-tenant reads, searches and deletes (404 or empty).
 */
import { SignJWT, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_TEXT_CHARS as MAX_TEXT_CHARS,
  MAX_BATCH_SEGMENTS,
  MAX_ID_CHARS,
} from '../../contract/rules.js';
import { Api } from '../helpers/api.js';
import type { ProblemBody } from '../helpers/api.js';
import { DbProbe } from '../helpers/db.js';
import { recordFigures } from '../helpers/report.js';
import { startJwksServer } from '../helpers/jwks.js';
import type { JwksServer } from '../helpers/jwks.js';
import { startTestStack, startWorkerOnly } from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';
import { VectorProbe } from '../helpers/vectors.js';

const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const PROBLEM_BASE = 'https://heimdex.dev/problems/';

let stack: TestStack;
let jwksWorker: TestStack;
let jwks: JwksServer;
let db: DbProbe;
let vectors: VectorProbe;

beforeAll(async () => {
  stack = await startTestStack({ name: 'rel-api' });
  db = new DbProbe(stack.databaseUrl);
  vectors = new VectorProbe(stack.vectorDataDir!);
  jwks = await startJwksServer();
  // A production Worker with JWKS auth (Supabase-style tenant claim) over the same database.
  jwksWorker = await startWorkerOnly(stack, {
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
  await db?.close();
  await jwksWorker?.dispose();
  await jwks?.close();
  await stack?.dispose();
}, 60_000);

/** Checks the RFC 9457 shape every error shares; returns the parsed body. */
function expectProblem(
  res: { status: number; headers: Headers; body: unknown },
  status: number,
  code: string,
): ProblemBody {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const body = res.body as ProblemBody;
  expect(body).toMatchObject({ type: PROBLEM_BASE + code, status, code });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.request_id).toBe(res.headers.get('x-request-id'));
  expect(body.request_id.length).toBeGreaterThanOrEqual(8);
  return body;
}

// ---------------------------------------------------------------------------------------------
// Bad input catalogue
// ---------------------------------------------------------------------------------------------

interface BadInput {
  name: string;
  method?: string;
  path: string;
  /** An object is sent as JSON; a string or bytes verbatim. */
  body?: unknown;
  /** null: no content type; default application/json when there is a body. */
  contentType?: string | null;
  headers?: Record<string, string>;
  /** Send without a bearer token. */
  anonymous?: boolean;
  status: number;
  code: string;
  /** Fields that must be named in errors[] (a field problem). */
  fields?: string[];
  check?: (body: ProblemBody, headers: Headers) => void;
}

const ok = { asset_id: 'doc', segment_id: 'p1', text: 'A perfectly ordinary sentence' };
const search = { query_text: 'ordinary sentence' };
const seg = (i: number, extra: Record<string, unknown> = {}) => ({
  segment_id: `s${i}`,
  text: `Segment number ${i}`,
  ...extra,
});
const E = '/vectors/embed';
const B = '/vectors/embed/batch';
const S = '/vectors/search';
const deepArray = '['.repeat(50_000) + ']'.repeat(50_000);

const BAD_INPUTS: BadInput[] = [
  // Not JSON, or not an object.
  {
    name: 'truncated JSON',
    path: E,
    body: '{"asset_id": "doc",',
    status: 400,
    code: 'malformed_json',
  },
  {
    name: 'trailing garbage after JSON',
    path: E,
    body: JSON.stringify(ok) + ' x',
    status: 400,
    code: 'malformed_json',
  },
  {
    name: 'single-quoted JSON',
    path: E,
    body: "{'asset_id': 'doc'}",
    status: 400,
    code: 'malformed_json',
  },
  { name: 'empty body', path: E, body: '', status: 400, code: 'malformed_json' },
  {
    name: 'invalid UTF-8 outside strings',
    path: E,
    body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    status: 400,
    code: 'malformed_json',
  },
  {
    name: 'JSON null',
    path: E,
    body: 'null',
    status: 400,
    code: 'validation_failed',
    fields: ['(body)'],
  },
  {
    name: 'JSON array',
    path: E,
    body: '[]',
    status: 400,
    code: 'validation_failed',
    fields: ['(body)'],
  },
  {
    name: 'JSON string',
    path: E,
    body: '"embed me"',
    status: 400,
    code: 'validation_failed',
    fields: ['(body)'],
  },
  {
    name: 'deeply nested array as asset_id',
    path: E,
    body: `{"asset_id":${deepArray},"segment_id":"s","text":"t"}`,
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  // Wrong types.
  {
    name: 'asset_id is a number',
    path: E,
    body: { ...ok, asset_id: 42 },
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: 'segment_id is a boolean',
    path: E,
    body: { ...ok, segment_id: true },
    status: 400,
    code: 'validation_failed',
    fields: ['segment_id'],
  },
  {
    name: 'text is a number',
    path: E,
    body: { ...ok, text: 7 },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'text is null',
    path: E,
    body: { ...ok, text: null },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'text is an array',
    path: E,
    body: { ...ok, text: ['a', 'b'] },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'text is an object',
    path: E,
    body: { ...ok, text: { value: 'x' } },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'model is a number',
    path: E,
    body: { ...ok, model: 3 },
    status: 400,
    code: 'validation_failed',
    fields: ['model'],
  },
  // Missing fields.
  {
    name: 'missing text',
    path: E,
    body: { asset_id: 'doc', segment_id: 'p1' },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'missing asset_id',
    path: E,
    body: { segment_id: 'p1', text: 'x' },
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: 'missing segment_id',
    path: E,
    body: { asset_id: 'doc', text: 'x' },
    status: 400,
    code: 'validation_failed',
    fields: ['segment_id'],
  },
  {
    name: 'empty object',
    path: E,
    body: {},
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id', 'segment_id', 'text'],
  },
  // Empty, blank, too long.
  {
    name: 'empty text',
    path: E,
    body: { ...ok, text: '' },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'whitespace-only text',
    path: E,
    body: { ...ok, text: ' \n\t ' },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'empty asset_id',
    path: E,
    body: { ...ok, asset_id: '' },
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: `asset_id of ${MAX_ID_CHARS + 1} characters`,
    path: E,
    body: { ...ok, asset_id: 'a'.repeat(MAX_ID_CHARS + 1) },
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: `text of ${MAX_TEXT_CHARS + 1} characters`,
    path: E,
    body: { ...ok, text: 'x'.repeat(MAX_TEXT_CHARS + 1) },
    status: 413,
    code: 'payload_too_large',
    fields: ['text'],
  },
  {
    name: `text of ${MAX_TEXT_CHARS + 1} astral characters (counted as characters)`,
    path: E,
    body: { ...ok, text: '😀'.repeat(MAX_TEXT_CHARS + 1) },
    status: 413,
    code: 'payload_too_large',
    fields: ['text'],
  },
  {
    name: 'body over 1 MiB',
    path: E,
    body: { ...ok, text: 'y'.repeat(1_100_000) },
    status: 413,
    code: 'payload_too_large',
  },
  // Unicode and control characters.
  {
    name: 'lone high surrogate in text',
    path: E,
    body: '{"asset_id":"doc","segment_id":"p1","text":"abc \\ud800 def"}',
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'lone low surrogate in text',
    path: E,
    body: '{"asset_id":"doc","segment_id":"p1","text":"\\udc00abc"}',
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'NUL in text',
    path: E,
    body: { ...ok, text: 'before\u0000after' },
    status: 400,
    code: 'validation_failed',
    fields: ['text'],
  },
  {
    name: 'lone surrogate in asset_id',
    path: E,
    body: '{"asset_id":"doc\\udfff","segment_id":"p1","text":"x"}',
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: 'SOH control character in segment_id',
    path: E,
    body: { ...ok, segment_id: 's\u0001' },
    status: 400,
    code: 'validation_failed',
    fields: ['segment_id'],
  },
  {
    name: 'newline in asset_id',
    path: E,
    body: { ...ok, asset_id: 'doc\nX-Injected: 1' },
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: 'DEL in asset_id',
    path: E,
    body: { ...ok, asset_id: 'doc\u007f' },
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: 'C1 control (NEL) in segment_id',
    path: E,
    body: { ...ok, segment_id: 'p\u0085' },
    status: 400,
    code: 'validation_failed',
    fields: ['segment_id'],
  },
  {
    name: 'NUL in segment_id',
    path: E,
    body: { ...ok, segment_id: 'p\u0000' },
    status: 400,
    code: 'validation_failed',
    fields: ['segment_id'],
  },
  // Model names, unknown fields.
  {
    name: 'path traversal as model',
    path: E,
    body: { ...ok, model: '../../etc/passwd' },
    status: 400,
    code: 'validation_failed',
    fields: ['model'],
  },
  {
    name: 'space in model_ver',
    path: E,
    body: { ...ok, model_ver: '1 2' },
    status: 400,
    code: 'validation_failed',
    fields: ['model_ver'],
  },
  {
    name: 'unknown field',
    path: E,
    body: { ...ok, priority: 'high' },
    status: 400,
    code: 'validation_failed',
    fields: ['priority'],
  },
  {
    name: '__proto__ field',
    path: E,
    body: `{"asset_id":"doc","segment_id":"p1","text":"x","__proto__":{"admin":true}}`,
    status: 400,
    code: 'validation_failed',
    fields: ['__proto__'],
  },
  {
    name: 'org_id field (tenant from the body)',
    path: E,
    body: { ...ok, org_id: 'someone-else' },
    status: 400,
    code: 'validation_failed',
    fields: ['org_id'],
  },
  // Content types.
  {
    name: 'text/plain',
    path: E,
    body: JSON.stringify(ok),
    contentType: 'text/plain',
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'no content type',
    path: E,
    body: JSON.stringify(ok),
    contentType: null,
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'form-encoded',
    path: E,
    body: 'asset_id=doc&segment_id=p1&text=x',
    contentType: 'application/x-www-form-urlencoded',
    status: 415,
    code: 'unsupported_media_type',
  },
  {
    name: 'multipart',
    path: E,
    body: '--b\r\n\r\nx\r\n--b--',
    contentType: 'multipart/form-data; boundary=b',
    status: 415,
    code: 'unsupported_media_type',
  },
  // Search.
  {
    name: 'search limit 0',
    path: S,
    body: { ...search, limit: 0 },
    status: 400,
    code: 'validation_failed',
    fields: ['limit'],
  },
  {
    name: 'search limit 101',
    path: S,
    body: { ...search, limit: 101 },
    status: 400,
    code: 'validation_failed',
    fields: ['limit'],
  },
  {
    name: 'search limit "10" (a string)',
    path: S,
    body: { ...search, limit: '10' },
    status: 400,
    code: 'validation_failed',
    fields: ['limit'],
  },
  {
    name: 'search limit 2.5',
    path: S,
    body: { ...search, limit: 2.5 },
    status: 400,
    code: 'validation_failed',
    fields: ['limit'],
  },
  {
    name: 'search limit -1',
    path: S,
    body: { ...search, limit: -1 },
    status: 400,
    code: 'validation_failed',
    fields: ['limit'],
  },
  {
    name: 'search limit 1e309 (Infinity)',
    path: S,
    body: '{"query_text":"x","limit":1e309}',
    status: 400,
    code: 'validation_failed',
    fields: ['limit'],
  },
  {
    name: 'search without query_text',
    path: S,
    body: { limit: 5 },
    status: 400,
    code: 'validation_failed',
    fields: ['query_text'],
  },
  {
    name: 'search query_text too long',
    path: S,
    body: { query_text: 'q'.repeat(MAX_TEXT_CHARS + 1) },
    status: 413,
    code: 'payload_too_large',
    fields: ['query_text'],
  },
  {
    name: 'search with lone surrogate',
    path: S,
    body: '{"query_text":"\\ud83d"}',
    status: 400,
    code: 'validation_failed',
    fields: ['query_text'],
  },
  {
    name: 'search unknown field',
    path: S,
    body: { ...search, org_id: 'other' },
    status: 400,
    code: 'validation_failed',
    fields: ['org_id'],
  },
  // Batches.
  {
    name: 'empty batch',
    path: B,
    body: { asset_id: 'doc', segments: [] },
    status: 400,
    code: 'validation_failed',
    fields: ['segments'],
  },
  {
    name: `${MAX_BATCH_SEGMENTS + 1}-item batch`,
    path: B,
    body: {
      asset_id: 'doc',
      segments: Array.from({ length: MAX_BATCH_SEGMENTS + 1 }, (_, i) => seg(i)),
    },
    status: 400,
    code: 'validation_failed',
    fields: ['segments'],
  },
  {
    name: 'segments is an object',
    path: B,
    body: { asset_id: 'doc', segments: { 0: seg(0) } },
    status: 400,
    code: 'validation_failed',
    fields: ['segments'],
  },
  {
    name: 'null batch item',
    path: B,
    body: { asset_id: 'doc', segments: [seg(0), null] },
    status: 400,
    code: 'validation_failed',
    fields: ['segments.1'],
  },
  {
    name: 'batch item without asset_id and no batch asset_id',
    path: B,
    body: { segments: [seg(0, { asset_id: 'a' }), seg(1)] },
    status: 400,
    code: 'validation_failed',
    fields: ['segments.1.asset_id'],
  },
  {
    name: 'unknown field in a batch item',
    path: B,
    body: { asset_id: 'doc', segments: [seg(0, { colour: 'red' })] },
    status: 400,
    code: 'validation_failed',
    fields: ['segments.0.colour'],
  },
  {
    name: 'too-long text in item 3 of a batch',
    path: B,
    body: {
      asset_id: 'doc',
      segments: [seg(0), seg(1), seg(2), seg(3, { text: 'z'.repeat(MAX_TEXT_CHARS + 1) })],
    },
    status: 413,
    code: 'payload_too_large',
    fields: ['segments.3.text'],
  },
  {
    name: `${MAX_BATCH_SEGMENTS}-item batch whose last item has a NUL (all or nothing)`,
    path: B,
    body: {
      asset_id: 'doc',
      segments: Array.from({ length: MAX_BATCH_SEGMENTS }, (_, i) =>
        seg(i, i === MAX_BATCH_SEGMENTS - 1 ? { text: 'bad\u0000' } : {}),
      ),
    },
    status: 400,
    code: 'validation_failed',
    fields: [`segments.${MAX_BATCH_SEGMENTS - 1}.text`],
  },
  {
    name: 'batch over 1 MiB',
    path: B,
    body: {
      asset_id: 'doc',
      segments: Array.from({ length: MAX_BATCH_SEGMENTS }, (_, i) =>
        seg(i, { text: 'w'.repeat(5000) }),
      ),
    },
    status: 413,
    code: 'payload_too_large',
  },
  // Path parameters, routes, methods.
  {
    name: 'job id not a UUID',
    method: 'GET',
    path: '/jobs/not-a-uuid',
    status: 400,
    code: 'validation_failed',
    fields: ['job_id'],
  },
  {
    name: 'job id SQL injection',
    method: 'GET',
    path: `/jobs/${encodeURIComponent("1' OR '1'='1")}`,
    status: 400,
    code: 'validation_failed',
    fields: ['job_id'],
  },
  {
    name: 'unknown job',
    method: 'GET',
    path: '/jobs/00000000-0000-4000-8000-000000000000',
    status: 404,
    code: 'not_found',
  },
  {
    name: 'point id not a UUID',
    method: 'DELETE',
    path: '/vectors/points/12345',
    status: 400,
    code: 'validation_failed',
    fields: ['point_id'],
  },
  {
    name: 'control character in asset path',
    method: 'DELETE',
    path: '/vectors/assets/doc%01',
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: `asset path of ${MAX_ID_CHARS + 1} characters`,
    method: 'DELETE',
    path: `/vectors/assets/${'a'.repeat(MAX_ID_CHARS + 1)}`,
    status: 400,
    code: 'validation_failed',
    fields: ['asset_id'],
  },
  {
    name: 'GET on a POST route',
    method: 'GET',
    path: E,
    status: 405,
    code: 'method_not_allowed',
    check: (_b, h) => expect(h.get('allow')).toBe('POST'),
  },
  {
    name: 'unknown route',
    method: 'GET',
    path: '/vectors/everything',
    status: 404,
    code: 'not_found',
  },
  // Authorization and headers.
  { name: 'no token', path: E, body: ok, anonymous: true, status: 401, code: 'unauthorized' },
  {
    name: 'empty bearer token',
    path: E,
    body: ok,
    anonymous: true,
    headers: { authorization: 'Bearer ' },
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'Basic credentials',
    path: E,
    body: ok,
    anonymous: true,
    headers: { authorization: 'Basic dXNlcjpwYXNz' },
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'invalid x-request-id is replaced, not echoed',
    path: E,
    body: '{',
    headers: { 'x-request-id': 'bad id <script>' },
    status: 400,
    code: 'malformed_json',
    check: (b) => expect(b.request_id).toMatch(/^[0-9a-f-]{36}$/),
  },
  {
    name: 'valid x-request-id is echoed',
    path: E,
    body: '{',
    headers: { 'x-request-id': `rel-${run}-0001` },
    status: 400,
    code: 'malformed_json',
    check: (b) => expect(b.request_id).toBe(`rel-${run}-0001`),
  },
];

describe('bad input catalogue', () => {
  const org = `bad-${run}`;
  let client: Api;
  let anon: Api;

  beforeAll(async () => {
    client = await Api.forOrg(stack.apiUrl, stack.devJwtSecret, org);
    anon = new Api(stack.apiUrl);
  });

  it('names every case once (a report line per case)', () => {
    expect(new Set(BAD_INPUTS.map((c) => c.name)).size).toBe(BAD_INPUTS.length);
  });

  it.each(BAD_INPUTS.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = await db.counts();
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
    const res = await (c.anonymous ? anon : client).raw<ProblemBody>(c.method ?? 'POST', c.path, {
      body,
      headers,
    });
    const problem = expectProblem(res, c.status, c.code);
    if (c.fields) {
      expect(problem.errors, 'errors[] names the fields').toBeDefined();
      const named = problem.errors!.map((e) => e.field);
      expect(named).toEqual(expect.arrayContaining(c.fields));
      for (const e of problem.errors!) {
        expect(e.pointer).toBe(e.field === '(body)' ? '' : '/' + e.field.split('.').join('/'));
        expect(e.message.length).toBeGreaterThan(0);
      }
    }
    c.check?.(problem, res.headers);
    expect(await db.counts(), 'nothing was written').toEqual(before);
  });

  it('wrote no job, outbox row or vector for the tenant', async () => {
    expect(await db.jobCount(org)).toBe(0);
    expect(await vectors.count(org)).toBe(0);
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

  async function call(token: string | undefined, authorization?: string) {
    const a = new Api(jwksWorker.apiUrl);
    const headers: Record<string, string> = {};
    if (authorization !== undefined) headers.authorization = authorization;
    else if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const get = await a.raw<ProblemBody>('GET', probeJob, { headers });
    const post = await a.raw<ProblemBody>('POST', E, {
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
      expectProblem(get, 404, 'not_found');
      expect([200, 202]).toContain(post.status);
      const job = await client.waitForJob((post.body as unknown as { job_id: string }).job_id);
      expect(job.status).toBe('SUCCEEDED');
    }
    // The signed-in tenant is the one in the claim path.
    expect(await db.jobCount(org)).toBe(1);
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
      async () => ({ token: await hs256(new TextEncoder().encode(stack.devJwtSecret)) }),
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
      'org claim of 129 characters',
      async () => ({ token: await jwks.sign({ app_metadata: { org_id: 'o'.repeat(129) } }) }),
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
      'valid token of more than 8 KB',
      async () => ({ token: await jwks.sign({ ...claims(), pad: 'p'.repeat(8200) }) }),
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

  it('names every attack once (a report line per attack)', () => {
    expect(new Set(attacks.map(([name]) => name)).size).toBe(attacks.length);
    recordFigures('auth_attacks', { attacks: attacks.length, routes_per_attack: 2, status: 401 });
  });

  it.each(attacks)('rejects %s with 401 and writes nothing', async (_name, make) => {
    const before = await db.counts();
    const { token, authorization } = await make();
    const { get, post } = await call(token, authorization);
    expectProblem(get, 401, 'unauthorized');
    expectProblem(post, 401, 'unauthorized');
    expect(await db.counts()).toEqual(before);
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

  beforeAll(async () => {
    acme = await Api.forOrg(stack.apiUrl, stack.devJwtSecret, `acme-${run}`);
    globex = await Api.forOrg(stack.apiUrl, stack.devJwtSecret, `globex-${run}`);
    const res = await acme.embed({ asset_id: 'deal', segment_id: 'p1', text });
    expect(res.status).toBe(202);
    jobId = res.body.job_id;
    const job = await acme.waitForJob(jobId, 30_000);
    expect(job.status).toBe('SUCCEEDED');
    pointId = job.result!.point_id;
  });

  it("another tenant's job is a 404", async () => {
    expectProblem(await globex.job(jobId), 404, 'not_found');
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
    expectProblem(await globex.deletePoint(pointId), 404, 'not_found');
    const asset = await globex.deleteAsset('deal');
    expect(asset.status).toBe(200);
    expect(asset.body).toEqual({ deleted: 0, cancelled_jobs: 0 });
    expect(await vectors.count(`acme-${run}`)).toBe(1);
    const still = await acme.search({ query_text: text, asset_id: 'deal' });
    expect(still.body.results[0]).toMatchObject({ point_id: pointId });
    expect(still.body.results[0]!.score).toBeGreaterThan(0.99);
  });

  it('the same ids and text in another tenant are another job and another point', async () => {
    const res = await globex.embed({ asset_id: 'deal', segment_id: 'p1', text });
    expect(res.status).toBe(202);
    expect(res.body.job_id).not.toBe(jobId);
    const job = await globex.waitForJob(res.body.job_id, 30_000);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.result!.point_id).not.toBe(pointId);
    const [acmePoint] = await vectors.points(`acme-${run}`);
    expect(acmePoint).toMatchObject({ id: pointId, job_id: jobId });
    // And the owner can delete its own point.
    const del = await acme.deletePoint(pointId);
    expect(del.status).toBe(200);
    expect(del.body.deleted).toBe(1);
    expect(await vectors.count(`globex-${run}`)).toBe(1);
  });
});
