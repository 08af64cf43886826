/** The public HTTP contract inside workerd: validation, errors, idempotency, tenant scoping. */
import { describe, expect, it } from 'vitest';
import type { JobRow } from '../../db/schema';
import { MAX_BATCH_SEGMENTS, MAX_ID_CHARS } from '../../contract/rules';
import { MAX_BODY_BYTES } from '../src/limits';
import { MAX_LISTED_ERRORS } from '../src/errors';
import { isDatabaseUnavailable } from '../src/lib/db';
import { jobKey, sha256Hex } from '../src/lib/hash';
import { runScheduled } from '../src/index';
import { BATCH_RETENTION_DAYS, recordOutcomes } from '../src/services/jobs';
import { unservedModels } from '../src/services/models';
import type { ServedModels } from '../src/services/embedder';
import {
  call,
  envWith,
  expectProblem,
  token,
  uniqueOrg,
  withDb,
  withEmbedderDown,
} from './helpers';

// Jobs are created with the Queue send switched off so that these tests observe only the HTTP
// path; delivery is covered by queue.test.ts and the end-to-end suite.
const quiet = envWith({ QUEUE_SEND_DISABLED: 'true' });
/** Jobs sent through the real local Queue, consumer and embedder. */
const baseEnvForQueue = envWith();

async function embed(org: string, body: unknown, env = quiet) {
  return call('POST', '/vectors/embed', { token: await token(org), body, env });
}

/** Submits `body` for `org`, expects `status`, and returns the id of the job it answers with. */
async function embedJob(org: string, body: unknown, status: number): Promise<string> {
  const res = await embed(org, body);
  expect(res.status).toBe(status);
  return ((await res.json()) as { job_id: string }).job_id;
}

