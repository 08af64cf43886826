/**
 * Tenant isolation on every route: another organisation's valid token, aimed at the owner's
 * resources, sees nothing of them and changes nothing. One owner fixture is ingested through the
 * real local Queue, consumer and embedder; each route in the shared table (routes.ts) is then tried
 * by a fresh intruder org, and the owner's job, vector and settings are checked intact afterwards.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { call, callRoute, token, uniqueOrg } from './helpers';
import { ROUTES } from './routes';
import type { OwnerFixture } from './routes';

let owner: OwnerFixture;
const OWNER_CHUNKING = { max_tokens: 48, overlap_tokens: 4 };

async function waitForJob(t: string, jobId: string) {
  for (let i = 0; i < 300; i++) {
    const res = await call('GET', `/jobs/${jobId}`, { token: t });
    const job = (await res.json()) as { status: string; result: { point_id: string } | null };
    if (job.status === 'SUCCEEDED' || job.status === 'FAILED') return job;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${jobId} did not finish`);
}

async function ownerSearch() {
  const res = await call('POST', '/vectors/search', {
    token: owner.token,
    body: { query_text: owner.text, limit: 5, mode: 'dense' },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { results: Array<{ point_id: string; score: number }> };
}

beforeAll(async () => {
  const org = uniqueOrg('owner');
  const t = await token(org);
  const text = `Quarterly revenue of the northern region ${crypto.randomUUID()}`;
  const res = await call('POST', '/vectors/embed/batch', {
    token: t,
    body: { asset_id: 'report', segments: [{ segment_id: 'p1', text }] },
  });
  expect(res.status).toBe(202);
  const { batch_id, jobs } = (await res.json()) as {
    batch_id: string;
    jobs: Array<{ job_id: string }>;
  };
  const job_id = jobs[0]!.job_id;
  const job = await waitForJob(t, job_id);
  expect(job.status).toBe('SUCCEEDED');
  // The owner's own settings, which no other organisation's request may read or change.
  const put = await call('PUT', '/vectors/settings', {
    token: t,
    body: { chunking: OWNER_CHUNKING },
  });
  expect(put.status).toBe(200);
  owner = {
    org,
    token: t,
    asset: 'report',
    segment: 'p1',
    text,
    jobId: job_id,
    pointId: job.result!.point_id,
    batchId: batch_id,
  };
});

describe.each(ROUTES)('tenant isolation on $method $template', (route) => {
  it("another org's token sees none of the owner's data and changes nothing", async () => {
    const intruder = await token(uniqueOrg('intruder'));
    await route.expectIsolated(await callRoute(route, owner, `Bearer ${intruder}`), owner);

    // The owner still has its job and its vector, found first for its own text.
    const job = await call('GET', `/jobs/${owner.jobId}`, { token: owner.token });
    expect(job.status).toBe(200);
    expect(((await job.json()) as { status: string }).status).toBe('SUCCEEDED');
    const found = await ownerSearch();
    expect(found.results[0]?.point_id).toBe(owner.pointId);
    expect(found.results[0]?.score).toBeGreaterThan(0.99);
    const settings = await call('GET', '/vectors/settings', { token: owner.token });
    expect(((await settings.json()) as { chunking: unknown }).chunking).toEqual(OWNER_CHUNKING);
  });
});

describe('the shared route table', () => {
  it('covers every authenticated operation the API serves', async () => {
    const res = await call('GET', '/openapi.json');
    const doc = (await res.json()) as {
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    const served = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => (op.security ?? []).length > 0)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    const tested = ROUTES.map((r) => `${r.method} ${r.template}`);
    expect(served.length).toBeGreaterThan(0);
    expect(tested.sort()).toEqual(served.sort());
  });
});
