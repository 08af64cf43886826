/**
 * End-to-end: the real stack (embedded PostgreSQL, the embedder with the real default model
 * all-MiniLM-L6-v2 from `npm run models`' cache and the embedded vector store, wrangler dev with
 * the local Queue) driven through the public API only. The search-quality assertions (a paraphrase
 * found by meaning) are the production model's, not a test model's.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Api } from '../helpers/api.js';
import { REWRITTEN, expectRewrittenFound, rewriteSegment, startE2eStack } from '../helpers/e2e.js';
import { REAL_MODEL, assertRealModel, realModelEnv } from '../helpers/paths.js';
import { filesContaining, filesUnder, testEnv } from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';

let stack: TestStack;
let acme: Api;
let globex: Api;
const run = Date.now().toString(36);
const CANARY = `zebra-canary-${run}-quokka`;

beforeAll(async () => {
  assertRealModel();
  stack = await startE2eStack('e2e', { env: testEnv(realModelEnv()) });
  acme = await Api.forOrg(stack.apiUrl, stack.devJwtSecret, `acme-${run}`);
  globex = await Api.forOrg(stack.apiUrl, stack.devJwtSecret, `globex-${run}`);
}, 240_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

describe('core flows through the public API', () => {
  it('is healthy and ready', async () => {
    expect((await acme.request('GET', '/healthz')).status).toBe(200);
    const ready = await acme.request<{ status: string }>('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
  });

  it('embeds a text, the job SUCCEEDS, and the same text is found first with score > 0.99', async () => {
    const text = 'The quarterly report shows revenue growth in the northern region';
    const res = await acme.embed({ asset_id: 'report-1', segment_id: 'p1', text });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const job = await acme.waitForJob(res.body.job_id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.result).toMatchObject({ text_len: text.length, truncated: false });
    expect(job.result!.token_count).toBeGreaterThan(5);

    const found = await acme.search({ query_text: text, limit: 5, mode: 'dense' });
    expect(found.status).toBe(200);
    expect(found.body.query_model).toBe(REAL_MODEL);
    expect(found.body.query_model_ver).toBe('1');
    const top = found.body.results[0]!;
    expect(top.point_id).toBe(job.result!.point_id);
    expect(top.score).toBeGreaterThan(0.99);
    expect(top.payload).toMatchObject({ asset_id: 'report-1', segment_id: 'p1', modality: 'text' });
    expect(JSON.stringify(top.payload)).not.toContain('revenue');
  });

  it('finds a paraphrase by meaning with 0.5 < score < 0.99', async () => {
    const res = await acme.embed({
      asset_id: 'pets',
      segment_id: 'dog',
      text: 'A large furry dog is running in the park',
    });
    expect((await acme.waitForJob(res.body.job_id)).status).toBe('SUCCEEDED');
    const found = await acme.search({
      query_text: 'A big hairy canine is jogging outdoors',
      mode: 'dense',
    });
    const top = found.body.results[0]!;
    expect(top.payload).toMatchObject({ asset_id: 'pets', segment_id: 'dog' });
    expect(top.score).toBeGreaterThan(0.5);
    expect(top.score).toBeLessThan(0.99);
  });

  it('returns the same job_id for the same request twice', async () => {
    const item = { asset_id: 'dup', segment_id: 's1', text: 'Idempotent submissions are safe' };
    const first = await acme.embed(item);
    const second = await acme.embed(item);
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body.job_id).toBe(first.body.job_id);
  });

  it('keeps the point_id when a segment gets new text, and search finds the new text', async () => {
    const { first } = await rewriteSegment(acme);
    const found = await acme.search(REWRITTEN);
    expectRewrittenFound(found.body, first.result?.point_id);
  });

  it('isolates tenants: another org sees neither the job nor the vector', async () => {
    const text = 'Confidential merger plans for the acquisition of a rival firm';
    const res = await acme.embed({ asset_id: 'secret', segment_id: 's1', text });
    await acme.waitForJob(res.body.job_id);

    const theirs = await globex.job(res.body.job_id);
    expect(theirs.status).toBe(404);
    expect(theirs.headers.get('content-type')).toContain('application/problem+json');

    const search = await globex.search({ query_text: text, limit: 100 });
    expect(search.status).toBe(200);
    expect(search.body.results).toEqual([]);
    expect(search.body.total).toBe(0);
  });

  it('rejects a request without a token, with problem+json', async () => {
    const anon = new Api(stack.apiUrl);
    const res = await anon.request<{ code: string; request_id: string }>(
      'POST',
      '/vectors/search',
      {
        query_text: 'x',
      },
    );
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.code).toBe('unauthorized');
    expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
  });

  it('keeps raw text out of logs and Postgres rows once jobs are terminal', async () => {
    const res = await acme.embed({
      asset_id: 'pii',
      segment_id: 's1',
      text: `Contact ${CANARY} today`,
    });
    expect((await acme.waitForJob(res.body.job_id)).status).toBe('SUCCEEDED');
    await acme.search({ query_text: `where is ${CANARY}` });
    // Give the processes a moment to flush their logs.
    await new Promise((r) => setTimeout(r, 500));
    for (const file of [stack.logs.worker, stack.logs.embedder!]) {
      expect(fs.readFileSync(file, 'utf8')).not.toContain(CANARY);
    }
    const client = new pg.Client({ connectionString: stack.databaseUrl });
    await client.connect();
    try {
      const jobs = await client.query('SELECT * FROM jobs');
      expect(JSON.stringify(jobs.rows)).not.toContain(CANARY);
      const outbox = await client.query(
        `SELECT o.* FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE j.status IN ('SUCCEEDED','FAILED')`,
      );
      expect(outbox.rows).toEqual([]);
      // Deleted rows live on in Postgres's files (dead tuples, WAL) until vacuumed and recycled:
      // the text was only ever written there encrypted, so no byte of any file holds it.
      await client.query('CHECKPOINT');
    } finally {
      await client.end();
    }
    const pgDir = path.join(stack.dataDir, 'pg');
    expect(filesUnder(pgDir).length).toBeGreaterThan(100); // the data directory really is there
    expect(filesContaining(pgDir, CANARY)).toEqual([]);
  });
});

describe('long texts, chunked (real model)', () => {
  // Sentences of a lab notebook: the passage about the needle sits far past the 256-token window.
  const FILLER = [
    'The centrifuge was calibrated before each run and the rotor was inspected for cracks.',
    'Buffer solutions were prepared fresh every morning and stored at four degrees.',
    'Samples were labelled with the date, the operator and the batch number.',
    'The fume hood airflow was checked weekly and logged in the maintenance book.',
  ];
  const NEEDLE =
    'Our cat Pickles escaped through the window and climbed the tallest oak in the garden.';
  const filler = (n: number) => Array.from({ length: n }, (_, i) => FILLER[i % 4]).join(' ');
  const text = `${filler(40)} ${NEEDLE} ${filler(8)}`;
  const needleAt = [...text.slice(0, text.indexOf(NEEDLE))].length;

  it('embeds every window of a long text and finds a passage past the first one', async () => {
    const res = await acme.embed({ asset_id: 'notebook', segment_id: 'p1', text });
    const job = await acme.waitForJob(res.body.job_id);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.result).toMatchObject({ truncated: false, text_len: [...text].length });
    expect(job.result!.chunk_count).toBeGreaterThan(2);
    const cut = await acme.embed({
      asset_id: 'notebook',
      segment_id: 'p1-truncated',
      text,
      chunking: 'truncate',
    });
    expect((await acme.waitForJob(cut.body.job_id)).result).toMatchObject({
      truncated: true,
      chunk_count: 1,
    });

    const query = 'a pet that got out and went up a tree';
    for (const mode of ['dense', 'hybrid'] as const) {
      const found = await acme.search({ query_text: query, mode, asset_id: 'notebook' });
      const [top] = found.body.results;
      expect(top?.payload.segment_id, mode).toBe('p1');
      expect(top?.point_id).toBe(job.result!.point_id);
      // The best chunk's offsets locate the passage in the client's own copy of the text.
      expect(top!.payload.chunk_start as number).toBeLessThanOrEqual(needleAt);
      expect(top!.payload.chunk_end as number).toBeGreaterThanOrEqual(needleAt + NEEDLE.length);
      // One result per segment: p1's other chunks do not crowd out the truncated copy.
      const segments = found.body.results.map((r) => r.payload.segment_id);
      expect(segments).toEqual(['p1', 'p1-truncated']);
    }
  });

  it('overwrites a chunked text with a short one, leaving no old chunk; a delete removes every chunk', async () => {
    const res = await acme.embed({ asset_id: 'notebook', segment_id: 'p1', text: FILLER[0]! });
    const job = await acme.waitForJob(res.body.job_id);
    expect(job.result).toMatchObject({ chunk_count: 1 });
    const chunks = await acme.search({
      query_text: NEEDLE,
      group_by: 'chunk',
      limit: 50,
      asset_id: 'notebook',
      filters: { segment_ids: ['p1'] },
    });
    expect(chunks.body.results.map((r) => r.payload.chunk_index)).toEqual([0]);
    const long = await acme.embed({ asset_id: 'notebook', segment_id: 'p2', text });
    const longJob = await acme.waitForJob(long.body.job_id);
    const deleted = await acme.deletePoint(longJob.result!.point_id);
    expect(deleted.body.deleted).toBe(longJob.result!.chunk_count);
    const left = await acme.search({
      query_text: NEEDLE,
      group_by: 'chunk',
      asset_id: 'notebook',
      filters: { segment_ids: ['p2'] },
    });
    expect(left.body.results).toEqual([]);
  });
});