describe('POST /vectors/embed', () => {
  it('creates a job (202) and returns the same job for an identical resubmission (200)', async () => {
    const org = uniqueOrg();
    const item = { asset_id: 'a1', segment_id: 's1', text: 'The same text twice' };
    const first = await embed(org, item);
    expect(first.status).toBe(202);
    const a = (await first.json()) as { job_id: string; asset_id: string; segment_id: string };
    expect(a).toMatchObject({ asset_id: 'a1', segment_id: 's1' });
    expect(await embedJob(org, item, 200)).toBe(a.job_id);
  });

  it('makes a new job for a segment whose job predates the point format (the keyword index)', async () => {
    const org = uniqueOrg();
    const item = { asset_id: 'a1', segment_id: 's1', text: 'Written before the keyword index' };
    const first = (await (await embed(org, item)).json()) as { job_id: string };
    // The job as an older Worker recorded it: its key lacks the point format.
    await withDb(async (db) => {
      const { rows } = await db.execute(
        `SELECT model, model_ver, job_key FROM jobs WHERE id = '${first.job_id}'`,
      );
      const row = (rows as Array<{ model: string; model_ver: string; job_key: string }>)[0]!;
      const parts = { orgId: org, assetId: 'a1', segmentId: 's1', text: item.text };
      expect(row.job_key).toBe(
        await jobKey({ ...parts, model: row.model, modelVer: row.model_ver }),
      );
      const legacyKey = await sha256Hex(
        [org, 'a1', 's1', row.model, row.model_ver, await sha256Hex(item.text)].join('\u0000'),
      );
      await db.execute(`UPDATE jobs SET job_key = '${legacyKey}' WHERE id = '${first.job_id}'`);
    });
    const renewed = await embedJob(org, item, 202);
    expect(renewed).not.toBe(first.job_id);
    // From then on the segment is idempotent again.
    expect(await embedJob(org, item, 200)).toBe(renewed);
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

  // A different model_ver is a different job too (job_key covers it), but the embedder here serves
  // one version and another is refused up front (see "models the embedder does not serve").
  it('treats another org, segment, model or text as a different job', async () => {
    const org = uniqueOrg();
    const base = { asset_id: 'a1', segment_id: 's1', text: 'Distinct keys' };
    const ids = new Set<string>();
    for (const [o, body] of [
      [org, base],
      [uniqueOrg(), base],
      [org, { ...base, segment_id: 's2' }],
      [org, { ...base, model: 'potion-base-2M' }],
      [org, { ...base, text: 'Distinct keys!' }],
    ] as const) {
      // Naming the default model explicitly is the same job as leaving it out.
      ids.add(await embedJob(o, body, 'model' in body ? 200 : 202));
    }
    expect(ids.size).toBe(4);
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
    [
      'asset_id too long',
      { asset_id: 'a'.repeat(MAX_ID_CHARS + 1), segment_id: 's', text: 'x' },
      'asset_id',
    ],
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
      body: { asset_id: 'a', segment_id: 's', text: 'x'.repeat(MAX_BODY_BYTES + 1) },
      env: quiet,
    });
    await expectProblem(res, 413, 'payload_too_large');
  });

  // A non-JSON content type, and a broken JSON body.
  it.each([
    [415, 'unsupported_media_type', 'application/x-www-form-urlencoded', 'asset_id=a'],
    [400, 'malformed_json', 'application/json', '{"asset_id": '],
  ] as const)('%i %s for content type %s', async (status, code, contentType, rawBody) => {
    const res = await call('POST', '/vectors/embed', {
      token: await token(uniqueOrg()),
      rawBody,
      headers: { 'content-type': contentType },
    });
    await expectProblem(res, status, code);
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

  it(`accepts ${MAX_BATCH_SEGMENTS} segments and refuses ${MAX_BATCH_SEGMENTS + 1} or none`, async () => {
    const segs = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ segment_id: `s${i}`, text: `Segment number ${i}` }));
    const ok = await batch(uniqueOrg(), { asset_id: 'big', segments: segs(MAX_BATCH_SEGMENTS) });
    expect(ok.status).toBe(202);
    expect(((await ok.json()) as { jobs: unknown[] }).jobs).toHaveLength(MAX_BATCH_SEGMENTS);
    for (const n of [MAX_BATCH_SEGMENTS + 1, 0]) {
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

describe('concurrent batches over the same segments (issue 12.2)', () => {
  // Regression: two batches over the same 150-200 segments, one in reverse order, sent together,
  // made one of them a 500 in most rounds (Postgres "deadlock detected").
  it('both answer 2xx with one job per segment, in every round', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const send = (segments: Array<{ segment_id: string; text: string }>) =>
      call('POST', '/vectors/embed/batch', {
        token: t,
        body: { asset_id: 'race', segments },
        env: quiet,
      });
    for (let round = 0; round < 12; round++) {
      // Even rounds: new segments; odd rounds: the previous round's segments again.
      const base = Math.floor(round / 2);
      const n = 150 + ((round * 17) % 51);
      const segments = Array.from({ length: n }, (_, i) => ({
        segment_id: `r${base}-s${i}`,
        text: `Round ${base} segment ${i} text`,
      }));
      const [a, b] = await Promise.all([send(segments), send([...segments].reverse())]);
      expect([a.status, b.status].every((s) => s === 200 || s === 202)).toBe(true);
      const ja = ((await a.json()) as { jobs: Array<{ job_id: string; segment_id: string }> }).jobs;
      const jb = ((await b.json()) as { jobs: Array<{ job_id: string; segment_id: string }> }).jobs;
      const bySegment = new Map(jb.map((j) => [j.segment_id, j.job_id]));
      expect(ja.map((j) => j.job_id)).toEqual(ja.map((j) => bySegment.get(j.segment_id)));
      expect(new Set(ja.map((j) => j.job_id)).size).toBe(n);
    }
  }, 120_000);
});

describe('ids that a URL path cannot address (issue 12.3)', () => {
  it.each(['.', '..'])('refuses %j as asset_id and segment_id, naming the field', async (id) => {
    const org = uniqueOrg();
    for (const body of [
      { asset_id: id, segment_id: 's', text: 'Dot ids' },
      { asset_id: 'a', segment_id: id, text: 'Dot ids' },
    ]) {
      const problem = await expectProblem(await embed(org, body), 400, 'validation_failed');
      expect(problem.errors?.[0]?.field).toBe(body.asset_id === id ? 'asset_id' : 'segment_id');
    }
    const batch = await call('POST', '/vectors/embed/batch', {
      token: await token(org),
      body: { segments: [{ asset_id: id, segment_id: 's', text: 'Dot ids' }] },
      env: quiet,
    });
    const problem = await expectProblem(batch, 400, 'validation_failed');
    expect(problem.errors?.[0]?.field).toBe('segments.0.asset_id');
  });

  it('every accepted asset id round-trips through DELETE /vectors/assets/{asset_id}', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const ids = [
      'a/b',
      'q?x=1',
      'frag#1',
      '100%',
      'sp ace',
      '...',
      '.hidden',
      'x..',
      'é',
      '%2E%2E',
    ];
    for (const id of ids) {
      expect(
        (await embed(org, { asset_id: id, segment_id: 's', text: `Asset ${id}` })).status,
      ).toBe(202);
    }
    for (const id of ids) {
      // The queued job of exactly this asset is cancelled: the path reached the right asset.
      const res = await call('DELETE', `/vectors/assets/${encodeURIComponent(id)}`, {
        token: t,
        env: quiet,
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ deleted: 0, cancelled_jobs: 1 });
    }
  });

  it('states the rule in the OpenAPI schema', async () => {
    const doc = (await (await call('GET', '/openapi.json')).json()) as {
      components: { schemas: Record<string, { properties: Record<string, { pattern?: string }> }> };
    };
    const assetId = doc.components.schemas.EmbedRequest!.properties.asset_id!;
    expect(new RegExp(assetId.pattern!).test('..')).toBe(false);
    expect(new RegExp(assetId.pattern!).test('...')).toBe(true);
  });
});

describe('problem bodies are bounded (issue 12.5)', () => {
  it('lists at most MAX_LISTED_ERRORS field errors and says how many were left out', async () => {
    const body: Record<string, unknown> = { asset_id: 'a', segment_id: 's', text: 'x' };
    for (let i = 0; i < 20_000; i++) body[`k${i}`] = 1;
    const res = await embed(uniqueOrg(), body);
    const raw = await res.clone().text();
    const problem = (await expectProblem(res, 400, 'validation_failed')) as {
      errors?: unknown[];
      errors_omitted?: number;
      detail: string;
    };
    expect(problem.errors).toHaveLength(MAX_LISTED_ERRORS);
    expect(problem.errors_omitted).toBe(20_000 - MAX_LISTED_ERRORS);
    expect(problem.detail).toMatch(/and 19990 more$/);
    expect(raw.length).toBeLessThan(16 * 1024);
  });
});

describe('models the embedder does not serve (issue 12.6)', () => {
  it('refuses an unknown model or model_ver up front, naming the field and what is served', async () => {
    const org = uniqueOrg();
    const unknown = await expectProblem(
      await embed(org, { asset_id: 'a', segment_id: 's', text: 'x', model: 'minilm-l6-v2' }),
      400,
      'validation_failed',
    );
    expect(unknown.errors?.[0]?.field).toBe('model');
    expect(unknown.errors?.[0]?.message).toContain('potion-base-2M (model_ver "1")');

    const ver = await expectProblem(
      await embed(org, { asset_id: 'a', segment_id: 's', text: 'x', model_ver: '2' }),
      400,
      'validation_failed',
    );
    expect(ver.errors?.[0]?.field).toBe('model_ver');

    const batch = await call('POST', '/vectors/embed/batch', {
      token: await token(org),
      body: {
        asset_id: 'a',
        segments: [
          { segment_id: 's0', text: 'x' },
          { segment_id: 's1', text: 'y', model: 'nope' },
        ],
      },
      env: quiet,
    });
    const problem = await expectProblem(batch, 400, 'validation_failed');
    expect(problem.errors?.map((e) => e.field)).toEqual(['segments.1.model']);

    // The served model, named explicitly, is accepted.
    const ok = await embed(org, {
      asset_id: 'a',
      segment_id: 's',
      text: 'x',
      model: 'potion-base-2M',
      model_ver: '1',
    });
    expect(ok.status).toBe(202);
  });

  it('never refuses a served model from a stale view, and refuses nothing when unsure', async () => {
    let view: ServedModels = { default_model: 'a', models: [{ name: 'a', model_ver: '1' }] };
    let calls = 0;
    const client = {
      models: async () => {
        calls++;
        if (!view) throw new Error('down');
        return view;
      },
    };
    const url = `http://fake-${crypto.randomUUID()}`;
    const want = (model: string) => [{ model, modelVer: '1', given: { model }, path: '' }];
    expect(await unservedModels(client, url, want('a'))).toEqual([]);
    expect(calls).toBe(1);
    expect(await unservedModels(client, url, want('a'))).toEqual([]);
    expect(calls).toBe(1); // cached
    // The embedder starts serving "b": the cached view lacks it, so it is asked again first.
    view = { default_model: 'a', models: [...view.models, { name: 'b', model_ver: '1' }] };
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await unservedModels(client, url, want('b'))).toEqual([]);
    expect(calls).toBe(2);
    const refused = await unservedModels(client, url, want('c'));
    expect(refused.map((e) => e.field)).toEqual(['model']);
    // The embedder cannot be asked: nothing is refused.
    const downUrl = `http://fake-${crypto.randomUUID()}`;
    view = undefined as unknown as ServedModels;
    expect(await unservedModels(client, downUrl, want('c'))).toEqual([]);
  });
});

describe('GET /batches/{batch_id} (issue 12.9)', () => {
  it('reports counts by status and the failed jobs of a batch in one request', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const res = await call('POST', '/vectors/embed/batch', {
      token: t,
      body: {
        asset_id: 'b',
        segments: [
          { segment_id: 's1', text: 'First of three' },
          { segment_id: 's2', text: 'Second of three' },
          { asset_id: 'gone', segment_id: 's3', text: 'Third of three' },
        ],
      },
      env: quiet,
    });
    expect(res.status).toBe(202);
    const { batch_id, jobs } = (await res.json()) as {
      batch_id: string;
      jobs: Array<{ job_id: string }>;
    };
    // Cancelling the third (its asset is deleted) makes it FAILED.
    await call('DELETE', '/vectors/assets/gone', { token: t, env: quiet });
    const status = await call('GET', `/batches/${batch_id}`, { token: t });
    expect(status.status).toBe(200);
    const body = (await status.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      batch_id,
      total: 3,
      counts: { queued: 2, processing: 0, succeeded: 0, failed: 1 },
      done: false,
      failed_jobs: [
        {
          job_id: jobs[2]!.job_id,
          asset_id: 'gone',
          segment_id: 's3',
          error: { code: 'cancelled' },
        },
      ],
    });
    expect(JSON.stringify(body)).not.toContain('of three');

    await expectProblem(
      await call('GET', `/batches/${batch_id}`, { token: await token(uniqueOrg()) }),
      404,
      'not_found',
    );
    await expectProblem(
      await call('GET', `/batches/${crypto.randomUUID()}`, { token: t }),
      404,
      'not_found',
    );

    // The cron sweep expires handles older than BATCH_RETENTION_DAYS; the jobs stay.
    await withDb((db) =>
      db.execute(
        `UPDATE batches SET created_at = now() - interval '${BATCH_RETENTION_DAYS + 1} days' WHERE id = '${batch_id}'`,
      ),
    );
    await runScheduled(quiet);
    await expectProblem(await call('GET', `/batches/${batch_id}`, { token: t }), 404, 'not_found');
    expect((await call('GET', `/jobs/${jobs[0]!.job_id}`, { token: t })).status).toBe(200);
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
        'current',
        'deleted_at',
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

  // Issue 12.7: latest *successful* submission wins. A newest job that fails for good leaves the
  // previous vector searchable, and `current` says which job the segment's vector is.
  it('keeps the last successful vector when the newest job fails, and says so', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const submit = async (text: string, env = baseEnvForQueue) =>
      (await (
        await call('POST', '/vectors/embed', {
          token: t,
          body: { asset_id: 'doc', segment_id: 'p', text },
          env,
        })
      ).json()) as { job_id: string };
    const job = async (id: string) =>
      (await (await call('GET', `/jobs/${id}`, { token: t })).json()) as {
        status: string;
        current: boolean;
        seq?: number;
      };
    const a = await submit('Volcanic islands rise from the ocean floor');
    for (let i = 0; (await job(a.job_id)).status !== 'SUCCEEDED'; i++) {
      if (i > 300) throw new Error('job A did not succeed');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await job(a.job_id)).current).toBe(true);

    // B is the newest submission; it fails for good (as the consumer records a permanent error).
    const b = await submit('A recipe for lemon cake', quiet);
    await withDb(async (db) => {
      const { rows } = await db.execute(`SELECT seq FROM jobs WHERE id = '${b.job_id}'`);
      const seq = (rows as Array<{ seq: string }>)[0]!.seq;
      await recordOutcomes(db, [
        {
          kind: 'failed',
          jobId: b.job_id,
          seq: Number(seq),
          error: { code: 'embed_failed', message: 'permanent failure' },
        },
      ]);
    });
    expect(await job(b.job_id)).toMatchObject({ status: 'FAILED', current: false });
    expect(await job(a.job_id)).toMatchObject({ status: 'SUCCEEDED', current: true });
    const hits = (await (
      await call('POST', '/vectors/search', {
        token: t,
        body: { query_text: 'volcanic islands', limit: 5 },
      })
    ).json()) as { results: Array<{ payload: { job_id: string } }> };
    expect(hits.results.map((r) => r.payload.job_id)).toEqual([a.job_id]);

    // Resubmitting B retries it (same job, queued again).
    const retried = await call('POST', '/vectors/embed', {
      token: t,
      body: { asset_id: 'doc', segment_id: 'p', text: 'A recipe for lemon cake' },
      env: quiet,
    });
    expect(retried.status).toBe(202);
    expect(((await retried.json()) as { job_id: string }).job_id).toBe(b.job_id);
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
      mode: 'hybrid',
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
    const { result: down } = await withEmbedderDown((env) => call('GET', '/readyz', { env }));
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
        '/batches/{batch_id}',
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
        '/vectors/settings',
        '/v1/embeddings',
        '/v1/rerank',
      ].sort(),
    );
  });
});
