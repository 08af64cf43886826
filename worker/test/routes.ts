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
      {
        name: 'truncated JSON',
        body: '{"asset_id": "doc",',
        status: 400,
        code: 'malformed_json',
      },
      {
        name: 'trailing garbage after JSON',
        body: JSON.stringify(ok) + ' x',
        status: 400,
        code: 'malformed_json',
      },
      {
        name: 'single-quoted JSON',
        body: "{'asset_id': 'doc'}",
        status: 400,
        code: 'malformed_json',
      },
      { name: 'empty body', body: '', status: 400, code: 'malformed_json' },
      {
        name: 'invalid UTF-8 outside strings',
        body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
        status: 400,
        code: 'malformed_json',
      },
      {
        name: 'JSON null',
        body: 'null',
        status: 400,
        code: 'validation_failed',
        fields: ['(body)'],
      },
      {
        name: 'JSON array',
        body: '[]',
        status: 400,
        code: 'validation_failed',
        fields: ['(body)'],
      },
      {
        name: 'JSON string',
        body: '"embed me"',
        status: 400,
        code: 'validation_failed',
        fields: ['(body)'],
      },
      {
        name: 'deeply nested array as asset_id',
        body: `{"asset_id":${deepArray},"segment_id":"s","text":"t"}`,
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      // Wrong types.
      {
        name: 'asset_id is a number',
        body: { ...ok, asset_id: 42 },
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: 'segment_id is a boolean',
        body: { ...ok, segment_id: true },
        status: 400,
        code: 'validation_failed',
        fields: ['segment_id'],
      },
      {
        name: 'text is a number',
        body: { ...ok, text: 7 },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'text is null',
        body: { ...ok, text: null },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'text is an array',
        body: { ...ok, text: ['a', 'b'] },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'text is an object',
        body: { ...ok, text: { value: 'x' } },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'model is a number',
        body: { ...ok, model: 3 },
        status: 400,
        code: 'validation_failed',
        fields: ['model'],
      },
      // Missing fields.
      {
        name: 'missing text',
        body: { asset_id: 'doc', segment_id: 'p1' },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'missing asset_id',
        body: { segment_id: 'p1', text: 'x' },
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: 'missing segment_id',
        body: { asset_id: 'doc', text: 'x' },
        status: 400,
        code: 'validation_failed',
        fields: ['segment_id'],
      },
      {
        name: 'empty object',
        body: {},
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id', 'segment_id', 'text'],
      },
      // Empty, blank, too long.
      {
        name: 'empty text',
        body: { ...ok, text: '' },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'whitespace-only text',
        body: { ...ok, text: ' \n\t ' },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'empty asset_id',
        body: { ...ok, asset_id: '' },
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: `asset_id of ${MAX_ID_CHARS + 1} characters`,
        body: { ...ok, asset_id: 'a'.repeat(MAX_ID_CHARS + 1) },
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: `text of ${MAX_TEXT_CHARS + 1} characters`,
        body: { ...ok, text: 'x'.repeat(MAX_TEXT_CHARS + 1) },
        status: 413,
        code: 'payload_too_large',
        fields: ['text'],
      },
      {
        name: `text of ${MAX_TEXT_CHARS + 1} astral characters (counted as characters)`,
        body: { ...ok, text: '😀'.repeat(MAX_TEXT_CHARS + 1) },
        status: 413,
        code: 'payload_too_large',
        fields: ['text'],
      },
      {
        name: `body over ${MAX_BODY_BYTES} bytes`,
        body: { ...ok, text: 'y'.repeat(MAX_BODY_BYTES + 1) },
        status: 413,
        code: 'payload_too_large',
      },
      {
        name: `text of 30,000 emoji: under MAX_TEXT_CHARS, over ${MAX_TEXT_BYTES} bytes of UTF-8`,
        body: { ...ok, text: MANY_BYTES },
        status: 413,
        code: 'payload_too_large',
        fields: ['text'],
        check: namesByteLimit,
      },
      // Chunking.
      {
        name: 'chunking overlap_tokens not below max_tokens',
        body: { ...ok, chunking: { max_tokens: 64, overlap_tokens: 64 } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.overlap_tokens'],
      },
      {
        name: 'chunking overlap_tokens not below the default max_tokens',
        body: { ...ok, chunking: { overlap_tokens: MAX_CHUNK_TOKENS } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.overlap_tokens'],
      },
      {
        name: `chunking max_tokens ${MAX_CHUNK_TOKENS + 1}`,
        body: { ...ok, chunking: { max_tokens: MAX_CHUNK_TOKENS + 1 } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.max_tokens'],
      },
      {
        name: 'chunking max_tokens 64.5',
        body: { ...ok, chunking: { max_tokens: 64.5 } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.max_tokens'],
      },
      {
        name: 'chunking overlap_tokens "8" (a string)',
        body: { ...ok, chunking: { max_tokens: 64, overlap_tokens: '8' } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.overlap_tokens'],
      },
      {
        name: 'unknown key in chunking',
        body: { ...ok, chunking: { max_tokens: 64, stride: 8 } },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking.stride'],
      },
      {
        name: 'chunking "split" (neither form)',
        body: { ...ok, chunking: 'split' },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking'],
        check: (b) => expect(b.errors?.[0]?.message).toMatch(/"truncate" or an object/),
      },
      {
        name: 'chunking null',
        body: { ...ok, chunking: null },
        status: 400,
        code: 'validation_failed',
        fields: ['chunking'],
      },
      // Unicode and control characters.
      {
        name: 'lone high surrogate in text',
        body: '{"asset_id":"doc","segment_id":"p1","text":"abc \\ud800 def"}',
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'lone low surrogate in text',
        body: '{"asset_id":"doc","segment_id":"p1","text":"\\udc00abc"}',
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'NUL in text',
        body: { ...ok, text: 'before\u0000after' },
        status: 400,
        code: 'validation_failed',
        fields: ['text'],
      },
      {
        name: 'lone surrogate in asset_id',
        body: '{"asset_id":"doc\\udfff","segment_id":"p1","text":"x"}',
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: 'SOH control character in segment_id',
        body: { ...ok, segment_id: 's\u0001' },
        status: 400,
        code: 'validation_failed',
        fields: ['segment_id'],
      },
      {
        name: 'newline in asset_id',
        body: { ...ok, asset_id: 'doc\nX-Injected: 1' },
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: 'DEL in asset_id',
        body: { ...ok, asset_id: 'doc\u007f' },
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: 'C1 control (NEL) in segment_id',
        body: { ...ok, segment_id: 'p\u0085' },
        status: 400,
        code: 'validation_failed',
        fields: ['segment_id'],
      },
      {
        name: 'NUL in segment_id',
        body: { ...ok, segment_id: 'p\u0000' },
        status: 400,
        code: 'validation_failed',
        fields: ['segment_id'],
      },
      // Model names, unknown fields.
      {
        name: 'path traversal as model',
        body: { ...ok, model: '../../etc/passwd' },
        status: 400,
        code: 'validation_failed',
        fields: ['model'],
      },
      {
        name: 'space in model_ver',
        body: { ...ok, model_ver: '1 2' },
        status: 400,
        code: 'validation_failed',
        fields: ['model_ver'],
      },
      {
        name: 'unknown field',
        body: { ...ok, priority: 'high' },
        status: 400,
        code: 'validation_failed',
        fields: ['priority'],
      },
      {
        name: '__proto__ field',
        body: `{"asset_id":"doc","segment_id":"p1","text":"x","__proto__":{"admin":true}}`,
        status: 400,
        code: 'validation_failed',
        fields: ['__proto__'],
      },
      {
        name: 'org_id field (tenant from the body)',
        body: { ...ok, org_id: 'someone-else' },
        status: 400,
        code: 'validation_failed',
        fields: ['org_id'],
      },
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
      {
        name: 'empty batch',
        body: { asset_id: 'doc', segments: [] },
        status: 400,
        code: 'validation_failed',
        fields: ['segments'],
      },
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
      {
        name: 'segments is an object',
        body: { asset_id: 'doc', segments: { 0: seg(0) } },
        status: 400,
        code: 'validation_failed',
        fields: ['segments'],
      },
      {
        name: 'null batch item',
        body: { asset_id: 'doc', segments: [seg(0), null] },
        status: 400,
        code: 'validation_failed',
        fields: ['segments.1'],
      },
      {
        name: 'batch item without asset_id and no batch asset_id',
        body: { segments: [seg(0, { asset_id: 'a' }), seg(1)] },
        status: 400,
        code: 'validation_failed',
        fields: ['segments.1.asset_id'],
      },
      {
        name: 'unknown field in a batch item',
        body: { asset_id: 'doc', segments: [seg(0, { colour: 'red' })] },
        status: 400,
        code: 'validation_failed',
        fields: ['segments.0.colour'],
      },
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
      {
        name: 'search limit 0',
        body: { ...search, limit: 0 },
        status: 400,
        code: 'validation_failed',
        fields: ['limit'],
      },
      {
        name: `search limit ${MAX_SEARCH_LIMIT + 1}`,
        body: { ...search, limit: MAX_SEARCH_LIMIT + 1 },
        status: 400,
        code: 'validation_failed',
        fields: ['limit'],
      },
      {
        name: 'search limit "10" (a string)',
        body: { ...search, limit: '10' },
        status: 400,
        code: 'validation_failed',
        fields: ['limit'],
      },
      {
        name: 'search limit 2.5',
        body: { ...search, limit: 2.5 },
        status: 400,
        code: 'validation_failed',
        fields: ['limit'],
      },
      {
        name: 'search limit -1',
        body: { ...search, limit: -1 },
        status: 400,
        code: 'validation_failed',
        fields: ['limit'],
      },
      {
        name: 'search limit 1e309 (Infinity)',
        body: '{"query_text":"x","limit":1e309}',
        status: 400,
        code: 'validation_failed',
        fields: ['limit'],
      },
      {
        name: 'search without query_text',
        body: { limit: 5 },
        status: 400,
        code: 'validation_failed',
        fields: ['query_text'],
      },
      {
        name: 'search query_text too long',
        body: { query_text: 'q'.repeat(MAX_TEXT_CHARS + 1) },
        status: 413,
        code: 'payload_too_large',
        fields: ['query_text'],
      },
      {
        name: 'search with lone surrogate',
        body: '{"query_text":"\\ud83d"}',
        status: 400,
        code: 'validation_failed',
        fields: ['query_text'],
      },
      {
        name: 'search group_by "asset"',
        body: { ...search, group_by: 'asset' },
        status: 400,
        code: 'validation_failed',
        fields: ['group_by'],
      },
      {
        name: 'search unknown field',
        body: { ...search, org_id: 'other' },
        status: 400,
        code: 'validation_failed',
        fields: ['org_id'],
      },
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
    method: 'GET',
    template: '/jobs/{job_id}',
    request: (o) => ({ path: `/jobs/${o.jobId}` }),
    expectIsolated: notFound,
    errors: [
      {
        name: 'job id not a UUID',
        path: '/jobs/not-a-uuid',
        status: 400,
        code: 'validation_failed',
        fields: ['job_id'],
      },
      {
        name: 'job id SQL injection',
        path: `/jobs/${encodeURIComponent("1' OR '1'='1")}`,
        status: 400,
        code: 'validation_failed',
        fields: ['job_id'],
      },
      {
        name: 'unknown job',
        path: '/jobs/00000000-0000-4000-8000-000000000000',
        status: 404,
        code: 'not_found',
      },
    ],
  },
  {
    method: 'GET',
    template: '/batches/{batch_id}',
    request: (o) => ({ path: `/batches/${o.batchId}` }),
    expectIsolated: notFound,
    errors: [
      {
        name: 'batch id not a UUID',
        path: '/batches/not-a-uuid',
        status: 400,
        code: 'validation_failed',
        fields: ['batch_id'],
      },
      {
        name: 'unknown batch',
        path: '/batches/00000000-0000-4000-8000-000000000000',
        status: 404,
        code: 'not_found',
      },
    ],
  },
  {
    method: 'DELETE',
    template: '/vectors/points/{point_id}',
    request: (o) => ({ path: `/vectors/points/${o.pointId}` }),
    expectIsolated: notFound,
    errors: [
      {
        name: 'point id not a UUID',
        path: '/vectors/points/12345',
        status: 400,
        code: 'validation_failed',
        fields: ['point_id'],
      },
    ],
  },
  {
    method: 'DELETE',
    template: '/vectors/assets/{asset_id}',
    request: (o) => ({ path: `/vectors/assets/${encodeURIComponent(o.asset)}` }),
    async expectIsolated(res) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ deleted: 0, cancelled_jobs: 0 });
    },
    errors: [
      {
        name: 'control character in asset path',
        path: '/vectors/assets/doc%01',
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
      {
        name: `asset path of ${MAX_ID_CHARS + 1} characters`,
        path: `/vectors/assets/${'a'.repeat(MAX_ID_CHARS + 1)}`,
        status: 400,
        code: 'validation_failed',
        fields: ['asset_id'],
      },
    ],
  },
];

/** Requests that reach no route at all. */
export const UNROUTED: BadRequest[] = [
  {
    name: 'unknown route',
    method: 'GET',
    path: '/vectors/everything',
    status: 404,
    code: 'not_found',
  },
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
