/**
 * The soak: sustained ingest into one embedder process (POST /internal/embed, the consumer's
 * request shape) while its resident memory is sampled every second. Memory "stays flat" when every
 * sample after the warm-up is within ±10% of the baseline (the median of the first fifth of the
 * post-warm-up samples).
 */
import path from 'node:path';
import { BENCH_TOKEN, startEmbedderProcess } from './embedder.js';
import { runEmbedLoad } from './load.js';
import { has, sumOf } from './prom.js';
import type { Sample } from './prom.js';
import { progress } from './progress.js';
import { median, round } from './stats.js';
import { LENGTH_TOKENS, TextSource } from './texts.js';
import type { LengthClass } from './texts.js';
import type { Variant } from './variants.js';

export interface SoakOptions {
  workDir: string;
  minutes: number;
  length: LengthClass;
  requestItems: number;
  concurrency: number;
}

export interface SoakResult {
  variant: string;
  minutes: number;
  /** Seconds excluded at the start (model warm-up, allocator and store growth). */
  warmupSeconds: number;
  texts: number;
  textsPerSecond: number;
  rssMiB: { baseline: number; end: number; min: number; max: number };
  /** end / baseline − 1. */
  drift: number;
  /** Largest |sample / baseline − 1| after the warm-up. */
  maxDeviation: number;
  heapUsedMiB: { start: number; end: number } | null;
  /**
   * The embedded store's in-memory search index at the end (its vector arrays; the payload
   * objects are in the V8 heap): data the process holds by design, up to
   * VECTOR_MEMORY_INDEX_MAX_ROWS points. Null when the embedder does not report it.
   */
  memoryIndexEnd: { points: number; vectorMiB: number } | null;
  /** [seconds since start, RSS MiB] every few seconds, for plotting. */
  samples: [number, number][];
}

export async function runSoak(v: Variant, o: SoakOptions): Promise<SoakResult> {
  const dir = path.join(o.workDir, `soak-${v.id}`);
  progress(
    `soak: ${o.minutes} min of ingest into one embedder (${v.label}), sampling RSS every second`,
  );
  const emb = await startEmbedderProcess({
    modelDir: v.modelDir,
    modelName: v.modelName,
    dtype: v.dtype,
    dataDir: path.join(dir, 'vectors'),
    logFile: path.join(dir, 'embedder.log'),
  });
  try {
    const heapMiB = (samples: Sample[]) =>
      sumOf(samples, 'nodejs_heap_size_used_bytes') / 2 ** 20 || null;
    const heapStart = heapMiB(await emb.metrics());
    const samples: [number, number][] = [];
    const started = performance.now();
    const timer = setInterval(() => {
      try {
        samples.push([(performance.now() - started) / 1000, emb.rssBytes() / 2 ** 20]);
      } catch {
        // the process is gone; the load run reports the failure
      }
    }, 1000);
    const seconds = o.minutes * 60;
    let load;
    try {
      load = await runEmbedLoad({
        url: emb.url,
        token: BENCH_TOKEN,
        model: v.modelName,
        org: 'bench-soak',
        texts: new TextSource(LENGTH_TOKENS[o.length], 5150).take(2048),
        requestItems: o.requestItems,
        concurrency: o.concurrency,
        minSeconds: seconds,
        minItems: 0,
        maxSeconds: seconds + 120,
      });
    } finally {
      clearInterval(timer);
    }
    const metricsEnd = await emb.metrics();
    const heapEnd = heapMiB(metricsEnd);
    const indexReported = has(metricsEnd, 'heimdex_store_memory_index_points');
    const memoryIndexEnd = indexReported
      ? {
          points: sumOf(metricsEnd, 'heimdex_store_memory_index_points'),
          vectorMiB: round(sumOf(metricsEnd, 'heimdex_store_memory_index_bytes') / 2 ** 20),
        }
      : null;
    const warmupSeconds = Math.min(60, Math.max(10, seconds * 0.2));
    const after = samples.filter(([t]) => t >= warmupSeconds).map(([, rss]) => rss);
    if (after.length < 10)
      throw new Error(`the soak took only ${after.length} samples after its warm-up`);
    const fifth = Math.max(3, Math.floor(after.length / 5));
    const baseline = median(after.slice(0, fifth));
    const end = median(after.slice(-fifth));
    const step = Math.max(1, Math.floor(samples.length / 120));
    progress(`  RSS ${baseline.toFixed(0)} → ${end.toFixed(0)} MiB`);
    return {
      variant: v.id,
      minutes: o.minutes,
      warmupSeconds,
      texts: load.items,
      textsPerSecond: round(load.itemsPerSecond),
      rssMiB: {
        baseline: round(baseline),
        end: round(end),
        min: round(Math.min(...after)),
        max: round(Math.max(...after)),
      },
      drift: round(end / baseline - 1, 3),
      maxDeviation: round(Math.max(...after.map((r) => Math.abs(r / baseline - 1))), 3),
      heapUsedMiB:
        heapStart !== null && heapEnd !== null
          ? { start: round(heapStart), end: round(heapEnd) }
          : null,
      memoryIndexEnd,
      samples: samples
        .filter((_, i) => i % step === 0)
        .map(([t, rss]) => [Math.round(t), Math.round(rss)] as [number, number]),
    };
  } finally {
    await emb.stop();
  }
}
