/**
 * The machine's fp32 MatMul peak as onnxruntime reaches it: a MatMul-only ONNX model
 * ([n, k] input × [k, m] weight), run through onnxruntime-node with the session options the
 * embedder's transformers.js sessions get (onnxruntime's defaults: intra-op threads = physical
 * cores, graph optimisation "all", sequential execution).
 */
import * as ort from 'onnxruntime-node';
import { seededRandom } from './bert.js';
import { DataType, GraphBuilder, buildModel, encodeModel, floatTensor, valueInfo } from './onnx.js';
import { summarize } from './stats.js';
import type { Summary } from './stats.js';

export interface MatmulPeak {
  n: number;
  k: number;
  m: number;
  flopsPerRun: number;
  runs: number;
  /** FLOP/s of the median run. */
  flopsPerSecond: number;
  /**
   * FLOP/s of the fastest run: the peak that FLOP/s percentages use (other work on the machine
   * slows some runs down; the fastest is the best estimate of what the cores can do).
   */
  bestFlopsPerSecond: number;
  runMs: Summary;
  onnxruntimeVersion: string;
  sessionOptions: string;
}

export function matmulModel(n: number, k: number, m: number): Uint8Array {
  const g = new GraphBuilder();
  const random = seededRandom(7);
  const weight = new Float32Array(k * m);
  for (let i = 0; i < weight.length; i++) weight[i] = random() - 0.5;
  const b = g.init(floatTensor('B', [k, m], weight));
  g.op('MatMul', ['A', b]);
  g.renameLastOutput('Y');
  return encodeModel(
    buildModel({
      graphName: 'matmul',
      builder: g,
      inputs: [valueInfo('A', DataType.FLOAT, [n, k])],
      outputs: [valueInfo('Y', DataType.FLOAT, [n, m])],
      opset: 17,
    }),
  );
}

export async function measureMatmulPeak(
  options: { size?: number; seconds?: number; minRuns?: number } = {},
): Promise<MatmulPeak> {
  const size = options.size ?? 2048;
  const [n, k, m] = [size, size, size];
  const session = await ort.InferenceSession.create(matmulModel(n, k, m), {
    executionProviders: ['cpu'],
  });
  try {
    const random = seededRandom(11);
    const a = new Float32Array(n * k);
    for (let i = 0; i < a.length; i++) a[i] = random() - 0.5;
    const feeds = { A: new ort.Tensor('float32', a, [n, k]) };
    for (let i = 0; i < 2; i++) await session.run(feeds);
    const times: number[] = [];
    const deadline = performance.now() + (options.seconds ?? 6) * 1000;
    while (performance.now() < deadline || times.length < (options.minRuns ?? 10)) {
      const t0 = performance.now();
      const out = await session.run(feeds);
      times.push(performance.now() - t0);
      out.Y?.dispose();
    }
    const flopsPerRun = 2 * n * k * m;
    const runMs = summarize(times);
    return {
      n,
      k,
      m,
      flopsPerRun,
      runs: times.length,
      flopsPerSecond: flopsPerRun / (runMs.p50 / 1000),
      bestFlopsPerSecond: flopsPerRun / (runMs.min / 1000),
      runMs,
      onnxruntimeVersion: ort.env.versions.common ?? 'unknown',
      sessionOptions:
        'onnxruntime defaults (intraOpNumThreads=0 → physical cores), as transformers.js',
    };
  } finally {
    await session.release();
  }
}
