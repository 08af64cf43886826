import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Batcher, QueueLimiter } from '../src/core/batcher.js';
import type { BatchBackend, BatchObserver, Priority } from '../src/core/batcher.js';
import { toOutcome } from '../src/core/model.js';
import type { EmbeddingModel, Encoding } from '../src/core/model.js';
import { embedTexts, loadPotion, maxAbsDiff } from './helpers.js';

/** An encoding of `tokens` tokens whose first id tags it, so a test can follow it. */
function enc(tag: number, tokens: number): Encoding {
  return {
    ids: [tag, ...Array.from({ length: tokens - 1 }, () => 7)],
    typeIds: null,
    stats: { text_len: tokens, token_count: tokens, truncated: false, truncated_len: tokens },
  };
}

/**
 * A backend whose forward passes the test releases one by one, recording what each pass held.
 * Its "vector" for an item is [tag, tokens], so results can be checked against their inputs.
 */
function gatedBackend() {
  const passes: { tags: number[]; tokens: number[] }[] = [];
  const waiting: (() => void)[] = [];
  let started: () => void = () => undefined;
  const backend: BatchBackend = {
    async infer(batch) {
      passes.push({
        tags: batch.map((e) => e.ids[0] ?? -1),
        tokens: batch.map((e) => e.ids.length),
      });
      started();
      await new Promise<void>((resolve) => waiting.push(resolve));
      return batch.map((e) => Float32Array.of(e.ids[0] ?? -1, e.ids.length));
    },
  };
  return {
    backend,
    passes,
    /** Resolves once `n` passes have started. */
    async startedPasses(n: number): Promise<void> {
      while (passes.length < n) {
        await new Promise<void>((resolve) => {
          started = resolve;
        });
      }
    },
    /** Lets the oldest running pass finish. */
    release(): void {
      waiting.shift()?.();
    },
    /** Lets every pass finish, now and later. */
    releaseAll(): void {
      for (const r of waiting.splice(0)) r();
      backend.infer = async (batch) => {
        passes.push({
          tags: batch.map((e) => e.ids[0] ?? -1),
          tokens: batch.map((e) => e.ids.length),
        });
        return batch.map((e) => Float32Array.of(e.ids[0] ?? -1, e.ids.length));
      };
    },
  };
}

function recorder() {
  const depth: Record<Priority, number> = { query: 0, api: 0, passage: 0 };
  const batches: { items: number; tokens: number }[] = [];
  let cancelled = 0;
  const observer: BatchObserver = {
    queueDepth: (p, n) => (depth[p] = n),
    batch: (items, tokens) => batches.push({ items, tokens }),
    cancelled: (n) => (cancelled += n),
  };
  return { observer, depth, batches, cancelled: () => cancelled };
}

