/**
 * Every authenticated route of the public API, in one table, with its cases: the request an owner
 * makes, what another organisation must see of it (tenant isolation), and its malformed and
 * out-of-contract requests (errors). Whatever runs the table runs every entry:
 * - auth.test.ts and tenancy.test.ts (workerd): the auth matrix and cross-tenant isolation;
 * - test/reliability/api.fast.test.ts (the real stack): the bad-input catalogue (each case must
 *   also write nothing), the JWKS token attacks and cross-tenant access.
 * So a new route cannot be added without its auth, isolation and error cases: `ROUTE_COVERAGE` in
 * tenancy.test.ts checks the table against the routes the app actually serves. No test harness is
 * imported here (the reliability suite runs it in Node).
 */
import { expect } from 'vitest';
import { MAX_CHUNK_TOKENS } from '../../contract/internal.js';
import {
  EMBEDDINGS_MAX_BODY_BYTES,
  EMBEDDINGS_MAX_INPUT_BYTES,
  MAX_EMBEDDING_INPUTS,
} from '../../contract/openai.js';
import {
  MAX_RERANK_DOCUMENTS,
  RERANK_MAX_BODY_BYTES,
  RERANK_MAX_INPUT_BYTES,
} from '../../contract/rerank.js';
import {
  DEFAULT_MAX_TEXT_CHARS as MAX_TEXT_CHARS,
  MAX_BATCH_SEGMENTS,
  MAX_ID_CHARS,
} from '../../contract/rules.js';
import { MAX_BODY_BYTES, MAX_SEARCH_LIMIT, MAX_TEXT_BYTES } from '../src/limits.js';
import { expectProblem } from './problem.js';
import type { ProblemBody } from './problem.js';

/** What the owner (org A) has, created once through the real queue and embedder. */
export interface OwnerFixture {
  org: string;
  token: string;
  asset: string;
  segment: string;
  text: string;
  jobId: string;
  pointId: string;
  /** The batch that submitted the owner's job. */
  batchId: string;
}

