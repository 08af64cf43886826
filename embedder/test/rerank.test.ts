/**
 * Cross-encoder reranking (core/reranker.ts, POST /v1/rerank).
 *
 * Parity: the ms-marco-MiniLM-shaped cross-encoder (bench/lib/cross-encoder-model.ts: the real
 * model's shape and tokenizer, seeded random weights) through the embedder's reranker, against
 * sentence-transformers' CrossEncoder on the same weights (test/fixtures/reference/
 * rerank-shaped.json, made by scripts/models/rerank_reference.py): the same token ids per pair
 * (longest_first truncation at 512 included), every score and logit within 1e-3, the same ranking.
 * The weights are random, so this proves serving parity, not reranking quality.
 *
 * Needs the model cache's tokenizer (`npm run models`); builds the shaped model when missing.
 * Failures name pair ids and numbers, never the texts.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CROSS_ENCODER_SHAPED,
  ensureCrossEncoderShaped,
} from '../../bench/lib/cross-encoder-model.js';
import { BENCH_MODELS_DIR } from '../../bench/lib/paths.js';
import { RERANK_MODEL_HEADER } from '../../contract/rerank.js';
import { parseEmbedderConfig } from '../src/config.js';
import type { RerankConfig } from '../src/config.js';
import { QueueLimiter } from '../src/core/batcher.js';
import { ServiceError } from '../src/core/errors.js';
import { Metrics } from '../src/core/metrics.js';
import { CrossEncoderModel, Reranker, longestFirst } from '../src/core/reranker.js';
import type { RerankerConfig } from '../src/core/reranker.js';
import { rerankerSpec } from '../src/core/rerank-registry.js';
import { startEmbedder } from '../src/server.js';
import { useEmbedder } from './embedder-fixture.js';
import { POTION_CONFIG, TOKEN, client, repoRoot, tempDir, testConfig } from './helpers.js';
import type { Json } from './helpers.js';

const FIXTURES = path.join(repoRoot, 'test/fixtures/reference');
/** The issue's tolerance: every score within 1e-3 of sentence-transformers'. */
const TOLERANCE = 1e-3;

interface FixturePair {
  index: number;
  score: number;
  logit: number;
  ids: string;
  tokens: number;
  segment0: number;
  truncated: boolean;
}
interface Fixture {
  model: string;
  generator_version: number;
  files_sha256: Record<string, string>;
  pairs_sha256: string;
  max_length: number;
  activation: string;
  groups: Array<{ id: string; ranking: number[]; pairs: FixturePair[] }>;
}
interface PairsFile {
  groups: Array<{ id: string; query: string; documents: string[] }>;
}

const fixture = JSON.parse(
  readFileSync(path.join(FIXTURES, 'rerank-shaped.json'), 'utf8'),
) as Fixture;
const pairs = JSON.parse(
  readFileSync(path.join(FIXTURES, 'rerank-pairs.json'), 'utf8'),
) as PairsFile;

const RERANK: RerankConfig = { name: CROSS_ENCODER_SHAPED, dir: BENCH_MODELS_DIR, dtype: 'fp32' };
const MODEL_CONFIG: RerankerConfig = { ...POTION_CONFIG, ...RERANK };
const LIMITS = { maxBatchTokens: 16_384, maxBatchItems: 64 };

function u16(b64: string): number[] {
  const bytes = Buffer.from(b64, 'base64');
  return Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readUInt16LE(i * 2));
}

/** A reranker over `model` with its own metrics and admission (capacity 4096 unless given). */
function reranker(
  model: CrossEncoderModel,
  options: { limits?: typeof LIMITS; admission?: QueueLimiter } = {},
) {
  const metrics = new Metrics({ defaultMetrics: false });
  const admission = options.admission ?? new QueueLimiter(4096);
  return {
    metrics,
    admission,
    reranker: new Reranker({ model, admission, limits: options.limits ?? LIMITS, metrics }),
  };
}

/** A histogram's count and sum for `model` (prom-client JSON). */
async function histogram(metrics: Metrics, name: string, model: string) {
  const json = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name) as
    | { values: Array<{ metricName?: string; labels: Record<string, unknown>; value: number }> }
    | undefined;
  const of = (suffix: string) =>
    json?.values.find((v) => v.metricName === `${name}_${suffix}` && v.labels.model === model)
      ?.value ?? 0;
  return { count: of('count'), sum: of('sum') };
}