describe('Batcher scheduling', () => {
  it('merges concurrent submissions into passes bounded by items and padded tokens', async () => {
    const gate = gatedBackend();
    gate.releaseAll();
    const rec = recorder();
    const batcher = new Batcher(
      gate.backend,
      { maxBatchTokens: 100, maxBatchItems: 4 },
      rec.observer,
    );
    const lengths = [10, 12, 50, 11, 9, 48, 10, 30, 30, 13];
    const results = await Promise.all(
      lengths.map((len, tag) => batcher.submit([enc(tag, len)], 'passage')),
    );
    // Every caller gets its own vector back.
    results.forEach((r, tag) => {
      expect(Array.from(r.vectors[0] ?? [])).toEqual([tag, lengths[tag]]);
      expect(r.inferenceMs).toBeGreaterThanOrEqual(0);
      expect(r.queueMs).toBeGreaterThanOrEqual(0);
    });
    expect(gate.passes.flatMap((p) => p.tags).sort((a, b) => a - b)).toEqual(
      lengths.map((_, i) => i),
    );
    expect(gate.passes.length).toBeLessThan(lengths.length);
    for (const pass of gate.passes) {
      expect(pass.tags.length).toBeLessThanOrEqual(4);
      expect(pass.tags.length * Math.max(...pass.tokens)).toBeLessThanOrEqual(100);
    }
    // Length grouping: the short texts share passes and never pad up to the 50-token ones.
    const withLong = gate.passes.find((p) => p.tokens.includes(50));
    expect(withLong?.tokens.every((t) => t >= 30)).toBe(true);
    expect(rec.batches.map((b) => b.items)).toEqual(gate.passes.map((p) => p.tags.length));
    expect(rec.depth).toEqual({ query: 0, api: 0, passage: 0 });
  });

  it('runs one pass at a time and takes what queued meanwhile into the next pass', async () => {
    const gate = gatedBackend();
    const batcher = new Batcher(gate.backend, { maxBatchTokens: 10_000, maxBatchItems: 64 });
    const first = batcher.submit([enc(1, 5)], 'passage');
    await gate.startedPasses(1);
    const later = [2, 3, 4].map((tag) => batcher.submit([enc(tag, 5)], 'passage'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gate.passes).toHaveLength(1); // nothing runs beside the pass in flight
    expect(batcher.depth.passage).toBe(3);
    gate.release();
    await first;
    await gate.startedPasses(2);
    expect(gate.passes[1]?.tags).toEqual([2, 3, 4]);
    gate.releaseAll();
    await Promise.all(later);
  });

  it('serves a query submitted behind a large ingestion before it', async () => {
    const gate = gatedBackend();
    const batcher = new Batcher(gate.backend, { maxBatchTokens: 10_000, maxBatchItems: 8 });
    const order: string[] = [];
    const ingest = batcher
      .submit(
        Array.from({ length: 64 }, (_, i) => enc(100 + i, 20)),
        'passage',
      )
      .then(() => order.push('ingest'));
    await gate.startedPasses(1);
    const query = batcher.submit([enc(1, 6)], 'query').then(() => order.push('query'));
    gate.release();
    await gate.startedPasses(2);
    expect(gate.passes[1]?.tags[0]).toBe(1); // the query leads the very next pass
    gate.releaseAll();
    await Promise.all([ingest, query]);
    expect(order).toEqual(['query', 'ingest']);
  });

  it('takes queries, then embedding-API texts, then ingestion, whatever their arrival', async () => {
    const gate = gatedBackend();
    const rec = recorder();
    const batcher = new Batcher(
      gate.backend,
      { maxBatchTokens: 10_000, maxBatchItems: 4 },
      rec.observer,
    );
    const order: string[] = [];
    const blocker = batcher.submit([enc(0, 5)], 'passage');
    await gate.startedPasses(1);
    // Queued while a pass runs, lowest priority first.
    const work = [
      batcher
        .submit(
          [1, 2, 3, 4].map((t) => enc(t, 5)),
          'passage',
        )
        .then(() => order.push('ingest')),
      batcher
        .submit(
          [11, 12, 13, 14].map((t) => enc(t, 5)),
          'api',
        )
        .then(() => order.push('api')),
      batcher
        .submit(
          [21, 22].map((t) => enc(t, 5)),
          'query',
        )
        .then(() => order.push('query')),
    ];
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(batcher.depth).toEqual({ query: 2, api: 4, passage: 4 });
    expect(rec.depth).toEqual({ query: 2, api: 4, passage: 4 });
    gate.releaseAll();
    await Promise.all([blocker, ...work]);
    // The queries fill the next pass first, the API texts the room left, ingestion comes last.
    expect(gate.passes.slice(1).map((p) => p.tags)).toEqual([
      [21, 22, 11, 12],
      [13, 14, 1, 2],
      [3, 4],
    ]);
    expect(order).toEqual(['query', 'api', 'ingest']);
    expect(batcher.depth).toEqual({ query: 0, api: 0, passage: 0 });
  });

  it('always includes the oldest waiting item, so long items are not starved', async () => {
    const gate = gatedBackend();
    const batcher = new Batcher(gate.backend, { maxBatchTokens: 40, maxBatchItems: 64 });
    const blocker = batcher.submit([enc(0, 2)], 'passage');
    await gate.startedPasses(1);
    const long = batcher.submit([enc(1, 40)], 'passage');
    const shorts = Array.from({ length: 10 }, (_, i) =>
      batcher.submit([enc(10 + i, 2)], 'passage'),
    );
    gate.release();
    await blocker;
    await gate.startedPasses(2);
    expect(gate.passes[1]?.tags).toEqual([1]); // the 40-token item alone fills the budget
    gate.releaseAll();
    await Promise.all([long, ...shorts]);
  });

  it('drops the queued items of an aborted caller before inference', async () => {
    const gate = gatedBackend();
    const rec = recorder();
    const batcher = new Batcher(
      gate.backend,
      { maxBatchTokens: 10_000, maxBatchItems: 2 },
      rec.observer,
    );
    const controller = new AbortController();
    const aborted = batcher.submit(
      Array.from({ length: 6 }, (_, i) => enc(100 + i, 4)),
      'passage',
      controller.signal,
    );
    const other = batcher.submit([enc(1, 4)], 'passage');
    await gate.startedPasses(1);
    expect(gate.passes[0]?.tags).toEqual([100, 101]);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'ServiceError', code: 'cancelled' });
    expect(rec.cancelled()).toBe(4);
    gate.releaseAll();
    await other;
    expect(gate.passes.flatMap((p) => p.tags)).toEqual([100, 101, 1]);
    await expect(batcher.submit([enc(2, 4)], 'passage', AbortSignal.abort())).rejects.toMatchObject(
      { code: 'cancelled' },
    );
  });

  it('fails every caller of a failed pass and drops the rest of their work', async () => {
    let calls = 0;
    const batcher = new Batcher(
      {
        async infer() {
          calls++;
          throw new Error('onnx exploded');
        },
      },
      { maxBatchTokens: 10_000, maxBatchItems: 2 },
    );
    await expect(batcher.submit([enc(1, 3), enc(2, 3), enc(3, 3)], 'passage')).rejects.toThrow(
      'onnx exploded',
    );
    expect(calls).toBe(1);
  });

  it('finishes queued and running work on close, then refuses new work', async () => {
    const gate = gatedBackend();
    const batcher = new Batcher(gate.backend, { maxBatchTokens: 10_000, maxBatchItems: 1 });
    const work = batcher.submit([enc(1, 3), enc(2, 3), enc(3, 3)], 'passage');
    await gate.startedPasses(1);
    let closed = false;
    const closing = batcher.close().then(() => (closed = true));
    await expect(batcher.submit([enc(9, 3)], 'query')).rejects.toMatchObject({
      code: 'model_not_ready',
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(closed).toBe(false);
    gate.releaseAll();
    expect((await work).vectors).toHaveLength(3);
    await closing;
    expect(gate.passes.map((p) => p.tags)).toEqual([[1], [2], [3]]);
  });
});

describe('QueueLimiter', () => {
  it('admits up to capacity, then answers overloaded with Retry-After', () => {
    const limiter = new QueueLimiter(10);
    const a = limiter.reserve(6);
    const b = limiter.reserve(4);
    expect(limiter.size).toBe(10);
    expect(() => limiter.reserve(1)).toThrow(
      expect.objectContaining({
        code: 'overloaded',
        options: expect.objectContaining({ retryAfterSeconds: 1 }),
      }),
    );
    a.release(2);
    a.release(); // the remaining 4
    a.release(); // idempotent
    expect(limiter.size).toBe(4);
    b.release();
    expect(limiter.size).toBe(0);
    // A request larger than the whole queue runs alone rather than never.
    const big = limiter.reserve(25);
    expect(() => limiter.reserve(1)).toThrow(expect.objectContaining({ code: 'overloaded' }));
    big.release();
  });

  it('gives back submitted items as their work leaves the queue (done, failed or dropped)', async () => {
    const limiter = new QueueLimiter(100);
    const gate = gatedBackend();
    const batcher = new Batcher(gate.backend, { maxBatchTokens: 10_000, maxBatchItems: 1 });
    const admitted = limiter.reserve(5);
    const controller = new AbortController();
    const done = batcher.submit([enc(1, 3)], 'passage', undefined, admitted);
    const dropped = batcher.submit([enc(2, 3), enc(3, 3)], 'passage', controller.signal, admitted);
    await gate.startedPasses(1);
    expect(limiter.size).toBe(5);
    controller.abort();
    await expect(dropped).rejects.toMatchObject({ code: 'cancelled' });
    expect(limiter.size).toBe(3);
    gate.release();
    await done;
    expect(limiter.size).toBe(2); // the two items never submitted stay with the request
    await batcher.submit([], 'passage', undefined, admitted);
    expect(limiter.size).toBe(2);
    admitted.release();
    expect(limiter.size).toBe(0);
  });
});

describe('batching with the real model', () => {
  let model: EmbeddingModel;

  beforeAll(async () => {
    model = await loadPotion();
  });

  afterAll(async () => {
    await model?.dispose();
  });

  it('gives the same vectors for 50 concurrent texts of mixed lengths as one at a time', async () => {
    const words = ['river', 'ledger', 'photon', 'harbor', 'canine', 'quarterly', 'Ünïcödé', '🚀'];
    const texts = Array.from({ length: 50 }, (_, i) => {
      const n = [1, 3, 8, 20, 60, 150, 400, 900][i % 8] as number;
      return (
        Array.from({ length: n }, (_, k) => words[(i + k) % words.length]).join(' ') + ` #${i}`
      );
    });
    const rec = recorder();
    const batcher = new Batcher(model, { maxBatchTokens: 16_384, maxBatchItems: 64 }, rec.observer);
    const concurrent = await Promise.all(
      texts.map((text, i) =>
        batcher.submit(
          [model.tokenize(text, i % 5 === 0 ? 'query' : 'passage')],
          i % 5 === 0 ? 'query' : 'passage',
        ),
      ),
    );
    // The submissions were merged, within the budget.
    expect(rec.batches.length).toBeGreaterThan(1);
    expect(rec.batches.length).toBeLessThan(10);
    for (const b of rec.batches) expect(b.tokens).toBeLessThanOrEqual(16_384);
    expect(rec.batches.reduce((n, b) => n + b.items, 0)).toBe(50);

    let worst = 0;
    for (const [i, text] of texts.entries()) {
      const [single] = await embedTexts(model, [text], i % 5 === 0 ? 'query' : 'passage');
      if (!single?.ok) throw new Error('expected a vector');
      const batched = toOutcome(concurrent[i]?.vectors[0], single.stats);
      if (!batched.ok) throw new Error('expected a vector');
      worst = Math.max(worst, maxAbsDiff(batched.vector, single.vector));
    }
    expect(worst).toBeLessThanOrEqual(1e-5);
  });
});
