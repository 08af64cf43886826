/**
 * POST /v1/rerank inside workerd, against the real embedder of the global setup, which serves the
 * ms-marco-MiniLM-shaped cross-encoder (random weights: the scores are checked against
 * sentence-transformers' on the same weights, test/fixtures/reference/rerank-shaped.json, not for
 * relevance). The auth, tenancy and bad-input cases of the route are in routes.ts's table.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RERANK_MODEL_HEADER } from '../../contract/rerank';
import pairsFile from '../../test/fixtures/reference/rerank-pairs.json';
import fixture from '../../test/fixtures/reference/rerank-shaped.json';
import { call, envWith, expectProblem, token, uniqueOrg, withEmbedderDown } from './helpers';

interface Ranked {
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
  model: string;
}

const RERANKER = 'ms-marco-minilm-l6-shaped';
const group = pairsFile.groups.find((g) => g.id === 'seasons')!;
const reference = fixture.groups.find((g) => g.id === 'seasons')!;

async function rerank(body: Record<string, unknown>, env = envWith()): Promise<Response> {
  return call('POST', '/v1/rerank', { token: await token(uniqueOrg('rerank')), body, env });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('POST /v1/rerank', () => {
  it("ranks the documents best first with sentence-transformers' scores (within 1e-3)", async () => {
    const res = await rerank({ query: group.query, documents: group.documents });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Ranked;
    expect(body.model).toBe(RERANKER);
    expect(body.results.map((r) => r.index)).toEqual(reference.ranking);
    for (const r of body.results) {
      expect(Object.keys(r)).toEqual(['index', 'relevance_score']);
      const ref = reference.pairs[r.index]!;
      expect(Math.abs(r.relevance_score - ref.score)).toBeLessThan(1e-3);
      expect(r.relevance_score).toBeGreaterThan(0);
      expect(r.relevance_score).toBeLessThan(1);
    }
    // The embedder's share of the Worker's time, as search reports it.
    const timing = res.headers.get('server-timing') ?? '';
    expect(timing).toMatch(/embedder;dur=\d+/);
    expect(timing).toMatch(/app;dur=\d+/);
  });

  it('keeps the best top_n and returns the documents asked for', async () => {
    const res = await rerank({
      query: group.query,
      documents: group.documents,
      top_n: 2,
      return_documents: true,
      model: RERANKER,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Ranked;
    expect(body.results.map((r) => r.index)).toEqual(reference.ranking.slice(0, 2));
    for (const r of body.results) expect(r.document).toEqual({ text: group.documents[r.index] });
    // top_n above the count returns them all.
    const all = (await (
      await rerank({ query: group.query, documents: group.documents, top_n: 50 })
    ).json()) as Ranked;
    expect(all.results).toHaveLength(group.documents.length);
  });

  it('scores a long document cut to the window, as CrossEncoder does', async () => {
    const long = fixture.groups.find((g) => g.id === 'huge-query')!;
    const source = pairsFile.groups.find((g) => g.id === 'huge-query')!;
    const res = await rerank({ query: source.query, documents: source.documents });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Ranked;
    expect(body.results.map((r) => r.index)).toEqual(long.ranking);
    for (const r of body.results) {
      expect(Math.abs(r.relevance_score - long.pairs[r.index]!.score)).toBeLessThan(1e-3);
    }
  });

  it('refuses another reranker than the served one, naming model', async () => {
    const res = await rerank({ query: 'q', documents: ['a'], model: 'bge-reranker-base' });
    const problem = await expectProblem(res, 400, 'validation_failed');
    expect(problem.errors?.map((e) => e.field)).toEqual(['model']);
  });

  it('answers 404 rerank_not_configured when the embedder serves no reranker', async () => {
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.endsWith('/v1/rerank')) return realFetch(input, init);
      return Promise.resolve(
        new Response(
          JSON.stringify({
            type: 'https://heimdex.dev/problems/rerank_not_configured',
            status: 404,
            code: 'rerank_not_configured',
            detail: 'this embedder serves no reranker',
          }),
          { status: 404, headers: { 'content-type': 'application/problem+json' } },
        ),
      );
    });
    const res = await rerank({ query: 'q', documents: ['a'] });
    const problem = await expectProblem(res, 404, 'rerank_not_configured');
    expect(problem.detail).toContain('RERANK_MODEL_NAME');
  });

  it('answers 503 with Retry-After when the embedder is down', async () => {
    const { result, attempts } = await withEmbedderDown((env) =>
      rerank({ query: 'q', documents: ['a'] }, env),
    );
    await expectProblem(result, 503, 'dependency_unavailable');
    expect(result.headers.get('retry-after')).toBeTruthy();
    expect(attempts).toEqual(['/v1/rerank']);
  });

  it('treats an answer that does not rank every document once, best first, as the embedder failing', async () => {
    const answers = [
      { body: [{ index: 0, score: 0.1 }], model: RERANKER }, // one of two documents
      {
        body: [
          { index: 0, score: 0.1 },
          { index: 0, score: 0.1 },
        ],
        model: RERANKER,
      },
      {
        body: [
          { index: 1, score: 0.1 },
          { index: 0, score: 0.9 },
        ],
        model: RERANKER,
      }, // not sorted
      {
        body: [
          { index: 1, score: 0.9 },
          { index: 0, score: 0.1 },
        ],
        model: null,
      }, // no model
    ];
    const realFetch = globalThis.fetch;
    for (const answer of answers) {
      vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
        const url = input instanceof Request ? input.url : String(input);
        if (!url.endsWith('/v1/rerank')) return realFetch(input, init);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (answer.model) headers[RERANK_MODEL_HEADER] = answer.model;
        return Promise.resolve(new Response(JSON.stringify(answer.body), { headers }));
      });
      await expectProblem(
        await rerank({ query: 'q', documents: ['a', 'b'] }),
        503,
        'dependency_unavailable',
      );
      vi.restoreAllMocks();
    }
  });

  it('keeps the texts out of its log lines', async () => {
    const canary = `osprey-canary-${crypto.randomUUID().slice(0, 8)}`;
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => void lines.push(String(line)));
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => void lines.push(String(line)));
    const env = envWith({ LOG_LEVEL: 'debug' });
    const ok = await rerank({ query: `${canary} q`, documents: [`${canary} doc`] }, env);
    expect(ok.status).toBe(200);
    const refused = await rerank({ query: canary, documents: [canary, ' '] }, env);
    expect(refused.status).toBe(400);
    expect(lines.some((l) => l.includes('"request"'))).toBe(true);
    expect(lines.join('\n')).not.toContain(canary);
  });
});