async function counter(metrics: Metrics, name: string, labels: Record<string, string>) {
  const json = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name) as
    { values: Array<{ labels: Record<string, unknown>; value: number }> } | undefined;
  return (
    json?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ??
    0
  );
}

describe('longest_first truncation (Hugging Face tokenizers)', () => {
  // [query tokens, text tokens] → kept, for a budget of 17 (max_length 20 less [CLS] [SEP] [SEP]),
  // as BertTokenizerFast(...)(q, d, truncation=True, max_length=20) keeps them.
  it.each([
    [5, 30, 5, 12],
    [30, 5, 12, 5],
    [10, 10, 8, 9],
    [9, 9, 8, 9],
    [17, 17, 8, 9],
    [8, 12, 8, 9],
    [3, 3, 3, 3],
    [16, 1, 16, 1],
    [1, 16, 1, 16],
    [16, 2, 15, 2],
    [11, 6, 11, 6],
    [31, 30, 9, 8],
    [30, 31, 8, 9],
    [0, 40, 0, 17],
  ])('%i + %i tokens keep %i + %i', (q, d, keptQ, keptD) => {
    expect(longestFirst(q, d, 17)).toEqual([keptQ, keptD]);
  });
});

describe('the reranker registry', () => {
  it('maps short names to Hub cross-encoders with a window and an activation', () => {
    expect(rerankerSpec('ms-marco-minilm-l6-v2')).toEqual({
      name: 'ms-marco-minilm-l6-v2',
      hubId: 'Xenova/ms-marco-MiniLM-L-6-v2',
      maxTokens: 512,
      activation: 'sigmoid',
    });
    expect(rerankerSpec('bge-reranker-base').hubId).toBe('Xenova/bge-reranker-base');
    // Any other name is a Hub id or a folder, read from the model itself.
    expect(rerankerSpec('my-folder')).toEqual({
      name: 'my-folder',
      hubId: null,
      maxTokens: null,
      activation: null,
    });
  });

  it('is configured by RERANK_MODEL_NAME, from RERANK_MODEL_DIR or EMBEDDING_MODEL_DIR', () => {
    const base = {
      EMBEDDER_TOKEN: TOKEN,
      KEYWORD_INDEX_KEY: 'k'.repeat(32),
      EMBEDDING_MODEL_DIR: 'models',
    };
    expect(parseEmbedderConfig(base, '/srv').rerank).toBeNull();
    expect(
      parseEmbedderConfig({ ...base, RERANK_MODEL_NAME: 'ms-marco-minilm-l6-v2' }, '/srv').rerank,
    ).toEqual({ name: 'ms-marco-minilm-l6-v2', dir: '/srv/models', dtype: 'fp32' });
    expect(
      parseEmbedderConfig(
        { ...base, RERANK_MODEL_NAME: 'x', RERANK_MODEL_DIR: 'rerankers', EMBEDDING_DTYPE: 'q8' },
        '/srv',
      ).rerank,
    ).toEqual({ name: 'x', dir: '/srv/rerankers', dtype: 'q8' });
    expect(
      parseEmbedderConfig(
        { ...base, RERANK_MODEL_NAME: 'x', EMBEDDING_DTYPE: 'q8', RERANK_DTYPE: 'fp32' },
        '/srv',
      ).rerank?.dtype,
    ).toBe('fp32');
    expect(() => parseEmbedderConfig({ ...base, RERANK_MODEL_NAME: 'two words' }, '/srv')).toThrow(
      /RERANK_MODEL_NAME must be a reranker name/,
    );
  });
});