/** A request the API must refuse with a problem (and, on the real stack, write nothing for). */
export interface BadRequest {
  name: string;
  /** Default: the route's method. */
  method?: string;
  /** Default: the route's template (for routes without path parameters). */
  path?: string;
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

export interface RouteCase {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The OpenAPI path template, e.g. `/jobs/{job_id}`. */
  template: string;
  /** A request against the owner's resources (path and body). */
  request(owner: OwnerFixture): { path: string; body?: unknown };
  /**
   * What another org's valid token must see for that same request: nothing of the owner's, and
   * no change to it. Runs after the intruder's request.
   */
  expectIsolated(res: Response, owner: OwnerFixture): Promise<void>;
  /** Malformed and out-of-contract requests to this route, each with the problem it must get. */
  errors: BadRequest[];
}

const ok = { asset_id: 'doc', segment_id: 'p1', text: 'A perfectly ordinary sentence' };
const search = { query_text: 'ordinary sentence' };
const seg = (i: number, extra: Record<string, unknown> = {}) => ({
  segment_id: `s${i}`,
  text: `Segment number ${i}`,
  ...extra,
});
const deepArray = '['.repeat(50_000) + ']'.repeat(50_000);
/** Under MAX_TEXT_CHARS characters, over MAX_TEXT_BYTES bytes of UTF-8 (4 bytes each). */
const MANY_BYTES = '😀'.repeat(30_000);
/** The detail of a 413 for a text over the byte limit names the limit. */
const namesByteLimit = (b: ProblemBody) => expect(b.detail).toContain(String(MAX_TEXT_BYTES));
/** Settings as the PUT route's request writes them. */
const SETTINGS = { chunking: { max_tokens: 128, overlap_tokens: 16 } };
const REQUEST_ID = `rel-${crypto.randomUUID().slice(0, 8)}-0001`;
const notFound = async (res: Response) => void (await expectProblem(res, 404, 'not_found'));
/** The model the Worker tests and the reliability stack serve (POST /v1/embeddings names it). */
const MODEL = 'potion-base-2M';
const embeddings = (input: unknown, extra: Record<string, unknown> = {}) => ({
  input,
  model: MODEL,
  ...extra,
});
/** A POST /v1/rerank body: a query and `documents`, with `extra`. */
const rerank = (documents: unknown, extra: Record<string, unknown> = {}) => ({
  query: 'ordinary sentence',
  documents,
  ...extra,
});
/** A /v1 problem carries OpenAI's error object, whose `param` is the field in its notation. */
const openAiParam = (param: string | null) => (b: ProblemBody) =>
  expect((b as ProblemBody & { error?: { param: string | null } }).error?.param).toBe(param);

/** A body that is not JSON (400 malformed_json). */
const malformed = (name: string, body: unknown): BadRequest => ({
  name,
  body,
  status: 400,
  code: 'malformed_json',
});
/** A body whose `fields` are invalid (400 validation_failed, naming them). */
const invalid = (name: string, body: unknown, ...fields: string[]): BadRequest => ({
  name,
  body,
  status: 400,
  code: 'validation_failed',
  fields,
});
/** A path whose parameter `field` is invalid (400 validation_failed, naming it). */
const invalidPath = (name: string, path: string, field: string): BadRequest => ({
  name,
  path,
  status: 400,
  code: 'validation_failed',
  fields: [field],
});
/** A body over a size limit (413 payload_too_large, naming the `fields` over theirs, if any). */
const tooLarge = (name: string, body: unknown, ...fields: string[]): BadRequest => ({
  name,
  body,
  status: 413,
  code: 'payload_too_large',
  ...(fields.length > 0 ? { fields } : {}),
});

/** A request for something that does not exist (404 not_found). */
const unknown = (name: string, path: string): BadRequest => ({
  name,
  path,
  status: 404,
  code: 'not_found',
});

/**
 * A route to one of the owner's resources by its id: another org's request for it gets 404, as
 * for a resource that does not exist.
 */
const ownResource = (
  method: RouteCase['method'],
  template: string,
  path: (o: OwnerFixture) => string,
  errors: BadRequest[],
): RouteCase => ({
  method,
  template,
  request: (o) => ({ path: path(o) }),
  expectIsolated: notFound,
  errors,
});

export const ROUTES: RouteCase[] = [
  {
    method: 'POST',
    template: '/vectors/embed',
    request: (o) => ({
      path: '/vectors/embed',
      body: { asset_id: o.asset, segment_id: o.segment, text: o.text },
    }),
    // Idempotency keys are per tenant: the same body makes the intruder a job of its own.
    async expectIsolated(res, o) {
      expect(res.status).toBe(202);
      expect(((await res.json()) as { job_id: string }).job_id).not.toBe(o.jobId);
    },
    errors: [
      // Not JSON, or not an object.
      malformed('truncated JSON', '{"asset_id": "doc",'),
      malformed('trailing garbage after JSON', JSON.stringify(ok) + ' x'),
      malformed('single-quoted JSON', "{'asset_id': 'doc'}"),
      malformed('empty body', ''),
      malformed('invalid UTF-8 outside strings', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
      invalid('JSON null', 'null', '(body)'),
      invalid('JSON array', '[]', '(body)'),
      invalid('JSON string', '"embed me"', '(body)'),
      invalid(
        'deeply nested array as asset_id',
        `{"asset_id":${deepArray},"segment_id":"s","text":"t"}`,
        'asset_id',
      ),
      // Wrong types.
      invalid('asset_id is a number', { ...ok, asset_id: 42 }, 'asset_id'),
      invalid('segment_id is a boolean', { ...ok, segment_id: true }, 'segment_id'),
      invalid('text is a number', { ...ok, text: 7 }, 'text'),
      invalid('text is null', { ...ok, text: null }, 'text'),
      invalid('text is an array', { ...ok, text: ['a', 'b'] }, 'text'),
      invalid('text is an object', { ...ok, text: { value: 'x' } }, 'text'),
      invalid('model is a number', { ...ok, model: 3 }, 'model'),
      // Missing fields.
      invalid('missing text', { asset_id: 'doc', segment_id: 'p1' }, 'text'),
      invalid('missing asset_id', { segment_id: 'p1', text: 'x' }, 'asset_id'),
      invalid('missing segment_id', { asset_id: 'doc', text: 'x' }, 'segment_id'),
      invalid('empty object', {}, 'asset_id', 'segment_id', 'text'),
      // Empty, blank, too long.
      invalid('empty text', { ...ok, text: '' }, 'text'),
      invalid('whitespace-only text', { ...ok, text: ' \n\t ' }, 'text'),
      invalid('empty asset_id', { ...ok, asset_id: '' }, 'asset_id'),
      invalid(
        `asset_id of ${MAX_ID_CHARS + 1} characters`,
        { ...ok, asset_id: 'a'.repeat(MAX_ID_CHARS + 1) },
        'asset_id',
      ),
      tooLarge(
        `text of ${MAX_TEXT_CHARS + 1} characters`,
        { ...ok, text: 'x'.repeat(MAX_TEXT_CHARS + 1) },
        'text',
      ),
      tooLarge(
        `text of ${MAX_TEXT_CHARS + 1} astral characters (counted as characters)`,
        { ...ok, text: '😀'.repeat(MAX_TEXT_CHARS + 1) },
        'text',
      ),
      tooLarge(`body over ${MAX_BODY_BYTES} bytes`, {
        ...ok,
        text: 'y'.repeat(MAX_BODY_BYTES + 1),
      }),
      {
        ...tooLarge(
          `text of 30,000 emoji: under MAX_TEXT_CHARS, over ${MAX_TEXT_BYTES} bytes of UTF-8`,
          { ...ok, text: MANY_BYTES },
          'text',
        ),
        check: namesByteLimit,
      },
      // Chunking.
      invalid(
        'chunking overlap_tokens not below max_tokens',
        { ...ok, chunking: { max_tokens: 64, overlap_tokens: 64 } },
        'chunking.overlap_tokens',
      ),
      invalid(
        'chunking overlap_tokens not below the default max_tokens',
        { ...ok, chunking: { overlap_tokens: MAX_CHUNK_TOKENS } },
        'chunking.overlap_tokens',
      ),
      invalid(
        `chunking max_tokens ${MAX_CHUNK_TOKENS + 1}`,
        { ...ok, chunking: { max_tokens: MAX_CHUNK_TOKENS + 1 } },
        'chunking.max_tokens',
      ),
      invalid(
        'chunking max_tokens 64.5',
        { ...ok, chunking: { max_tokens: 64.5 } },
        'chunking.max_tokens',
      ),
      invalid(
        'chunking overlap_tokens "8" (a string)',
        { ...ok, chunking: { max_tokens: 64, overlap_tokens: '8' } },
        'chunking.overlap_tokens',
      ),
      invalid(
        'unknown key in chunking',
        { ...ok, chunking: { max_tokens: 64, stride: 8 } },
        'chunking.stride',
      ),
      {
        ...invalid('chunking "split" (neither form)', { ...ok, chunking: 'split' }, 'chunking'),
        check: (b) => expect(b.errors?.[0]?.message).toMatch(/"truncate" or an object/),
      },
      invalid('chunking null', { ...ok, chunking: null }, 'chunking'),
      // Unicode and control characters.
      invalid(
        'lone high surrogate in text',
        '{"asset_id":"doc","segment_id":"p1","text":"abc \\ud800 def"}',
        'text',
      ),
      invalid(
        'lone low surrogate in text',
        '{"asset_id":"doc","segment_id":"p1","text":"\\udc00abc"}',
        'text',
      ),
      invalid('NUL in text', { ...ok, text: 'before\u0000after' }, 'text'),
      invalid(
        'lone surrogate in asset_id',
        '{"asset_id":"doc\\udfff","segment_id":"p1","text":"x"}',
        'asset_id',
      ),
      invalid(
        'SOH control character in segment_id',
        { ...ok, segment_id: 's\u0001' },
        'segment_id',
      ),
      invalid('newline in asset_id', { ...ok, asset_id: 'doc\nX-Injected: 1' }, 'asset_id'),
      invalid('DEL in asset_id', { ...ok, asset_id: 'doc\u007f' }, 'asset_id'),
      invalid('C1 control (NEL) in segment_id', { ...ok, segment_id: 'p\u0085' }, 'segment_id'),
      invalid('NUL in segment_id', { ...ok, segment_id: 'p\u0000' }, 'segment_id'),
      // Model names, unknown fields.
      invalid('path traversal as model', { ...ok, model: '../../etc/passwd' }, 'model'),
      invalid('space in model_ver', { ...ok, model_ver: '1 2' }, 'model_ver'),
      invalid('unknown field', { ...ok, priority: 'high' }, 'priority'),
      invalid(
        '__proto__ field',
        `{"asset_id":"doc","segment_id":"p1","text":"x","__proto__":{"admin":true}}`,
        '__proto__',
      ),
      invalid('org_id field (tenant from the body)', { ...ok, org_id: 'someone-else' }, 'org_id'),
      // Content types.
      {
        name: 'text/plain',
        body: JSON.stringify(ok),
        contentType: 'text/plain',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'no content type',
        body: JSON.stringify(ok),
        contentType: null,
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'form-encoded',
        body: 'asset_id=doc&segment_id=p1&text=x',
        contentType: 'application/x-www-form-urlencoded',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'multipart',
        body: '--b\r\n\r\nx\r\n--b--',
        contentType: 'multipart/form-data; boundary=b',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'GET on a POST route',
        method: 'GET',
        status: 405,
        code: 'method_not_allowed',
        check: (_b, h) => expect(h.get('allow')).toBe('POST'),
      },
      // Authorization and headers.
      { name: 'no token', body: ok, anonymous: true, status: 401, code: 'unauthorized' },
      {
        name: 'empty bearer token',
        body: ok,
        anonymous: true,
        headers: { authorization: 'Bearer ' },
        status: 401,
        code: 'unauthorized',
      },
      {
        name: 'Basic credentials',
        body: ok,
        anonymous: true,
        headers: { authorization: 'Basic dXNlcjpwYXNz' },
        status: 401,
        code: 'unauthorized',
      },
      {
        name: 'invalid x-request-id is replaced, not echoed',
        body: '{',
        headers: { 'x-request-id': 'bad id <script>' },
        status: 400,
        code: 'malformed_json',
        check: (b) => expect(b.request_id).toMatch(/^[0-9a-f-]{36}$/),
      },
      {
        name: 'valid x-request-id is echoed',
        body: '{',
        headers: { 'x-request-id': REQUEST_ID },
        status: 400,
        code: 'malformed_json',
        check: (b) => expect(b.request_id).toBe(REQUEST_ID),
      },
    ],
  },
  {
    method: 'POST',
    template: '/vectors/embed/batch',
    request: (o) => ({
      path: '/vectors/embed/batch',
      body: { asset_id: o.asset, segments: [{ segment_id: o.segment, text: o.text }] },
    }),
    async expectIsolated(res, o) {
      expect(res.status).toBe(202);
      const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };
      expect(jobs.map((j) => j.job_id)).not.toContain(o.jobId);
    },
    errors: [
      invalid('empty batch', { asset_id: 'doc', segments: [] }, 'segments'),
      {
        name: `${MAX_BATCH_SEGMENTS + 1}-item batch`,
        body: {
          asset_id: 'doc',
          segments: Array.from({ length: MAX_BATCH_SEGMENTS + 1 }, (_, i) => seg(i)),
        },
        status: 400,
        code: 'validation_failed',
        fields: ['segments'],
      },
      invalid('segments is an object', { asset_id: 'doc', segments: { 0: seg(0) } }, 'segments'),
      invalid('null batch item', { asset_id: 'doc', segments: [seg(0), null] }, 'segments.1'),
      invalid(
        'batch item without asset_id and no batch asset_id',
        { segments: [seg(0, { asset_id: 'a' }), seg(1)] },
        'segments.1.asset_id',
      ),
      invalid(
        'unknown field in a batch item',
        { asset_id: 'doc', segments: [seg(0, { colour: 'red' })] },
        'segments.0.colour',
      ),
      {
        name: 'bad chunking in item 2 of a batch',
        body: {
          asset_id: 'doc',
          segments: [seg(0), seg(1), seg(2, { chunking: { overlap_tokens: -1 } })],
        },
        status: 400,
        code: 'validation_failed',
        fields: ['segments.2.chunking.overlap_tokens'],
      },
      {
        name: 'bad batch chunking',
        body: { asset_id: 'doc', chunking: { max_tokens: 8 }, segments: [seg(0)] },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.max_tokens'],
      },
      {
        name: `item 1 of a batch over ${MAX_TEXT_BYTES} bytes of UTF-8`,
        body: { asset_id: 'doc', segments: [seg(0), seg(1, { text: MANY_BYTES })] },
        status: 413,
        code: 'payload_too_large',
        fields: ['segments.1.text'],
        check: namesByteLimit,
      },
      {
        name: 'too-long text in item 3 of a batch',
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
        name: `batch over ${MAX_BODY_BYTES} bytes`,
        body: {
          asset_id: 'doc',
          segments: Array.from({ length: MAX_BATCH_SEGMENTS }, (_, i) =>
            seg(i, { text: 'w'.repeat(Math.ceil(MAX_BODY_BYTES / MAX_BATCH_SEGMENTS) + 1) }),
          ),
        },
        status: 413,
        code: 'payload_too_large',
      },
    ],
  },
  {
    method: 'POST',
    template: '/vectors/search',
    request: (o) => ({ path: '/vectors/search', body: { query_text: o.text, limit: 100 } }),
    async expectIsolated(res, o) {
      expect(res.status).toBe(200);
      const body = (await res.json()) as { results: Array<{ point_id: string }>; total: number };
      expect(body.results.map((r) => r.point_id)).not.toContain(o.pointId);
    },
    errors: [
      invalid('search limit 0', { ...search, limit: 0 }, 'limit'),
      invalid(
        `search limit ${MAX_SEARCH_LIMIT + 1}`,
        { ...search, limit: MAX_SEARCH_LIMIT + 1 },
        'limit',
      ),
      invalid('search limit "10" (a string)', { ...search, limit: '10' }, 'limit'),
      invalid('search limit 2.5', { ...search, limit: 2.5 }, 'limit'),
      invalid('search limit -1', { ...search, limit: -1 }, 'limit'),
      invalid('search limit 1e309 (Infinity)', '{"query_text":"x","limit":1e309}', 'limit'),
      invalid('search without query_text', { limit: 5 }, 'query_text'),
      tooLarge(
        'search query_text too long',
        { query_text: 'q'.repeat(MAX_TEXT_CHARS + 1) },
        'query_text',
      ),
      invalid('search with lone surrogate', '{"query_text":"\\ud83d"}', 'query_text'),
      invalid('search unknown field', { ...search, org_id: 'other' }, 'org_id'),
      invalid('search group_by "asset"', { ...search, group_by: 'asset' }, 'group_by'),
      invalid(
        'search fusion method "borda"',
        { ...search, fusion: { method: 'borda' } },
        'fusion.method',
      ),
      invalid('search fusion k with dbsf (RRF only)', { ...search, fusion: { k: 10 } }, 'fusion.k'),
      invalid('search fusion weight 1.5', { ...search, fusion: { weight: 1.5 } }, 'fusion.weight'),
      invalid(
        'search fusion with mode dense',
        { ...search, mode: 'dense', fusion: { weight: 0.5 } },
        'fusion',
      ),
    ],
  },
  {
    method: 'GET',
    template: '/vectors/settings',
    request: () => ({ path: '/vectors/settings' }),
    // A fresh organisation has no settings: never the owner's.
    async expectIsolated(res) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ chunking: null, updated_at: null });
    },
    errors: [
      {
        name: 'DELETE on settings',
        method: 'DELETE',
        status: 405,
        code: 'method_not_allowed',
        check: (_b, h) => expect(h.get('allow')?.split(', ').sort()).toEqual(['GET', 'PUT']),
      },
    ],
  },
  {
    method: 'PUT',
    template: '/vectors/settings',
    request: () => ({ path: '/vectors/settings', body: SETTINGS }),
    // The intruder writes its own organisation's settings; the owner's stay as they were.
    async expectIsolated(res) {
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject(SETTINGS);
    },
    errors: [
      {
        name: 'settings without chunking',
        body: {},
        status: 400,
        code: 'validation_failed',
        fields: ['chunking'],
      },
      {
        name: 'settings chunking overlap_tokens above max_tokens',
        body: { chunking: { max_tokens: 32, overlap_tokens: 40 } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.overlap_tokens'],
      },
      {
        name: 'settings chunking max_tokens 0',
        body: { chunking: { max_tokens: 0 } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.max_tokens'],
      },
      {
        name: 'unknown key in settings chunking',
        body: { chunking: { window: 64 } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.window'],
      },
      {
        name: 'settings chunking "TRUNCATE"',
        body: { chunking: 'TRUNCATE' },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking'],
      },
      {
        name: 'settings for another org (org_id in the body)',
        body: { ...SETTINGS, org_id: 'someone-else' },
        status: 400,
        code: 'validation_failed',
        fields: ['org_id'],
      },
      {
        name: 'settings as text/plain',
        body: JSON.stringify(SETTINGS),
        contentType: 'text/plain',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'settings without a token',
        body: SETTINGS,
        anonymous: true,
        status: 401,
        code: 'unauthorized',
      },
    ],
  },
  {
    method: 'POST',
    template: '/v1/embeddings',
    request: (o) => ({ path: '/v1/embeddings', body: embeddings(o.text) }),
    // Stateless: the intruder gets the vector of the text it sent, and nothing of the owner's.
    async expectIsolated(res, o) {
      expect(res.status).toBe(200);
      const text = await res.text();
      const body = JSON.parse(text) as { object: string; data: unknown[] };
      expect(body.object).toBe('list');
      expect(body.data).toHaveLength(1);
      for (const own of [o.org, o.asset, o.jobId, o.pointId]) expect(text).not.toContain(own);
    },
    errors: [
      { ...invalid('blank input', embeddings(' \n\t'), 'input'), check: openAiParam('input') },
      {
        ...invalid('blank input item 1', embeddings(['a dog', '  ']), 'input.1'),
        check: openAiParam('input[1]'),
      },
      invalid('empty input array', embeddings([]), 'input'),
      invalid(
        `${MAX_EMBEDDING_INPUTS + 1} inputs`,
        embeddings(Array.from({ length: MAX_EMBEDDING_INPUTS + 1 }, (_, i) => `text ${i}`)),
        'input',
      ),
      {
        ...invalid('token-id array as input', embeddings([101, 7592, 102]), 'input'),
        check: (b) => {
          expect(b.errors).toHaveLength(1);
          expect(b.errors?.[0]?.message).toMatch(/token-id arrays are not accepted/);
        },
      },
      invalid('arrays of token ids as input', embeddings([[101, 7592], [102]]), 'input'),
      invalid('input is an object', embeddings({ text: 'a dog' }), 'input'),
      invalid('number among the inputs', embeddings(['a dog', 7]), 'input.1'),
      invalid('NUL in an input', embeddings(['a dog', 'bad\u0000']), 'input.1'),
      invalid('lone surrogate in input', `{"input":"\\ud800 x","model":"${MODEL}"}`, 'input'),
      invalid('missing input', { model: MODEL }, 'input'),
      invalid('missing model', { input: 'a dog' }, 'model'),
      {
        ...invalid(
          'model not served (OpenAI model name)',
          embeddings('a dog', { model: 'text-embedding-3-small' }),
          'model',
        ),
        check: (b) => expect(b.errors?.[0]?.message).toContain(MODEL),
      },
      invalid('path traversal as model', embeddings('a dog', { model: '../../x' }), 'model'),
      {
        ...invalid(
          "dimensions other than the model's",
          embeddings('a dog', { dimensions: 32 }),
          'dimensions',
        ),
        check: openAiParam('dimensions'),
      },
      invalid('dimensions 0', embeddings('a dog', { dimensions: 0 }), 'dimensions'),
      invalid('dimensions 1.5', embeddings('a dog', { dimensions: 1.5 }), 'dimensions'),
      invalid(
        'encoding_format float16',
        embeddings('a dog', { encoding_format: 'float16' }),
        'encoding_format',
      ),
      invalid('unknown field', embeddings('a dog', { temperature: 0 }), 'temperature'),
      invalid('user not a string', embeddings('a dog', { user: 42 }), 'user'),
      {
        name: 'an input with no token the model knows',
        body: embeddings(['a dog', '∰∰∰ ⌘⌘']),
        status: 422,
        code: 'unprocessable',
        fields: ['input.1'],
        check: openAiParam('input[1]'),
      },
      {
        ...tooLarge(
          `input item of ${MAX_TEXT_CHARS + 1} characters`,
          embeddings(['a dog', 'z'.repeat(MAX_TEXT_CHARS + 1)]),
          'input.1',
        ),
        check: openAiParam('input[1]'),
      },
      tooLarge(
        `inputs over ${EMBEDDINGS_MAX_INPUT_BYTES} bytes of JSON in all`,
        embeddings(Array.from({ length: 200 }, () => 'w'.repeat(21_000))),
        'input',
      ),
      tooLarge(
        `body over ${EMBEDDINGS_MAX_BODY_BYTES} bytes`,
        embeddings('y'.repeat(EMBEDDINGS_MAX_BODY_BYTES)),
        'input',
      ),
      malformed('truncated JSON', '{"input": "a dog",'),
      {
        name: 'embeddings as text/plain',
        body: JSON.stringify(embeddings('a dog')),
        contentType: 'text/plain',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'GET on embeddings',
        method: 'GET',
        status: 405,
        code: 'method_not_allowed',
        check: (_b, h) => expect(h.get('allow')).toBe('POST'),
      },
      {
        name: 'embeddings without a token',
        body: embeddings('a dog'),
        anonymous: true,
        status: 401,
        code: 'unauthorized',
        check: openAiParam(null),
      },
    ],
  },
  {
    method: 'POST',
    template: '/v1/rerank',
    request: (o) => ({ path: '/v1/rerank', body: rerank([o.text]) }),
    // Stateless: the intruder gets the ranking of the documents it sent, and nothing of the owner's.
    async expectIsolated(res, o) {
      expect(res.status).toBe(200);
      const text = await res.text();
      const body = JSON.parse(text) as { results: Array<{ index: number }>; model: string };
      expect(body.results.map((r) => r.index)).toEqual([0]);
      for (const own of [o.org, o.asset, o.jobId, o.pointId]) expect(text).not.toContain(own);
    },
    errors: [
      invalid('missing query', { documents: ['a dog'] }, 'query'),
      invalid('blank query', rerank(['a dog'], { query: ' \t' }), 'query'),
      invalid('query is a number', rerank(['a dog'], { query: 7 }), 'query'),
      invalid('missing documents', { query: 'dogs' }, 'documents'),
      invalid('empty documents', rerank([]), 'documents'),
      invalid('documents is a string', rerank('a dog'), 'documents'),
      invalid(
        `${MAX_RERANK_DOCUMENTS + 1} documents`,
        rerank(Array.from({ length: MAX_RERANK_DOCUMENTS + 1 }, (_, i) => `doc ${i}`)),
        'documents',
      ),
      invalid('blank document 1', rerank(['a dog', '  ']), 'documents.1'),
      invalid('number among the documents', rerank(['a dog', 7]), 'documents.1'),
      invalid('document as an object', rerank([{ text: 'a dog' }]), 'documents.0'),
      invalid('NUL in a document', rerank(['a dog', 'bad\u0000']), 'documents.1'),
      invalid('lone surrogate in query', '{"query":"\\ud800 x","documents":["a"]}', 'query'),
      invalid('top_n 0', rerank(['a dog'], { top_n: 0 }), 'top_n'),
      invalid('top_n 1.5', rerank(['a dog'], { top_n: 1.5 }), 'top_n'),
      invalid(
        'return_documents a string',
        rerank(['a'], { return_documents: 'yes' }),
        'return_documents',
      ),
      invalid('unknown field', rerank(['a dog'], { rank_fields: ['title'] }), 'rank_fields'),
      invalid('path traversal as model', rerank(['a dog'], { model: '../../x' }), 'model'),
      {
        ...invalid('model not served', rerank(['a dog'], { model: 'bge-reranker-base' }), 'model'),
        check: openAiParam('model'),
      },
      tooLarge(
        `query of ${MAX_TEXT_CHARS + 1} characters`,
        rerank(['a dog'], { query: 'q'.repeat(MAX_TEXT_CHARS + 1) }),
        'query',
      ),
      tooLarge(
        `document of ${MAX_TEXT_CHARS + 1} characters`,
        rerank(['a dog', 'z'.repeat(MAX_TEXT_CHARS + 1)]),
        'documents.1',
      ),
      tooLarge(
        `documents over ${RERANK_MAX_INPUT_BYTES} bytes of JSON in all`,
        rerank(Array.from({ length: 200 }, () => 'w'.repeat(21_000))),
        'documents',
      ),
      tooLarge(
        `body over ${RERANK_MAX_BODY_BYTES} bytes`,
        rerank(['y'.repeat(RERANK_MAX_BODY_BYTES)]),
        'documents',
      ),
      malformed('truncated JSON', '{"query": "dogs",'),
      {
        name: 'rerank as text/plain',
        body: JSON.stringify(rerank(['a dog'])),
        contentType: 'text/plain',
        status: 415,
        code: 'unsupported_media_type',
      },
      {
        name: 'GET on rerank',
        method: 'GET',
        status: 405,
        code: 'method_not_allowed',
        check: (_b, h) => expect(h.get('allow')).toBe('POST'),
      },
      {
        name: 'rerank without a token',
        body: rerank(['a dog']),
        anonymous: true,
        status: 401,
        code: 'unauthorized',
      },
    ],
  },
  ownResource('GET', '/jobs/{job_id}', (o) => `/jobs/${o.jobId}`, [
    invalidPath('job id not a UUID', '/jobs/not-a-uuid', 'job_id'),
    invalidPath('job id SQL injection', `/jobs/${encodeURIComponent("1' OR '1'='1")}`, 'job_id'),
    unknown('unknown job', '/jobs/00000000-0000-4000-8000-000000000000'),
  ]),
  ownResource('GET', '/batches/{batch_id}', (o) => `/batches/${o.batchId}`, [
    invalidPath('batch id not a UUID', '/batches/not-a-uuid', 'batch_id'),
    unknown('unknown batch', '/batches/00000000-0000-4000-8000-000000000000'),
  ]),
  ownResource('DELETE', '/vectors/points/{point_id}', (o) => `/vectors/points/${o.pointId}`, [
    invalidPath('point id not a UUID', '/vectors/points/12345', 'point_id'),
  ]),
  {
    method: 'DELETE',
    template: '/vectors/assets/{asset_id}',
    request: (o) => ({ path: `/vectors/assets/${encodeURIComponent(o.asset)}` }),
    async expectIsolated(res) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ deleted: 0, cancelled_jobs: 0 });
    },
    errors: [
      invalidPath('control character in asset path', '/vectors/assets/doc%01', 'asset_id'),
      invalidPath(
        `asset path of ${MAX_ID_CHARS + 1} characters`,
        `/vectors/assets/${'a'.repeat(MAX_ID_CHARS + 1)}`,
        'asset_id',
      ),
    ],
  },
];

/** Requests that reach no route at all. */
export const UNROUTED: BadRequest[] = [
  { ...unknown('unknown route', '/vectors/everything'), method: 'GET' },
];

/** Every route's error cases (method and path filled in), then UNROUTED. */
export function badRequests(): Array<BadRequest & { method: string; path: string }> {
  return [
    ...ROUTES.flatMap((r) =>
      r.errors.map((c) => ({ ...c, method: c.method ?? r.method, path: c.path ?? r.template })),
    ),
    ...UNROUTED.map((c) => ({ ...c, method: c.method ?? 'GET', path: c.path ?? '/' })),
  ];
}
