/**
 * RERANK_BACKEND=tei|cohere (core/remote-rerank.ts): POST /v1/rerank through a remote rerank
 * server. Against a real peer of TEI's protocol — a second Heimdex embedder serving the
 * ms-marco-MiniLM-shaped cross-encoder at /v1/rerank — the scores and ranking are the peer's own,
 * also when a request is split into several calls; against recorded TEI and Cohere responses
 * (fixtures/remote) the requests have each protocol's shape; an outage becomes fast 503s.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CROSS_ENCODER_SHAPED,
  ensureCrossEncoderShaped,
} from '../../bench/lib/cross-encoder-model.js';
import { BENCH_MODELS_DIR } from '../../bench/lib/paths.js';
import { RERANK_MODEL_HEADER } from '../../contract/rerank.js';
import type { EmbedderConfig, RemoteRerankConfig } from '../src/config.js';
import { StartupError, startEmbedder } from '../src/server.js';
import type { RunningEmbedder } from '../src/server.js';
import { useEmbedder } from './embedder-fixture.js';
import { recorded, startFakeServer } from './fixtures/remote/server.js';
import type { FakeServer } from './fixtures/remote/server.js';
import { TOKEN, client, repoRoot, tempDir, testConfig } from './helpers.js';
import type { Json } from './helpers.js';

interface PairsFile {
  groups: Array<{ id: string; query: string; documents: string[] }>;
}
const pairs = JSON.parse(
  readFileSync(path.join(repoRoot, 'test/fixtures/reference/rerank-pairs.json'), 'utf8'),
) as PairsFile;
/** The short documents of two groups against the first query: 10 texts, Unicode ones included. */
const QUERY = pairs.groups[0]!.query;
const DOCUMENTS = pairs.groups
  .filter((g) => g.id === 'seasons' || g.id === 'unicode')
  .flatMap((g) => g.documents)
  .filter((d) => d.length < 500);

function remoteRerank(url: string, over: Partial<RemoteRerankConfig> = {}): RemoteRerankConfig {
  return {
    url,
    apiKey: TOKEN,
    protocol: 'tei',
    name: CROSS_ENCODER_SHAPED,
    model: null,
    batchSize: 32,
    concurrency: 2,
    timeoutMs: 10_000,
    maxRetries: 1,
    retryMaxMs: 1000,
    breakerThreshold: 5,
    breakerCooldownMs: 1000,
    ...over,
  };
}

