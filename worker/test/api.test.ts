/** The public HTTP contract inside workerd: validation, errors, idempotency, tenant scoping. */
import { describe, expect, it } from 'vitest';
import type { JobRow } from '../../db/schema';
import { isDatabaseUnavailable } from '../src/lib/db';
import { call, envWith, expectProblem, token, uniqueOrg } from './helpers';

// Jobs are created with the Queue send switched off so that these tests observe only the HTTP
// path; delivery is covered by queue.test.ts and the end-to-end suite.
const quiet = envWith({ QUEUE_SEND_DISABLED: 'true' });

async function embed(org: string, body: unknown, env = quiet) {
  return call('POST', '/vectors/embed', { token: await token(org), body, env });
}

describe('POST /vectors/embed', () => {
  it('creates a job (202) and returns the same job for an identical resubmission (200)', async () => {
    const org = uniqueOrg();
    const item = { asset_id: 'a1', segment_id: 's1', text: 'The same text twice' };
    const first = await embed(org, item);
    expect(first.status).toBe(202);
    const a = (await first.json()) as { job_id: string; asset_id: string; segment_id: string };
    expect(a).toMatchObject({ asset_id: 'a1', segment_id: 's1' });
    const second = await embed(org, item);
    expect(second.status).toBe(200);
    expect(((await second.json()) as { job_id: string }).job_id).toBe(a.job_id);
  });

  it('creates exactly one job under concurrent identical submissions', async () => {
    const org = uniqueOrg();
    const item = { asset_id: 'a1', segment_id: 's1', text: 'Concurrent duplicates' };
    const responses = await Promise.all(Array.from({ length: 8 }, () => embed(org, item)));
    const ids = new Set(
      await Promise.all(
        responses.map(async (r) => ((await r.json()) as { job_id: string }).job_id),
      ),
    );
    expect(ids.size).toBe(1);
    expect(responses.filter((r) => r.status === 202)).toHaveLength(1);
  });

  it('treats another org, segment, model version or text as a different job', async () => {
    const org = uniqueOrg();
    const base = { asset_id: 'a1', segment_id: 's1', text: 'Distinct keys' };
    const ids = new Set<string>();
    for (const [o, body] of [
      [org, base],
      [uniqueOrg(), base],
      [org, { ...base, segment_id: 's2' }],
      [org, { ...base, model_ver: '2' }],
      [org, { ...base, text: 'Distinct keys!' }],
    ] as const) {
      const res = await embed(o, body);
      expect(res.status).toBe(202);
      ids.add(((await res.json()) as { job_id: string }).job_id);
    }
    expect(ids.size).toBe(5);
  });

  it.each([
    ['missing text', { asset_id: 'a', segment_id: 's' }, 'text'],
    ['empty text', { asset_id: 'a', segment_id: 's', text: '' }, 'text'],
    ['blank text', { asset_id: 'a', segment_id: 's', text: '   \n\t ' }, 'text'],
    ['text not a string', { asset_id: 'a', segment_id: 's', text: 42 }, 'text'],
    ['NUL in text', { asset_id: 'a', segment_id: 's', text: 'a\u0000b' }, 'text'],
    ['lone surrogate in text', { asset_id: 'a', segment_id: 's', text: 'a\ud800b' }, 'text'],
    [
      'control character in asset_id',
      { asset_id: 'a\u0007', segment_id: 's', text: 'x' },
      'asset_id',
    ],
    ['newline in segment_id', { asset_id: 'a', segment_id: 's\n1', text: 'x' }, 'segment_id'],
    ['asset_id too long', { asset_id: 'a'.repeat(257), segment_id: 's', text: 'x' }, 'asset_id'],
    ['empty segment_id', { asset_id: 'a', segment_id: '', text: 'x' }, 'segment_id'],
    ['unknown field', { asset_id: 'a', segment_id: 's', text: 'x', colour: 'red' }, 'colour'],
    ['bad model name', { asset_id: 'a', segment_id: 's', text: 'x', model: 'a b' }, 'model'],
  ])('400 naming the field: %s', async (_name, body, field) => {
    const res = await embed(uniqueOrg(), body);
    const problem = await expectProblem(res, 400, 'validation_failed');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
    expect(problem.detail).toContain(field);
  });

  it('413 when the text is longer than MAX_TEXT_CHARS (counted in characters)', async () => {
    const env = envWith({ QUEUE_SEND_DISABLED: 'true', MAX_TEXT_CHARS: '10' });
    const ok = await embed(
      uniqueOrg(),
      { asset_id: 'a', segment_id: 's', text: '😀'.repeat(10) },
      env,
    );
    expect(ok.status).toBe(202);
    const res = await embed(
      uniqueOrg(),
      { asset_id: 'a', segment_id: 's', text: 'x'.repeat(11) },
      env,
    );
    const problem = await expectProblem(res, 413, 'payload_too_large');
    expect(problem.errors?.[0]?.field).toBe('text');
  });

  it('413 for a body over 1 MiB', async () => {
    const res = await call('POST', '/vectors/embed', {
      token: await token(uniqueOrg()),
      body: { asset_id: 'a', segment_id: 's', text: 'x'.repeat(1024 * 1024 + 1) },
      env: quiet,
    });
    await expectProblem(res, 413, 'payload_too_large');
  });

  it('415 for a non-JSON content type', async () => {
    const res = await call('POST', '/vectors/embed', {
      token: await token(uniqueOrg()),
      rawBody: 'asset_id=a',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await expectProblem(res, 415, 'unsupported_media_type');
  });

  it('400 malformed_json for a broken body', async () => {
    const res = await call('POST', '/vectors/embed', {
      token: await token(uniqueOrg()),
      rawBody: '{"asset_id": ',
      headers: { 'content-type': 'application/json' },
    });
    await expectProblem(res, 400, 'malformed_json');
  });
});

describe('POST /vectors/embed/batch', () => {
  async function batch(org: string, body: unknown, env = quiet) {
    return call('POST', '/vectors/embed/batch', { token: await token(org), body, env });
  }

  it('creates one job per segment in one transaction, idempotently', async () => {
    const org = uniqueOrg();
    const body = {
      asset_id: 'book',
      segments: [
        { segment_id: 'c1', text: 'Chapter one begins at dawn' },
        { segment_id: 'c2', text: 'Chapter two ends at dusk' },
        { asset_id: 'other', segment_id: 'x', text: 'A segment of another asset' },
      ],
    };
    const first = await batch(org, body);
    expect(first.status).toBe(202);
    const a = (await first.json()) as {
      jobs: Array<{ job_id: string; asset_id: string; segment_id: string; existing: boolean }>;
    };
    expect(a.jobs.map((j) => [j.asset_id, j.segment_id, j.existing])).toEqual([
      ['book', 'c1', false],
      ['book', 'c2', false],
      ['other', 'x', false],
    ]);
    expect(new Set(a.jobs.map((j) => j.job_id)).size).toBe(3);

    const again = await batch(org, body);
    expect(again.status).toBe(200);
    const b = (await again.json()) as typeof a;
    expect(b.jobs.map((j) => j.job_id)).toEqual(a.jobs.map((j) => j.job_id));
    expect(b.jobs.every((j) => j.existing)).toBe(true);

    // The single-item route shares the same idempotency keys.
    const single = await embed(org, {
      asset_id: 'book',
      segment_id: 'c1',
      text: 'Chapter one begins at dawn',
    });
    expect(single.status).toBe(200);
    expect(((await single.json()) as { job_id: string }).job_id).toBe(a.jobs[0]!.job_id);
  });

  it('accepts 256 segments and refuses 257 or none', async () => {
    const segs = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ segment_id: `s${i}`, text: `Segment number ${i}` }));
    const ok = await batch(uniqueOrg(), { asset_id: 'big', segments: segs(256) });
    expect(ok.status).toBe(202);
    expect(((await ok.json()) as { jobs: unknown[] }).jobs).toHaveLength(256);
    for (const n of [257, 0]) {
      const res = await batch(uniqueOrg(), { asset_id: 'big', segments: segs(n) });
      const problem = await expectProblem(res, 400, 'validation_failed');
      expect(problem.errors?.[0]?.field).toBe('segments');
    }
  });

  it('names the segment: missing asset_id, bad text, long text', async () => {
    const org = uniqueOrg();
    const noAsset = await batch(org, { segments: [{ segment_id: 's', text: 'x' }] });
    expect((await expectProblem(noAsset, 400, 'validation_failed')).errors?.[0]?.field).toBe(
      'segments.0.asset_id',
    );
    const badText = await batch(org, {
      asset_id: 'a',
      segments: [
        { segment_id: 's0', text: 'fine' },
        { segment_id: 's1', text: '' },
      ],
    });
    expect((await expectProblem(badText, 400, 'validation_failed')).errors?.[0]?.field).toBe(
      'segments.1.text',
    );
    const env = envWith({ QUEUE_SEND_DISABLED: 'true', MAX_TEXT_CHARS: '5' });
    const long = await batch(
      org,
      { asset_id: 'a', segments: [{ segment_id: 's', text: 'toolong' }] },
      env,
    );
    expect((await expectProblem(long, 413, 'payload_too_large')).errors?.[0]?.field).toBe(
      'segments.0.text',
    );
  });

  it('writes nothing when any segment is invalid', async () => {
    const org = uniqueOrg();
    const res = await batch(org, {
      asset_id: 'a',
      segments: [
        { segment_id: 'good', text: 'valid text' },
        { segment_id: 'bad\u0000', text: 'x' },
      ],
    });
    expect(res.status).toBe(400);
    const good = await embed(org, { asset_id: 'a', segment_id: 'good', text: 'valid text' });
    expect(good.status).toBe(202);
  });
});

