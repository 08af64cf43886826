import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useEmbedder } from './embedder-fixture.js';
import { DOG, POTION, TOKEN, client, embedItem, postSearch, testConfig } from './helpers.js';
import { until as untilTrue } from './helpers.js';
import type { Json } from './helpers.js';

/** About 500 tokens: a pass over many of these takes a while, even for potion. */
const longText = (i: number): string => `${DOG} number ${i} `.repeat(45);

const item = (over: Record<string, unknown> = {}) => embedItem('serve-org', over);

const longItems = (n: number, org: string) =>
  Array.from({ length: n }, (_, i) =>
    item({ org_id: org, segment_id: `s${i}`, text: longText(i) }),
  );

/** Polls `probe` every 5 ms for up to 10 s. */
const until = (probe: () => Promise<boolean>, what: string, timeoutMs = 10_000) =>
  untilTrue(probe, what, timeoutMs, 5);

/** Sum of a metric's samples whose labels include `labels` (Prometheus text format). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total += Number(match[3]);
  }
  return total;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return res.text();
}

async function queued(url: string, model = POTION): Promise<number> {
  return sample(await scrape(url), 'heimdex_queue_depth', { model });
}

function expectProblem(
  res: { status: number; headers: Headers; json: Json },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.json).toMatchObject({ status, code, type: `https://heimdex.dev/problems/${code}` });
}

describe('metrics and timing headers', () => {
  const served = useEmbedder('metrics', (dir) => testConfig({ dataDir: dir, logLevel: 'silent' }));
  const { call } = served;

  it('puts TEI-style timing headers (ms) on embed and search', async () => {
    const embed = await call('POST', '/internal/embed', {
      items: [item(), item({ segment_id: 's2' })],
    });
    const search = await postSearch(call, 'serve-org');
    for (const res of [embed, search]) {
      expect(res.status).toBe(200);
      const times = ['x-tokenization-time', 'x-queue-time', 'x-inference-time', 'x-total-time'].map(
        (h) => res.headers.get(h),
      );
      for (const t of times) {
        expect(t).toMatch(/^\d+(\.\d+)?$/);
      }
      const [tok, queue, infer, total] = times.map(Number) as [number, number, number, number];
      expect(tok).toBeGreaterThan(0);
      expect(infer).toBeGreaterThan(0);
      expect(total).toBeGreaterThanOrEqual(Math.max(tok, queue, infer));
    }
    // Errors carry no timing headers.
    const bad = await postSearch(call, 'serve-org', { query_text: '∰∰' });
    expect(bad.status).toBe(422);
  });

  it('serves /metrics only with the service credential', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token-0123456789abcdef' },
    ];
    for (const headers of attempts) {
      const res = await client(served.embedder.url, null)('GET', '/metrics', undefined, headers);
      expectProblem(res, 401, 'unauthorized');
    }
  });

  it('exposes the serving metrics, labelled by model, code and status only', async () => {
    const canary = `metriccanary${randomUUID().replaceAll('-', '')}`;
    await call('POST', '/internal/embed', {
      items: [
        item({ org_id: `org-${canary}`, segment_id: `seg-${canary}`, text: `${canary} ${DOG}` }),
        item({ org_id: `org-${canary}`, segment_id: 'x', text: '∰∰∰' }),
        item({ org_id: `org-${canary}`, segment_id: 'y', model: `model-${canary}` }),
      ],
    });
    await call('POST', '/internal/search', {
      org_id: `org-${canary}`,
      query_text: canary,
      limit: 3,
    });
    await call('POST', '/internal/search', { org_id: 'o', query_text: DOG, model: `m-${canary}` });

    const res = await fetch(`${served.embedder.url}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of [
      'heimdex_embedding_requests_total',
      'heimdex_embedding_duration_seconds_bucket',
      'heimdex_embedding_errors_total',
      'heimdex_search_requests_total',
      'heimdex_search_duration_seconds_bucket',
      'heimdex_search_results_count_bucket',
      'heimdex_model_cache_hits_total',
      'heimdex_model_cache_misses_total',
      'heimdex_queue_depth',
      'heimdex_batch_size_bucket',
      'heimdex_batch_tokens_bucket',
      'heimdex_inference_duration_seconds_bucket',
      'heimdex_cancelled_items_total',
      'heimdex_api_embeddings_duration_seconds_bucket',
      'heimdex_api_embeddings_inputs_total',
      'heimdex_api_embeddings_truncated_total',
      'heimdex_queue_admitted_items',
      'heimdex_store_memory_index_points',
      'heimdex_store_memory_index_bytes',
    ]) {
      expect(text, name).toContain(`\n${name}`);
    }
    // This test's and the timing test's requests (the same embedder).
    expect(sample(text, 'heimdex_embedding_requests_total', { status: '200' })).toBe(2);
    expect(sample(text, 'heimdex_embedding_errors_total', { code: 'empty_embedding' })).toBe(1);
    expect(sample(text, 'heimdex_embedding_errors_total', { code: 'unknown_model' })).toBe(1);
    expect(sample(text, 'heimdex_search_requests_total', { status: '200' })).toBe(2);
    expect(sample(text, 'heimdex_search_requests_total', { status: '422' })).toBe(1);
    expect(sample(text, 'heimdex_search_errors_total', { code: 'unknown_model' })).toBe(1);
    expect(sample(text, 'heimdex_search_results_count_count')).toBe(2);
    expect(sample(text, 'heimdex_model_cache_hits_total', { model: POTION })).toBeGreaterThan(3);
    expect(sample(text, 'heimdex_batch_size_count', { model: POTION })).toBeGreaterThan(0);
    // 2 + 1 + 1 (the unknown-token-only query is inferred, then refused) + 2 + 1 items inferred.
    expect(sample(text, 'heimdex_batch_size_sum', { model: POTION })).toBe(7);
    expect(sample(text, 'heimdex_queue_depth', { model: POTION, priority: 'query' })).toBe(0);
    // The embedded store's in-memory index holds the stored points (and at least their vectors).
    const points = sample(text, 'heimdex_store_memory_index_points');
    expect(points).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'heimdex_store_memory_index_bytes')).toBeGreaterThanOrEqual(
      points * 64 * 4,
    );
    // Neither the text, nor ids, nor the unknown model names ever reach a label.
    expect(text).not.toContain(canary);
    const labelValues = new Set(
      [...text.matchAll(/(\w+)="([^"]*)"/g)]
        .filter((m) => ['model', 'code', 'status', 'priority'].includes(m[1] ?? ''))
        .map((m) => `${m[1]}=${m[2]}`),
    );
    for (const lv of labelValues) {
      expect(lv).toMatch(
        /^(model=potion-base-2M|code=[a-z_]+|status=\d{3}|priority=(query|api|passage))$/,
      );
    }
  });
});

/**
 * An embedder standing in for a slow model: one item per pass and, through fault injection,
 * 2 ms added to every pass, so a long request takes hundreds of milliseconds.
 */