describe('parity with sentence-transformers CrossEncoder (shaped model, random weights)', () => {
  let model: CrossEncoderModel;
  beforeAll(async () => {
    const built = ensureCrossEncoderShaped();
    // The fixture was made from these exact files; a changed generator needs a new fixture.
    for (const [file, sha] of Object.entries(fixture.files_sha256)) {
      expect(built.files[file]?.sha256, `${file}: re-run scripts/models/rerank_reference.py`).toBe(
        sha,
      );
    }
    // The pairs' content (compact JSON), as the reference script hashed it.
    const content = JSON.stringify(pairs.groups);
    expect(createHash('sha256').update(content).digest('hex')).toBe(fixture.pairs_sha256);
    model = await CrossEncoderModel.load(MODEL_CONFIG);
  }, 120_000);
  afterAll(async () => {
    await model?.dispose();
  });

  it("has the reference's window and activation", () => {
    expect(model.maxTokens).toBe(fixture.max_length);
    expect(fixture.activation).toBe('Sigmoid');
    expect(model.activation).toBe('sigmoid');
    expect(model.pairSpecialTokens).toBe(3);
  });

  it('tokenizes every pair as the reference does ([CLS] q [SEP] d [SEP], longest_first)', () => {
    let truncated = 0;
    for (const group of fixture.groups) {
      const source = pairs.groups.find((g) => g.id === group.id)!;
      const query = model.encodeQuery(source.query);
      for (const ref of group.pairs) {
        const pair = model.pair(query, source.documents[ref.index]!, true);
        const id = `${group.id}/${ref.index}`;
        expect(pair.ids, id).toEqual(u16(ref.ids));
        expect(pair.typeIds!.filter((t) => t === 0).length, id).toBe(ref.segment0);
        expect(pair.typeIds!.length - ref.segment0, id).toBe(ref.tokens - ref.segment0);
        expect(pair.stats.truncated, id).toBe(ref.truncated);
        if (ref.truncated) truncated++;
      }
    }
    // Both ways of cutting are covered: the text only, the query only, and both halves.
    expect(truncated).toBeGreaterThanOrEqual(5);
  });

  it('scores every pair within 1e-3 of CrossEncoder.predict (sigmoid) and its logits', async () => {
    const { reranker: r } = reranker(model);
    let maxScore = 0;
    let maxLogit = 0;
    for (const group of fixture.groups) {
      const source = pairs.groups.find((g) => g.id === group.id)!;
      const request = { query: source.query, texts: source.documents };
      const scored = (await r.rerank(request)).result.ranked;
      const raw = (await r.rerank({ ...request, rawScores: true })).result.ranked;
      for (const ref of group.pairs) {
        const score = scored.find((s) => s.index === ref.index)!.score;
        const logit = raw.find((s) => s.index === ref.index)!.score;
        maxScore = Math.max(maxScore, Math.abs(score - ref.score));
        maxLogit = Math.max(maxLogit, Math.abs(logit - ref.logit));
        expect(Math.abs(score - ref.score), `${group.id}/${ref.index} score`).toBeLessThan(
          TOLERANCE,
        );
        expect(Math.abs(logit - ref.logit), `${group.id}/${ref.index} logit`).toBeLessThan(
          TOLERANCE,
        );
      }
      // CrossEncoder.rank's order, best first.
      expect(
        scored.map((s) => s.index),
        group.id,
      ).toEqual(group.ranking);
    }
    console.log(
      `rerank parity: max |score diff| ${maxScore.toExponential(2)}, max |logit diff| ${maxLogit.toExponential(2)}`,
    );
  }, 120_000);

  it('gives the same scores however the pairs are batched (token budget)', async () => {
    const group = pairs.groups.find((g) => g.id === 'unicode')!;
    const request = { query: group.query, texts: group.documents, rawScores: true };
    const whole = await reranker(model).reranker.rerank(request);
    // 64 padded tokens a pass: the unicode pairs (23..66 tokens) go one or two at a time.
    const small = reranker(model, { limits: { maxBatchTokens: 64, maxBatchItems: 64 } });
    const split = await small.reranker.rerank(request);
    for (const s of split.result.ranked) {
      const w = whole.result.ranked.find((x) => x.index === s.index)!;
      expect(Math.abs(s.score - w.score)).toBeLessThan(1e-4);
    }
    const batches = await histogram(small.metrics, 'heimdex_batch_size', CROSS_ENCODER_SHAPED);
    const tokens = await histogram(small.metrics, 'heimdex_batch_tokens', CROSS_ENCODER_SHAPED);
    expect(batches.sum).toBe(group.documents.length);
    expect(batches.count).toBeGreaterThanOrEqual(group.documents.length - 1);
    // No pass beyond the budget, except a single pair longer than it on its own (66 tokens).
    expect(tokens.sum).toBeLessThanOrEqual(64 * (batches.count - 1) + 66);
  }, 60_000);

  it('counts texts, truncations and passes by reranker (numbers only)', async () => {
    const { reranker: r, metrics } = reranker(model);
    const group = pairs.groups.find((g) => g.id === 'seasons')!;
    await r.rerank({ query: group.query, texts: group.documents });
    const labels = { model: CROSS_ENCODER_SHAPED };
    expect(await counter(metrics, 'heimdex_rerank_texts_total', labels)).toBe(5);
    expect(await counter(metrics, 'heimdex_rerank_truncated_total', labels)).toBe(1);
    const passes = await histogram(metrics, 'heimdex_inference_duration_seconds', labels.model);
    expect(passes.count).toBe(1);
    const text = await metrics.registry.metrics();
    for (const doc of group.documents) expect(text).not.toContain(doc.slice(0, 20));
  });

  it('refuses work beyond the admission limit with 429 before tokenizing', async () => {
    const admission = new QueueLimiter(4);
    const { reranker: r } = reranker(model, { admission });
    const held = admission.reserve(3);
    try {
      const err = await r.rerank({ query: 'q', texts: ['a', 'b'] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as ServiceError).code).toBe('overloaded');
      expect((err as ServiceError).options.retryAfterSeconds).toBeGreaterThan(0);
    } finally {
      held.release();
    }
    // Everything the refused request reserved was given back; a request that fits runs.
    expect(admission.size).toBe(0);
    await expect(r.rerank({ query: 'q', texts: ['a', 'b'] })).resolves.toBeTruthy();
    expect(admission.size).toBe(0);
  });

  it('refuses a pair over the window with truncate: false, naming the text or the query', async () => {
    const { reranker: r } = reranker(model);
    const long = 'word '.repeat(600);
    const err = (await r
      .rerank({ query: 'q', texts: ['short', long], truncate: false })
      .catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe('payload_too_large');
    expect(err.options.field).toBe('texts.1');
    const byQuery = (await r
      .rerank({ query: long, texts: ['short'], truncate: false })
      .catch((e: unknown) => e)) as ServiceError;
    expect(byQuery.options.field).toBe('query');
    expect(byQuery.message).not.toContain('word');
  });

  it('refuses another reranker name (400 naming model)', async () => {
    const { reranker: r } = reranker(model);
    const err = (await r
      .rerank({ query: 'q', texts: ['a'], model: 'bge-reranker-base' })
      .catch((e: unknown) => e)) as ServiceError;
    expect(err.code).toBe('unknown_model');
    expect(err.options.field).toBe('model');
  });
});

describe('POST /v1/rerank', () => {
  const CANARY = `heron-canary-${Date.now().toString(36)}`;
  const served = useEmbedder('rerank', (dir) => {
    ensureCrossEncoderShaped();
    return testConfig({ dataDir: dir, rerank: RERANK });
  });
  const { call, logs } = served;
  const group = pairs.groups.find((g) => g.id === 'seasons')!;
  const reference = fixture.groups.find((g) => g.id === 'seasons')!;

  it('answers TEI-style [{index, score}] best first, with timing headers and the model', async () => {
    const res = await call('POST', '/v1/rerank', { query: group.query, texts: group.documents });
    expect(res.status).toBe(200);
    const body = res.json as Array<{ index: number; score: number; text?: string }>;
    expect(body.map((r) => r.index)).toEqual(reference.ranking);
    for (const r of body) {
      expect(Object.keys(r).sort()).toEqual(['index', 'score']);
      const ref = reference.pairs[r.index]!;
      expect(Math.abs(r.score - ref.score)).toBeLessThan(TOLERANCE);
    }
    expect(res.headers.get(RERANK_MODEL_HEADER)).toBe(CROSS_ENCODER_SHAPED);
    for (const h of ['x-tokenization-time', 'x-queue-time', 'x-inference-time', 'x-total-time']) {
      expect(Number(res.headers.get(h))).toBeGreaterThanOrEqual(0);
    }
  });

  it('echoes texts with return_text and gives logits with raw_scores', async () => {
    const res = await call('POST', '/v1/rerank', {
      query: group.query,
      texts: group.documents,
      return_text: true,
      raw_scores: true,
    });
    expect(res.status).toBe(200);
    for (const r of res.json as Array<{ index: number; score: number; text: string }>) {
      expect(r.text).toBe(group.documents[r.index]);
      expect(Math.abs(r.score - reference.pairs[r.index]!.logit)).toBeLessThan(TOLERANCE);
    }
  });

  it('validates the body and names the field', async () => {
    const cases: Array<[unknown, number, string, string]> = [
      [{ query: 'q', texts: [] }, 400, 'validation_failed', 'texts'],
      [{ query: 'q', texts: ['a', '  '] }, 400, 'validation_failed', 'texts.1'],
      [{ query: ' ', texts: ['a'] }, 400, 'validation_failed', 'query'],
      [{ texts: ['a'] }, 400, 'validation_failed', 'query'],
      [{ query: 'q', texts: ['a'], top_n: 1 }, 400, 'validation_failed', 'top_n'],
      [{ query: 'q', texts: ['a'], model: 'other' }, 400, 'unknown_model', 'model'],
      [
        { query: 'q', texts: ['a', 'word '.repeat(600)], truncate: false },
        413,
        'payload_too_large',
        'texts.1',
      ],
    ];
    for (const [body, status, code, field] of cases) {
      const res = await call('POST', '/v1/rerank', body);
      expect(res.status, field).toBe(status);
      expect(res.json.code, field).toBe(code);
      expect(res.json.errors?.[0]?.field, field).toBe(field);
    }
    const many = await call('POST', '/v1/rerank', {
      query: 'q',
      texts: Array.from({ length: 1001 }, (_, i) => `t${i}`),
    });
    expect(many.status).toBe(400);
  });

  it('requires the service token', async () => {
    const res = await client(served.embedder.url, null)('POST', '/v1/rerank', {
      query: 'q',
      texts: ['a'],
    });
    expect(res.status).toBe(401);
  });

  it('counts requests by status and never logs or counts the texts', async () => {
    const res = await call('POST', '/v1/rerank', {
      query: `${CANARY} query`,
      texts: [`${CANARY} one`, `${CANARY} two`],
    });
    expect(res.status).toBe(200);
    const refused = await call('POST', '/v1/rerank', { query: CANARY, texts: [] });
    expect(refused.status).toBe(400);
    const scrape = await fetch(`${served.embedder.url}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(scrape.status).toBe(200);
    const text = await scrape.text();
    expect(text).toMatch(/heimdex_rerank_requests_total\{status="200"\} [1-9]/);
    expect(text).toMatch(/heimdex_rerank_errors_total\{code="validation_failed"\} [1-9]/);
    expect(text).toContain(`heimdex_batch_size_count{model="${CROSS_ENCODER_SHAPED}"}`);
    expect(text).not.toContain(CANARY);
    expect(logs.join('\n')).not.toContain(CANARY);
    const line = logs
      .map((l) => JSON.parse(l) as Json)
      .find((l) => l.msg === 'request' && l.path === '/v1/rerank' && l.status === 200);
    expect(line).toMatchObject({ path: '/v1/rerank', items: expect.any(Number) });
    const started = logs
      .map((l) => JSON.parse(l) as Json)
      .find((l) => l.msg === 'embedder started');
    expect(started).toMatchObject({ reranker: CROSS_ENCODER_SHAPED, reranker_max_tokens: 512 });
  });
});

describe('an embedder without a reranker', () => {
  const { call } = useEmbedder('rerank-off');

  it('answers 404 rerank_not_configured, saying how to enable it', async () => {
    const res = await call('POST', '/v1/rerank', { query: 'q', texts: ['a'] });
    expect(res.status).toBe(404);
    expect(res.json.code).toBe('rerank_not_configured');
    expect(res.json.detail).toContain('RERANK_MODEL_NAME');
  });
});

describe('reranker start-up failures', () => {
  it('refuses to start with a reranker that is not in RERANK_MODEL_DIR, naming what is there', async () => {
    const dir = await tempDir('rerank-missing');
    try {
      const config = testConfig({
        dataDir: dir.dir,
        rerank: { name: 'ms-marco-minilm-l6-v2', dir: BENCH_MODELS_DIR, dtype: 'fp32' },
      });
      const err = await startEmbedder(config).then(
        async (running) => {
          await running.close();
          throw new Error('the embedder started');
        },
        (e: unknown) => e as Error,
      );
      expect(err.name).toBe('StartupError');
      expect(err.message).toContain('RERANK_MODEL_DIR');
      expect(err.message).toContain('Xenova/ms-marco-MiniLM-L-6-v2');
      expect(err.message).toContain('Unset RERANK_MODEL_NAME');
    } finally {
      await dir.remove();
    }
  });

  it('refuses a model that is not a one-label cross-encoder (an embedding model)', async () => {
    const err = await CrossEncoderModel.load({
      ...POTION_CONFIG,
      name: POTION_CONFIG.name,
      dir: POTION_CONFIG.dir,
    }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.name).toBe('StartupError');
  });
});