describe('GET /jobs/{job_id}', () => {
  it("returns the caller's job and 404s another org's", async () => {
    const org = uniqueOrg();
    const created = await embed(org, { asset_id: 'a', segment_id: 's', text: 'Job visibility' });
    const { job_id } = (await created.json()) as { job_id: string };

    const mine = await call('GET', `/jobs/${job_id}`, { token: await token(org) });
    expect(mine.status).toBe(200);
    const job = (await mine.json()) as Partial<JobRow> & Record<string, unknown>;
    expect(job).toMatchObject({ job_id, status: 'QUEUED', attempts: 0, result: null, error: null });
    expect(Object.keys(job).sort()).toEqual(
      [
        'asset_id',
        'attempts',
        'created_at',
        'error',
        'job_id',
        'model',
        'model_ver',
        'result',
        'segment_id',
        'status',
        'updated_at',
      ].sort(),
    );
    expect(JSON.stringify(job)).not.toContain('Job visibility');

    const theirs = await call('GET', `/jobs/${job_id}`, { token: await token(uniqueOrg()) });
    await expectProblem(theirs, 404, 'not_found');
  });

  it('400 naming job_id for a malformed id', async () => {
    const res = await call('GET', '/jobs/not-a-uuid', { token: await token(uniqueOrg()) });
    const problem = await expectProblem(res, 400, 'validation_failed');
    expect(problem.errors?.[0]?.field).toBe('job_id');
  });
});

