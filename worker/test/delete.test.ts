/** Tenant-scoped deletion against the real embedder and store. */
import { describe, expect, it } from 'vitest';
import { call, envWith, expectProblem, token, uniqueOrg, withEmbedderDown } from './helpers';

async function ingest(org: string, asset: string, segments: Record<string, string>) {
  // Through the real local Queue: wait until every job is terminal.
  const t = await token(org);
  const res = await call('POST', '/vectors/embed/batch', {
    token: t,
    body: {
      asset_id: asset,
      segments: Object.entries(segments).map(([segment_id, text]) => ({ segment_id, text })),
    },
  });
  expect(res.status).toBe(202);
  const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };
  const points: string[] = [];
  for (const { job_id } of jobs) {
    for (let i = 0; ; i++) {
      const job = (await (await call('GET', `/jobs/${job_id}`, { token: t })).json()) as {
        status: string;
        result: { point_id: string } | null;
      };
      if (job.status === 'SUCCEEDED') {
        points.push(job.result!.point_id);
        break;
      }
      if (i > 200) throw new Error(`job ${job_id} stuck in ${job.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return points;
}

async function waitSucceeded(t: string, jobId: string) {
  for (let i = 0; i < 300; i++) {
    const job = (await (await call('GET', `/jobs/${jobId}`, { token: t })).json()) as {
      status: string;
      result: { point_id: string } | null;
    };
    if (job.status === 'SUCCEEDED') return job;
    if (job.status === 'FAILED') throw new Error(`job ${jobId} failed`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${jobId} did not finish`);
}

async function searchCount(org: string, query_text: string, asset_id?: string) {
  const res = await call('POST', '/vectors/search', {
    token: await token(org),
    body: { query_text, limit: 100, ...(asset_id ? { asset_id } : {}) },
  });
  return ((await res.json()) as { total: number }).total;
}

describe('DELETE /vectors/points/{point_id} and /vectors/assets/{asset_id}', () => {
  it("deletes one point, and 404s another org's point without touching it", async () => {
    const org = uniqueOrg();
    const [p1, p2] = await ingest(org, 'doc', {
      a: 'Rivers flow to the sea',
      b: 'Birds migrate south',
    });

    const other = await call('DELETE', `/vectors/points/${p1}`, {
      token: await token(uniqueOrg()),
    });
    await expectProblem(other, 404, 'not_found');
    expect(await searchCount(org, 'rivers', 'doc')).toBe(2);

    const res = await call('DELETE', `/vectors/points/${p1}`, { token: await token(org) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ deleted: 1, cancelled_jobs: 0 });
    expect(await searchCount(org, 'rivers', 'doc')).toBe(1);
    expect(p2).toBeDefined();

    const unknown = await call('DELETE', `/vectors/points/${crypto.randomUUID()}`, {
      token: await token(org),
    });
    await expectProblem(unknown, 404, 'not_found');
  });

  it("deletes an asset's points in the caller org only", async () => {
    const org = uniqueOrg();
    const rival = uniqueOrg();
    await ingest(org, 'shared-name', { a: 'Clouds gather', b: 'Rain falls' });
    await ingest(rival, 'shared-name', { a: 'Clouds gather' });

    const res = await call('DELETE', '/vectors/assets/shared-name', { token: await token(org) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ deleted: 2, cancelled_jobs: 0 });
    expect(await searchCount(org, 'clouds')).toBe(0);
    expect(await searchCount(rival, 'clouds')).toBe(1);
  });

  it('cancels unfinished jobs of a deleted asset and removes their text', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const quiet = envWith({ QUEUE_SEND_DISABLED: 'true' });
    const res = await call('POST', '/vectors/embed', {
      token: t,
      body: { asset_id: 'pending', segment_id: 's', text: 'Never embedded' },
      env: quiet,
    });
    const { job_id } = (await res.json()) as { job_id: string };
    const del = await call('DELETE', '/vectors/assets/pending', { token: t });
    expect(await del.json()).toEqual({ deleted: 0, cancelled_jobs: 1 });
    const job = (await (await call('GET', `/jobs/${job_id}`, { token: t })).json()) as {
      status: string;
      error: { code: string };
    };
    expect(job.status).toBe('FAILED');
    expect(job.error.code).toBe('cancelled');
  });

  // Regression (issue 12.1): the identical text sent again after a delete answered 200 with the
  // old SUCCEEDED job and nothing was embedded again, so the content stayed unsearchable.
  it.each([
    { by: 'asset', route: 'embed' },
    { by: 'point', route: 'embed' },
    { by: 'asset', route: 'batch' },
    { by: 'point', route: 'batch' },
  ])('the same text after a delete by $by ($route) makes a new, searchable job', async (c) => {
    const org = uniqueOrg();
    const t = await token(org);
    const text = 'Glaciers carve deep valleys over many centuries';
    const submit = async () => {
      const res =
        c.route === 'embed'
          ? await call('POST', '/vectors/embed', {
              token: t,
              body: { asset_id: 'geo', segment_id: 'g1', text },
            })
          : await call('POST', '/vectors/embed/batch', {
              token: t,
              body: { asset_id: 'geo', segments: [{ segment_id: 'g1', text }] },
            });
      const body = (await res.json()) as { job_id?: string; jobs?: Array<{ job_id: string }> };
      return { status: res.status, jobId: body.job_id ?? body.jobs![0]!.job_id };
    };
    const first = await submit();
    expect(first.status).toBe(202);
    const point = (await waitSucceeded(t, first.jobId)).result!.point_id;
    // Idempotent while the vector exists.
    expect(await submit()).toEqual({ status: 200, jobId: first.jobId });
    expect(await searchCount(org, 'glaciers and valleys')).toBe(1);

    const del = await call(
      'DELETE',
      c.by === 'asset' ? '/vectors/assets/geo' : `/vectors/points/${point}`,
      { token: t },
    );
    expect(await del.json()).toEqual({ deleted: 1, cancelled_jobs: 0 });
    expect(await searchCount(org, 'glaciers and valleys')).toBe(0);
    const old = (await (await call('GET', `/jobs/${first.jobId}`, { token: t })).json()) as {
      status: string;
      current: boolean;
      deleted_at: string | null;
    };
    expect(old).toMatchObject({ status: 'SUCCEEDED', current: false });
    expect(old.deleted_at).not.toBeNull();

    const again = await submit();
    expect(again.status).toBe(202);
    expect(again.jobId).not.toBe(first.jobId);
    const redone = await waitSucceeded(t, again.jobId);
    expect(redone.result!.point_id).toBe(point);
    expect(await searchCount(org, 'glaciers and valleys')).toBe(1);
    // And idempotent again while the new vector exists.
    expect(await submit()).toEqual({ status: 200, jobId: again.jobId });
  });

  it('503 with Retry-After when the embedder is down', async () => {
    const t = await token(uniqueOrg());
    const { result: res, attempts } = await withEmbedderDown((env) =>
      call('DELETE', '/vectors/assets/x', { token: t, env }),
    );
    expect(attempts).toEqual(['/internal/delete']);
    await expectProblem(res, 503, 'dependency_unavailable');
    expect(res.headers.get('retry-after')).toBe('2');
  });
});