function slowEmbedder(maxQueuedItems: number) {
  return useEmbedder('slow', async (dir) => {
    const faultsFile = path.join(dir, 'faults.json');
    await writeFile(faultsFile, JSON.stringify({ inference_delay_ms: 2 }));
    return testConfig({
      dataDir: dir,
      faultsFile,
      batching: { maxBatchTokens: 16_384, maxBatchItems: 1, maxQueuedItems },
    });
  });
}

describe('overload', () => {
  const s = slowEmbedder(8);

  it('answers 429 overloaded with Retry-After while the queue is full, then recovers', async () => {
    const { call, embedder } = s;
    // Larger than the whole queue: admitted because nothing else is held, and runs alone.
    const big = call('POST', '/internal/embed', { items: longItems(150, 'ovl-org') });
    await until(async () => (await queued(embedder.url)) > 0, 'the big request to queue');

    const refused = await call('POST', '/internal/embed', { items: [item({ org_id: 'ovl-org' })] });
    expectProblem(refused, 429, 'overloaded');
    expect(refused.headers.get('retry-after')).toBe('1');
    const search = await postSearch(call, 'ovl-org');
    expectProblem(search, 429, 'overloaded');
    expect(search.headers.get('retry-after')).toBe('1');

    const done = await big;
    expect(done.status).toBe(200);
    expect(done.json.results.every((r: { status: string }) => r.status === 'ok')).toBe(true);
    const retried = await call('POST', '/internal/embed', { items: [item({ org_id: 'ovl-org' })] });
    expect(retried.status).toBe(200);

    const text = await scrape(embedder.url);
    expect(sample(text, 'heimdex_embedding_errors_total', { code: 'overloaded' })).toBe(1);
    expect(sample(text, 'heimdex_embedding_requests_total', { status: '429' })).toBe(1);
    expect(sample(text, 'heimdex_search_errors_total', { code: 'overloaded' })).toBe(1);
    expect(sample(text, 'heimdex_queue_admitted_items')).toBe(0);
  });
});