describe('POST /vectors/search validation', () => {
  it.each([
    ['limit 0', { query_text: 'x', limit: 0 }, 'limit'],
    ['limit 101', { query_text: 'x', limit: 101 }, 'limit'],
    ['limit "10"', { query_text: 'x', limit: '10' }, 'limit'],
    ['limit 1.5', { query_text: 'x', limit: 1.5 }, 'limit'],
    ['missing query_text', { limit: 5 }, 'query_text'],
    ['unknown field', { query_text: 'x', top_k: 5 }, 'top_k'],
    ['filters not an object', { query_text: 'x', filters: [] }, 'filters'],
    [
      'empty filters.asset_ids',
      { query_text: 'x', filters: { asset_ids: [] } },
      'filters.asset_ids',
    ],
    [
      'a control character in filters.segment_ids',
      { query_text: 'x', filters: { segment_ids: ['ok', 'a\u0007'] } },
      'filters.segment_ids.1',
    ],
    [
      'filters.truncated "no"',
      { query_text: 'x', filters: { truncated: 'no' } },
      'filters.truncated',
    ],
    [
      'filters.embedded_after not ISO 8601',
      { query_text: 'x', filters: { embedded_after: 'last week' } },
      'filters.embedded_after',
    ],
    ['an unknown filter', { query_text: 'x', filters: { colour: 'red' } }, 'filters.colour'],
  ])('400 naming the field: %s', async (_name, body, field) => {
    const res = await call('POST', '/vectors/search', { token: await token(uniqueOrg()), body });
    const problem = await expectProblem(res, 400, 'validation_failed');
    expect(problem.errors?.map((e) => e.field)).toContain(field);
  });

  it('returns results only from the caller org, with the configured model', async () => {
    const res = await call('POST', '/vectors/search', {
      token: await token(uniqueOrg()),
      body: { query_text: 'anything at all' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      results: [],
      query_model: 'potion-base-2M',
      query_model_ver: '1',
      total: 0,
    });
  });
});

describe('a database outage', () => {
  // Through the real WebSocket proxy to a port where no Postgres listens.
  const down = envWith({ DATABASE_URL: 'postgres://heimdex:heimdex@127.0.0.1:9/heimdex' });

  it.each([
    ['POST', '/vectors/embed', { asset_id: 'a', segment_id: 's', text: 'Waiting for Postgres' }],
    ['GET', `/jobs/${crypto.randomUUID()}`, undefined],
  ])('%s %s answers 503 dependency_unavailable with Retry-After', async (method, path, body) => {
    const res = await call(method, path, { token: await token(uniqueOrg()), body, env: down });
    const problem = await expectProblem(res, 503, 'dependency_unavailable');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(problem.detail).not.toContain('Waiting for Postgres');
  });

  it('tells outages from query errors', () => {
    const wrapped = (cause: unknown) => Object.assign(new Error('Failed query: …'), { cause });
    for (const outage of [
      Object.assign(new Error('sorry, too many clients already'), { code: '53300' }),
      Object.assign(new Error('the database system is shutting down'), { code: '57P03' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      new Error('Connection terminated unexpectedly'),
      wrapped(new Error('Network connection lost.')),
    ]) {
      expect(isDatabaseUnavailable(outage), String(outage)).toBe(true);
    }
    for (const bug of [
      Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }),
      Object.assign(new Error('syntax error'), { code: '42601' }),
      wrapped(Object.assign(new Error('relation "jobz" does not exist'), { code: '42P01' })),
      new TypeError('x is undefined'),
      'a string',
      null,
    ]) {
      expect(isDatabaseUnavailable(bug), String(bug)).toBe(false);
    }
  });
});

describe('errors and plumbing', () => {
  it('404 problem+json for an unknown route', async () => {
    await expectProblem(await call('GET', '/nope'), 404, 'not_found');
  });

  it('405 with Allow for a known route and the wrong method', async () => {
    const res = await call('DELETE', '/vectors/embed');
    await expectProblem(res, 405, 'method_not_allowed');
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('echoes a well-formed x-request-id and replaces a bad one', async () => {
    const good = await call('GET', '/healthz', { headers: { 'x-request-id': 'req-12345678' } });
    expect(good.headers.get('x-request-id')).toBe('req-12345678');
    const bad = await call('GET', '/healthz', { headers: { 'x-request-id': 'bad id\u0001' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('GET /readyz reports Postgres and the embedder', async () => {
    const res = await call('GET', '/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', embedder: 'ok' },
    });
    const down = await call('GET', '/readyz', {
      env: envWith({ EMBEDDER_URL: 'http://127.0.0.1:9' }),
    });
    expect(down.status).toBe(503);
  });

  it('500 misconfigured (no secrets leaked) when configuration is invalid', async () => {
    const res = await call('GET', '/healthz', { env: envWith({ DATABASE_URL: 'mysql://nope' }) });
    const problem = await expectProblem(res, 500, 'misconfigured');
    expect(JSON.stringify(problem)).not.toContain('mysql');
  });

  it('refuses dev tokens when ENVIRONMENT=production', async () => {
    const res = await call('GET', '/healthz', { env: envWith({ ENVIRONMENT: 'production' }) });
    await expectProblem(res, 500, 'misconfigured');
  });

  it('serves an OpenAPI 3.1 document generated from the schemas', async () => {
    const res = await call('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/',
        '/dev/token',
        '/docs',
        '/healthz',
        '/jobs/{job_id}',
        '/openapi.json',
        '/readyz',
        '/vectors/assets/{asset_id}',
        '/vectors/embed',
        '/vectors/embed/batch',
        '/vectors/points/{point_id}',
        '/vectors/search',
      ].sort(),
    );
  });
});
