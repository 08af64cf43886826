/**
 * End-to-end reranking: the public POST /v1/rerank through wrangler dev's Worker to an embedder
 * started with RERANK_MODEL_NAME set to the ms-marco-MiniLM-shaped cross-encoder (the real model's
 * shape and tokenizer, seeded random weights: its scores are checked against
 * sentence-transformers' on the same weights, test/fixtures/reference/rerank-shaped.json, never
 * for relevance). Also: the Worker's own time beside the embedder's (Server-Timing), admission
 * (429 at the embedder, 503 + Retry-After at the Worker), and no text anywhere on disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RERANK_MODEL_HEADER } from '../../contract/rerank.js';
import { Api } from '../helpers/api.js';
import { startE2eStack } from '../helpers/e2e.js';
import { REPO_ROOT } from '../../scripts/lib/paths.js';
import { TEST_RERANKER, rerankerEnv } from '../helpers/paths.js';
import { filesContaining, testEnv } from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';

interface PairsFile {
  groups: Array<{ id: string; query: string; documents: string[] }>;
}
interface Fixture {
  groups: Array<{ id: string; ranking: number[]; pairs: Array<{ score: number }> }>;
}
interface Ranked {
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
  model: string;
}

const FIXTURES = path.join(REPO_ROOT, 'test/fixtures/reference');
const pairs = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, 'rerank-pairs.json'), 'utf8'),
) as PairsFile;
const fixture = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, 'rerank-shaped.json'), 'utf8'),
) as Fixture;

/** Items the embedder admits at once: small, so that two requests overflow it. */
const MAX_QUEUED = 8;
const run = Date.now().toString(36);
const CANARY = `kestrel-canary-${run}`;

let stack: TestStack;
let api: Api;

beforeAll(async () => {
  stack = await startE2eStack('rerank', {
    env: testEnv(rerankerEnv()),
    embedderEnv: {
      EMBEDDER_MAX_QUEUED_ITEMS: String(MAX_QUEUED),
      // Two 512-token pairs a pass: a forward pass holds the embedder's event loop, so the
      // admission test's requests are answered between the passes of the request it overflows.
      EMBEDDER_MAX_BATCH_TOKENS: '1024',
    },
  });
  api = await Api.forOrg(stack.apiUrl, stack.devJwtSecret, `rerank-${run}`);
}, 240_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

const rerank = (body: Record<string, unknown>) => api.request<Ranked>('POST', '/v1/rerank', body);

describe('POST /v1/rerank through the Worker', () => {
  it("ranks best first with sentence-transformers' scores, cut to the window as it cuts", async () => {
    for (const id of ['seasons', 'huge-query', 'unicode']) {
      const group = pairs.groups.find((g) => g.id === id)!;
      const reference = fixture.groups.find((g) => g.id === id)!;
      const res = await rerank({ query: group.query, documents: group.documents });
      expect(res.status, id).toBe(200);
      expect(res.body.model).toBe(TEST_RERANKER);
      expect(
        res.body.results.map((r) => r.index),
        id,
      ).toEqual(reference.ranking);
      for (const r of res.body.results) {
        expect(Math.abs(r.relevance_score - reference.pairs[r.index]!.score), id).toBeLessThan(
          1e-3,
        );
      }
    }
  });

  it("reports the embedder's share of the Worker's time (Server-Timing)", async () => {
    const group = pairs.groups.find((g) => g.id === 'seasons')!;
    const res = await rerank({
      query: group.query,
      documents: group.documents,
      top_n: 3,
      return_documents: true,
    });
    expect(res.status).toBe(200);
    expect(res.body.results).toHaveLength(3);
    for (const r of res.body.results) expect(r.document?.text).toBe(group.documents[r.index]);
    const timing = res.headers.get('server-timing') ?? '';
    const dur = (name: string) => Number(new RegExp(`${name};dur=(\\d+)`).exec(timing)?.[1]);
    expect(dur('embedder')).toBeGreaterThanOrEqual(0);
    expect(dur('app')).toBeGreaterThanOrEqual(dur('embedder'));
  });

  it('refuses work beyond the admission limit: 429 at the embedder, 503 + Retry-After at the Worker', async () => {
    // A request of MAX_QUEUED long pairs holds the whole admission for a few seconds...
    const long = pairs.groups.find((g) => g.id === 'seasons')!.documents[4]!;
    const busy = rerank({ query: 'seasons', documents: Array(MAX_QUEUED).fill(long) });
    const embedder = (p: string, init: RequestInit = {}) =>
      fetch(`${stack.embedderUrl}${p}`, {
        ...init,
        headers: {
          authorization: `Bearer ${stack.embedderToken}`,
          'content-type': 'application/json',
        },
      });
    const admitted = async () => {
      const text = await (await embedder('/metrics')).text();
      return Number(/^heimdex_queue_admitted_items (\S+)$/m.exec(text)?.[1] ?? 0);
    };
    for (let i = 0; i < 500 && (await admitted()) < MAX_QUEUED; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await admitted()).toBe(MAX_QUEUED);
    // ...so that one more text is refused before any work.
    const direct = await embedder('/v1/rerank', {
      method: 'POST',
      body: JSON.stringify({ query: 'q', texts: ['a', 'b'] }),
    });
    expect(direct.status).toBe(429);
    expect(Number(direct.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await direct.json()) as { code: string }).code).toBe('overloaded');
    const viaWorker = await rerank({ query: 'q', documents: ['a', 'b'] });
    // The first request may have finished meanwhile; while it runs, the Worker says "retry".
    if (viaWorker.status !== 200) {
      expect(viaWorker.status).toBe(503);
      expect(viaWorker.headers.get('retry-after')).toBeTruthy();
    }
    expect((await busy).status).toBe(200);
  });

  it('answers the embedder directly in TEI shape, with the model header', async () => {
    const res = await fetch(`${stack.embedderUrl}/v1/rerank`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stack.embedderToken}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ query: 'dogs', texts: ['a dog', 'a cat'], return_text: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get(RERANK_MODEL_HEADER)).toBe(TEST_RERANKER);
    const body = (await res.json()) as Array<{ index: number; score: number; text: string }>;
    expect(body.map((r) => r.text).sort()).toEqual(['a cat', 'a dog']);
  });

  it('leaves no text anywhere: not in the logs, the database or the vector store', async () => {
    const res = await rerank({
      query: `${CANARY} query`,
      documents: [`${CANARY} first`, `${CANARY} second`],
    });
    expect(res.status).toBe(200);
    // Nothing was queued or stored: the texts lived in one request.
    expect(filesContaining(stack.dataDir, CANARY)).toEqual([]);
  });
});