describe('cancellation and priority', () => {
  const s = slowEmbedder(4096);

  it('drops the queued items of an aborted request before inference', async () => {
    const { call, embedder, logs } = s;
    const before = await scrape(embedder.url);
    const inferredBefore = sample(before, 'heimdex_batch_size_sum', { model: POTION });
    const controller = new AbortController();
    const aborted = fetch(`${embedder.url}/internal/embed`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ items: longItems(200, 'cancel-org') }),
      signal: controller.signal,
    });
    await until(async () => (await queued(embedder.url)) > 0, 'the request to queue');
    controller.abort();
    await expect(aborted).rejects.toThrow();
    await until(async () => (await queued(embedder.url)) === 0, 'the queue to empty');
    await until(
      async () => logs.some((l) => l.includes('"status":499')),
      'the request log line of the aborted request',
    );

    const after = await scrape(embedder.url);
    const cancelled = sample(after, 'heimdex_cancelled_items_total', { model: POTION });
    const inferred = sample(after, 'heimdex_batch_size_sum', { model: POTION }) - inferredBefore;
    expect(cancelled).toBeGreaterThan(100);
    // Each item was either inferred (before the abort, or in the pass then running) or dropped.
    expect(inferred + cancelled).toBe(200);
    expect(sample(after, 'heimdex_queue_admitted_items')).toBe(0);
    // Nothing of the aborted request was stored.
    const search = await postSearch(call, 'cancel-org');
    expect(search.json.total).toBe(0);
  });

  it('serves a search submitted behind a large ingest batch before the batch', async () => {
    const { call, embedder } = s;
    let ingestDone = false;
    const ingest = call('POST', '/internal/embed', { items: longItems(200, 'prio-org') }).then(
      (r) => {
        ingestDone = true;
        return r;
      },
    );
    await until(async () => (await queued(embedder.url)) > 50, 'the ingest batch to queue');
    const search = await postSearch(call, 'prio-org');
    expect(search.status).toBe(200);
    expect(ingestDone).toBe(false);
    expect(await queued(embedder.url)).toBeGreaterThan(0);
    expect((await ingest).status).toBe(200);
  });
});

describe('graceful drain', () => {
  const s = slowEmbedder(4096);

  it('finishes the queued and running passes of a request before closing', async () => {
    const { call, embedder, logs } = s;
    const inFlight = call('POST', '/internal/embed', { items: longItems(120, 'drain-org') });
    await until(async () => (await queued(embedder.url)) > 50, 'the request to queue');
    let closed = false;
    const closing = embedder.close().then(() => (closed = true));
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.json.results).toHaveLength(120);
    expect(res.json.results.every((r: { status: string }) => r.status === 'ok')).toBe(true);
    await closing;
    expect(closed).toBe(true);
    const messages = logs.map((l) => JSON.parse(l).msg);
    expect(messages.indexOf('embedder stopped')).toBeGreaterThan(messages.lastIndexOf('request'));
    await expect(fetch(`${embedder.url}/healthz`)).rejects.toThrow();
  });
});
