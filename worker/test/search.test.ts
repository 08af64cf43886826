/** Search through the real queue, consumer and embedder: ranking, scores and server-side filters. */
import { beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/errors';
import { embedderProblem } from '../src/routes/common';
import { EmbedderRejectedError } from '../src/services/embedder';
import { call, token, uniqueOrg } from './helpers';

let t: string;
let before: string;

interface Hit {
  point_id: string;
  score: number;
  payload: { asset_id: string; segment_id: string; truncated: boolean; embedded_at: string };
}

async function search(body: Record<string, unknown>): Promise<Hit[]> {
  const res = await call('POST', '/vectors/search', { token: t, body: { limit: 100, ...body } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { results: Hit[] }).results;
}

const where = (hits: Hit[]) =>
  hits.map((h) => `${h.payload.asset_id}/${h.payload.segment_id}`).sort();

beforeAll(async () => {
  t = await token(uniqueOrg());
  before = new Date(Date.now() - 1000).toISOString();
  const res = await call('POST', '/vectors/embed/batch', {
    token: t,
    body: {
      segments: [
        { asset_id: 'pets', segment_id: 'dog', text: 'A large furry dog is running in the park' },
        { asset_id: 'pets', segment_id: 'cat', text: 'A small cat sleeps on the warm windowsill' },
        { asset_id: 'finance', segment_id: 'q3', text: 'Quarterly revenue grew in the north' },
      ],
    },
  });
  expect(res.status).toBe(202);
  const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };
  for (const { job_id } of jobs) {
    for (let i = 0; ; i++) {
      const job = await call('GET', `/jobs/${job_id}`, { token: t });
      if (((await job.json()) as { status: string }).status === 'SUCCEEDED') break;
      if (i > 300) throw new Error(`job ${job_id} did not succeed`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

describe('POST /vectors/search', () => {
  it('ranks by meaning, best first, with cosine scores in [-1, 1] (dense mode)', async () => {
    const hits = await search({
      query_text: 'A big hairy canine is jogging outdoors',
      mode: 'dense',
    });
    expect(hits).toHaveLength(3);
    expect(hits[0]!.payload.segment_id).toBe('dog');
    expect(hits[0]!.score).toBeGreaterThan(0.5);
    for (const h of hits) expect(Math.abs(h.score)).toBeLessThanOrEqual(1);
    expect(hits.map((h) => h.score)).toEqual([...hits.map((h) => h.score)].sort((a, b) => b - a));
  });

  it('applies filters server-side: assets, segments, truncated, embedded_at range', async () => {
    const q = { query_text: 'animals' };
    expect(where(await search({ ...q, filters: { asset_ids: ['finance'] } }))).toEqual([
      'finance/q3',
    ]);
    expect(where(await search({ ...q, filters: { segment_ids: ['cat', 'q3'] } }))).toEqual([
      'finance/q3',
      'pets/cat',
    ]);
    expect(await search({ ...q, filters: { truncated: true } })).toEqual([]);
    expect(await search({ ...q, filters: { embedded_before: before } })).toEqual([]);
    expect(
      where(await search({ ...q, filters: { embedded_after: before, asset_ids: ['pets'] } })),
    ).toEqual(['pets/cat', 'pets/dog']);
    // A filter and the plain asset_id parameter combine (AND).
    expect(
      where(await search({ ...q, asset_id: 'pets', filters: { segment_ids: ['q3', 'dog'] } })),
    ).toEqual(['pets/dog']);
  });

  it('reports its own time and the embedder call in Server-Timing', async () => {
    const res = await call('POST', '/vectors/search', {
      token: t,
      body: { query_text: 'a sleeping cat' },
    });
    expect(res.status).toBe(200);
    const timing = res.headers.get('server-timing') ?? '';
    const dur = (name: string) => Number(new RegExp(`${name};dur=(\\d+)`).exec(timing)?.[1]);
    expect(dur('app')).toBeGreaterThanOrEqual(dur('embedder'));
    expect(dur('embedder')).toBeGreaterThanOrEqual(0);
    // Errors carry the Worker's own time too.
    const denied = await call('POST', '/vectors/search', { body: { query_text: 'x' } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('server-timing')).toMatch(/^app;dur=\d+$/);
  });

  it('limits the result count', async () => {
    expect(await search({ query_text: 'animals', limit: 2 })).toHaveLength(2);
  });

  it('searches in keyword and hybrid modes (hybrid by default), and explains both rankings', async () => {
    const ask = async (body: Record<string, unknown>) => {
      const res = await call('POST', '/vectors/search', { token: t, body });
      expect(res.status).toBe(200);
      return (await res.json()) as {
        mode: string;
        results: Array<Hit & { explain?: { dense: unknown; keyword: { rank: number } | null } }>;
      };
    };
    const keyword = await ask({ query_text: 'windowsill', mode: 'keyword', explain: true });
    expect(keyword.mode).toBe('keyword');
    expect(keyword.results.map((h) => h.payload.segment_id)).toEqual(['cat']);
    expect(keyword.results[0]!.explain).toEqual({
      dense: null,
      keyword: { rank: 1, score: keyword.results[0]!.score },
    });
    const hybrid = await ask({ query_text: 'a dog in the park', explain: true });
    expect(hybrid.mode).toBe('hybrid');
    expect(hybrid.results[0]!.payload.segment_id).toBe('dog');
    expect(hybrid.results[0]!.explain?.keyword?.rank).toBe(1);
    const tuned = await ask({
      query_text: 'a dog in the park',
      mode: 'hybrid',
      fusion: { method: 'rrf', k: 10, weight: 0.8 },
    });
    expect(tuned.results[0]!.score).toBeCloseTo(1 / (1 / 1.6 + 9) + 1 / (1 / 0.4 + 9), 6);
  });

  it('refuses a bad mode, fusion outside hybrid mode and fusion out of range, naming the field', async () => {
    const refuse = async (body: Record<string, unknown>, fields: string[]) => {
      const res = await call('POST', '/vectors/search', { token: t, body });
      expect(res.status).toBe(400);
      const problem = (await res.json()) as { errors: Array<{ field: string }> };
      expect(problem.errors.map((e) => e.field).sort()).toEqual(fields);
    };
    await refuse({ query_text: 'dog', mode: 'fuzzy' }, ['mode']);
    await refuse({ query_text: 'dog', mode: 'dense', fusion: { weight: 0.5 } }, ['fusion']);
    await refuse({ query_text: 'dog', fusion: { method: 'rrf', k: 0, weight: 1.5 } }, [
      'fusion.k',
      'fusion.weight',
    ]);
    // k is RRF's alone: refused with DBSF, named or by default.
    await refuse({ query_text: 'dog', fusion: { k: 10 } }, ['fusion.k']);
    await refuse({ query_text: 'dog', fusion: { method: 'dbsf', k: 10 } }, ['fusion.k']);
    await refuse({ query_text: 'dog', fusion: { method: 'borda' } }, ['fusion.method']);
    await refuse({ query_text: 'dog', fusion: { weight: 0.5, boost: 2 } }, ['fusion.boost']);
    await refuse({ query_text: 'dog', explain: 'yes' }, ['explain']);
  });
});

describe('embedder errors of a search, as API errors', () => {
  it('a store without a keyword index: 422 naming mode', () => {
    const err = embedderProblem(
      new EmbedderRejectedError(409, 'keyword_index_unavailable', 'no keyword index'),
    );
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(422);
    expect((err as AppError).options.errors?.[0]?.field).toBe('mode');
  });
});