describe('RERANK_BACKEND=tei against a Heimdex peer', () => {
  const peer = useEmbedder('rerank-peer', (dir) => {
    ensureCrossEncoderShaped();
    return testConfig({
      dataDir: dir,
      rerank: { name: CROSS_ENCODER_SHAPED, dir: BENCH_MODELS_DIR, dtype: 'fp32' },
    });
  });
  // Parts of 3 texts, two at a time: a 10-text request is four calls.
  const front = useEmbedder('rerank-front', (dir) =>
    testConfig({
      dataDir: dir,
      logLevel: 'debug',
      remoteRerank: remoteRerank(`${peer.embedder.url}/v1`, {
        model: CROSS_ENCODER_SHAPED,
        batchSize: 3,
      }),
    }),
  );
  const rerank = (call: typeof peer.call, body: Record<string, unknown>) =>
    call('POST', '/v1/rerank', { query: QUERY, texts: DOCUMENTS, ...body });

  it.each([[{}], [{ raw_scores: true, return_text: true }]])(
    "gives the peer's own scores and ranking (%j), merged from several calls",
    async (options) => {
      const [mine, theirs] = await Promise.all([
        rerank(front.call, options),
        rerank(peer.call, options),
      ]);
      expect(mine.status).toBe(200);
      expect(theirs.status).toBe(200);
      expect(mine.headers.get(RERANK_MODEL_HEADER)).toBe(CROSS_ENCODER_SHAPED);
      expect(mine.json).toHaveLength(DOCUMENTS.length);
      expect(mine.json.map((r: Json) => r.index)).toEqual(theirs.json.map((r: Json) => r.index));
      mine.json.forEach((r: Json, k: number) => {
        expect(Math.abs(r.score - theirs.json[k].score), `rank ${k}`).toBeLessThanOrEqual(1e-6);
        expect(r.text).toBe(theirs.json[k].text);
      });
    },
  );

  it('keeps the route’s own checks, and counts its calls without any text', async () => {
    const other = await rerank(front.call, { model: 'another-reranker' });
    expect(other.status).toBe(400);
    expect(other.json.errors[0].field).toBe('model');
    const metrics = await fetch(`${front.embedder.url}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(/heimdex_remote_requests_total\{backend="rerank",outcome="ok"\} [1-9]/);
    expect(metrics).toMatch(
      /heimdex_rerank_texts_total\{model="ms-marco-minilm-l6-shaped"\} [1-9]/,
    );
    const logs = front.logs.join('\n');
    for (const text of [QUERY, ...DOCUMENTS]) expect(logs).not.toContain(text.slice(0, 40));
  });
});

describe('recorded TEI and Cohere rerank responses', () => {
  let server: FakeServer;
  beforeAll(async () => {
    server = await startFakeServer(() => ({ status: 500 }));
  });
  afterAll(async () => {
    await server.close();
  });

  /** A recorded ranking cut to the request's texts (the warm-up sends one). */
  function tei() {
    const all = recorded('tei-rerank.json') as Array<{ index: number }>;
    server.handle((r) => ({
      status: 200,
      body: all.filter((x) => x.index < r.body.texts.length),
    }));
  }
  function cohere() {
    const all = recorded('cohere-rerank-v2.json') as { results: Array<{ index: number }> };
    server.handle((r) => ({
      status: 200,
      body: { ...all, results: all.results.filter((x) => x.index < r.body.documents.length) },
    }));
  }

  async function withFront<T>(
    config: Partial<RemoteRerankConfig>,
    run: (embedder: RunningEmbedder) => Promise<T>,
  ): Promise<T> {
    const tmp = await tempDir('rerank-recorded');
    const embedder = await startEmbedder(
      testConfig({ dataDir: tmp.dir, remoteRerank: remoteRerank(server.url, config) }),
      { log: () => undefined },
    );
    try {
      return await run(embedder);
    } finally {
      await embedder.close();
      await tmp.remove();
    }
  }

  const TEXTS = ['first', 'second', 'third', 'fourth'];

  it("ranks by TEI's scores, sending TEI's request", async () => {
    tei();
    server.received.length = 0;
    await withFront({ apiKey: null }, async (embedder) => {
      const res = await client(embedder.url)('POST', '/v1/rerank', {
        query: 'which one',
        texts: TEXTS,
        raw_scores: true,
        truncate: false,
      });
      expect(res.status).toBe(200);
      expect(res.json).toEqual([
        { index: 2, score: 0.99871904 },
        { index: 0, score: 0.61503506 },
        { index: 3, score: 0.042163964 },
        { index: 1, score: 0.00012207031 },
      ]);
    });
    expect(server.received.at(-1)).toEqual({
      method: 'POST',
      url: '/rerank',
      authorization: undefined,
      body: {
        query: 'which one',
        texts: TEXTS,
        raw_scores: true,
        return_text: false,
        truncate: false,
      },
    });
  });

  it("ranks by Cohere's relevance scores, sending Cohere's request with the key", async () => {
    cohere();
    server.received.length = 0;
    await withFront(
      { protocol: 'cohere', name: 'rerank-v3.5', model: 'rerank-v3.5', apiKey: 'co-key-123' },
      async (embedder) => {
        const call = client(embedder.url);
        const res = await call('POST', '/v1/rerank', { query: 'which one', texts: TEXTS });
        expect(res.status).toBe(200);
        expect(res.headers.get(RERANK_MODEL_HEADER)).toBe('rerank-v3.5');
        expect(res.json.map((r: Json) => [r.index, r.score])).toEqual([
          [2, 0.9987],
          [0, 0.6151],
          [3, 0.0421],
          [1, 0.0001],
        ]);
        const raw = await call('POST', '/v1/rerank', {
          query: 'which one',
          texts: TEXTS,
          raw_scores: true,
        });
        expect(raw.status).toBe(400);
        expect(raw.json.code).toBe('unsupported_option');
        expect(raw.json.errors[0].field).toBe('raw_scores');
      },
    );
    expect(server.received.at(-1)).toEqual({
      method: 'POST',
      url: '/rerank',
      authorization: 'Bearer co-key-123',
      body: {
        model: 'rerank-v3.5',
        query: 'which one',
        documents: TEXTS,
        top_n: 4,
        return_documents: false,
      },
    });
  });

  it('turns an outage into 503s with Retry-After, fast once the breaker opens', async () => {
    tei();
    await withFront({ maxRetries: 0, breakerThreshold: 1, breakerCooldownMs: 5000 }, async (e) => {
      server.handle(() => ({ status: 503, body: { error: 'Model is overloaded' } }));
      const call = client(e.url);
      const body = { query: 'q', texts: TEXTS };
      const first = await call('POST', '/v1/rerank', body);
      expect(first.status).toBe(503);
      expect(first.json.code).toBe('backend_unavailable');
      expect(first.json.detail).toContain('Model is overloaded');
      const hits = server.received.length;
      const second = await call('POST', '/v1/rerank', body);
      expect(second.status).toBe(503);
      expect(second.json.detail).toContain('circuit breaker is open');
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(4);
      expect(server.received.length).toBe(hits);
    });
  });

  it('refuses to start when the rerank server cannot be reached or answers another protocol', async () => {
    server.handle(() => ({ status: 200, body: { results: [] } }));
    const tmp = await tempDir('rerank-start');
    try {
      const start = (over: Partial<RemoteRerankConfig>) =>
        startEmbedder(
          testConfig({
            dataDir: tmp.dir,
            remoteRerank: remoteRerank(server.url, over),
          }) as EmbedderConfig,
          { log: () => undefined },
        );
      await expect(start({})).rejects.toThrow(StartupError);
      await expect(start({})).rejects.toThrow(/not the expected protocol.*RERANK_REMOTE_URL/);
    } finally {
      await tmp.remove();
    }
  });
});
