/**
 * (a) Embedder throughput at several batch caps (EMBEDDER_MAX_BATCH_ITEMS) for short, medium and
 * long texts, through POST /internal/embed with concurrent small requests, and (b) the naive
 * baseline (one pipeline call per text) for the same model and texts.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BENCH_TOKEN, startEmbedderProcess } from './embedder.js';
import type { EmbedderProcess } from './embedder.js';
import { embedConcurrency, runEmbedLoad, settleEmbedder } from './load.js';
import type { ServerMs } from './load.js';
import { loadNaive } from './naive.js';
import type { NaiveModel } from './naive.js';
import { countAbove, histogram, histogramDelta, maxBucket, sumOf } from './prom.js';
import type { Sample } from './prom.js';
import { progress } from './progress.js';
import { maxBy, round, roundSummary } from './stats.js';
import type { Summary } from './stats.js';
import { LENGTH_TOKENS, TextSource } from './texts.js';
import { machineBusy, threadCpu, threadCpuDelta } from './threads.js';
import type { ThreadCpu } from './threads.js';
import type { LengthClass } from './texts.js';
import type { Variant } from './variants.js';

export interface ThroughputOptions {
  caps: readonly number[];
  lengths: readonly LengthClass[];
  /** Items per /internal/embed request. */
  requestItems: number;
  /** EMBEDDER_MAX_BATCH_TOKENS for every cap (high enough that the item cap binds). */
  maxBatchTokens: number;
  minSeconds: number;
  maxSeconds: number;
  /** Interleaved rounds over all cells; each cell reports its best round. */
  rounds: number;
  /** Cap at which single-item requests are also measured (short texts), or null. */
  singleItemCap: number | null;
  workDir: string;
  nodeFlags: (label: string) => string[];
}

export interface NaiveCell {
  variant: string;
  length: LengthClass;
  tokens: number;
  /**
   * Per job: one extractor call and one single-point store upsert per text (the original
   * design's per-job work). The batching targets compare against this.
   */
  textsPerSecond: number;
  /** Extractor calls alone (no store write): the model's own rate for unbatched work. */
  inferenceOnlyTextsPerSecond: number;
  tokensPerSecond: number;
  flopsPerSecond: number | null;
  items: number;
  seconds: number;
  /** texts/s of every round (the best is reported). */
  roundsTextsPerSecond: number[];
}

export interface ThroughputCell {
  variant: string;
  cap: number;
  length: LengthClass;
  requestItems: number;
  concurrency: number;
  /** Tokens per text, special tokens included. */
  tokens: number;
  textsPerSecond: number;
  tokensPerSecond: number;
  /** Encoder MatMul FLOP/s achieved end to end (texts/s × FLOPs per text). */
  flopsPerSecond: number | null;
  batches: number;
  meanBatchItems: number;
  /** Smallest heimdex_batch_size bucket bound holding every batch (≥ the largest batch). */
  maxBatchBucket: number;
  /** Batches larger than one request: proof that concurrent requests were merged. */
  mergedBatches: number;
  /** Padded tokens per item (batch_tokens / batch_size): equals `tokens` when nothing pads. */
  paddedTokensPerItem: number;
  /** Fraction of the cell's wall time the model spent in forward passes. */
  inferenceBusy: number;
  /** Items per second of forward-pass time (what the model does while busy). */
  inferenceTextsPerSecond: number;
  inferenceFlopsPerSecond: number | null;
  latencyMs: Summary;
  /** CPU seconds the bench client used per second of the run (of the machine's cores). */
  clientCpuPerSecond: number;
  /** The embedder's CPU seconds per second of the cell, by thread role (see threads.ts). */
  embedderCpuPerSecond: ThreadCpu;
  rejected429: number;
  /**
   * Medians over the cell's requests of the embedder's timing headers (ms): tokenization, queue
   * (waiting for a forward pass), inference, and `other` = total − those three (JSON, validation
   * and, above all, the vector-store write).
   */
  serverMs: ServerMs;
  /** Cores busy with other processes on the machine during the cell (noise indicator). */
  otherLoadCores: number;
  window: { items: number; seconds: number };
  /** texts/s of every round (the best is reported). */
  roundsTextsPerSecond: number[];
}

export interface ThroughputResult {
  naive: NaiveCell[];
  cells: ThroughputCell[];
  singleItem: ThroughputCell[];
  warnings: string[];
}

const TEXT_POOL = 512;

function textsFor(length: LengthClass): string[] {
  return new TextSource(LENGTH_TOKENS[length], 1000 + LENGTH_TOKENS[length]).take(TEXT_POOL);
}

async function measureCell(
  emb: EmbedderProcess,
  v: Variant,
  cap: number,
  length: LengthClass,
  requestItems: number,
  o: ThroughputOptions,
  warnings: string[],
): Promise<ThroughputCell> {
  const tokens = LENGTH_TOKENS[length] + v.specialTokens;
  const concurrency = embedConcurrency(cap, requestItems);
  const period = Math.min(cap, concurrency * requestItems);
  const before = await emb.metrics();
  const cpuBefore = threadCpu(emb.pid);
  const machineBefore = machineBusy();
  const started = performance.now();
  const load = await runEmbedLoad({
    url: emb.url,
    token: BENCH_TOKEN,
    model: v.modelName,
    org: `bench-${v.id}-${cap}`,
    texts: textsFor(length),
    requestItems,
    concurrency,
    minSeconds: o.minSeconds,
    minItems: Math.max(3 * period, 2 * requestItems),
    maxSeconds: o.maxSeconds,
  });
  await settleEmbedder(emb.url, BENCH_TOKEN, v.modelName);
  const wall = (performance.now() - started) / 1000;
  const cpu = threadCpuDelta(threadCpu(emb.pid), cpuBefore, wall);
  const busy = (machineBusy() - machineBefore) / wall;
  const after = await emb.metrics();
  const batch = batchStats(before, after, v.modelName, cap);
  if (batch.aboveCap > 0) {
    throw new Error(
      `EMBEDDER_MAX_BATCH_ITEMS=${cap} is not honoured: ${batch.aboveCap} forward passes held more than ${cap} items (heimdex_batch_size on /metrics)`,
    );
  }
  const merged = countAbove(batch.size, requestItems);
  if (cap > requestItems && merged === 0) {
    warnings.push(
      `${v.id} cap ${cap} ${length}: no forward pass held more than one request's ${requestItems} items: the batcher did not merge concurrent requests`,
    );
  }
  const flopsPerText = v.flopsPerText?.(tokens) ?? null;
  const inferenceTps = batch.inferenceSeconds > 0 ? batch.size.sum / batch.inferenceSeconds : NaN;
  return {
    variant: v.id,
    cap,
    length,
    requestItems,
    concurrency,
    tokens,
    textsPerSecond: round(load.itemsPerSecond),
    tokensPerSecond: round(load.itemsPerSecond * tokens),
    flopsPerSecond: flopsPerText === null ? null : round(load.itemsPerSecond * flopsPerText),
    batches: batch.size.count,
    meanBatchItems: round(batch.size.sum / batch.size.count, 3),
    maxBatchBucket: maxBucket(batch.size),
    mergedBatches: merged,
    paddedTokensPerItem: round(batch.paddedTokens / batch.size.sum, 4),
    inferenceBusy: round(batch.inferenceSeconds / wall, 3),
    inferenceTextsPerSecond: round(inferenceTps),
    inferenceFlopsPerSecond: flopsPerText === null ? null : round(inferenceTps * flopsPerText),
    latencyMs: roundSummary(load.latencyMs),
    clientCpuPerSecond: round(load.clientCpuSeconds / wall, 3),
    embedderCpuPerSecond: cpu,
    rejected429: load.rejected429,
    serverMs: {
      tokenization: round(load.serverMs.tokenization, 3),
      queue: round(load.serverMs.queue, 3),
      inference: round(load.serverMs.inference, 3),
      other: round(load.serverMs.other, 3),
      total: round(load.serverMs.total, 3),
    },
    otherLoadCores: round(Math.max(0, busy - cpu.total - load.clientCpuSeconds / wall), 3),
    window: { items: load.items, seconds: round(load.seconds) },
    roundsTextsPerSecond: [],
  };
}

function batchStats(before: Sample[], after: Sample[], model: string, cap: number) {
  for (const name of [
    'heimdex_batch_size',
    'heimdex_batch_tokens',
    'heimdex_inference_duration_seconds',
  ]) {
    if (!after.some((s) => s.name === `${name}_count`)) {
      throw new Error(
        `the embedder's /metrics has no ${name}: the bench cannot check that EMBEDDER_MAX_BATCH_ITEMS is honoured`,
      );
    }
  }
  const match = { model };
  const size = histogramDelta(
    histogram(after, 'heimdex_batch_size', match),
    histogram(before, 'heimdex_batch_size', match),
  );
  if (size.count === 0) throw new Error(`no forward passes of model ${model} were recorded`);
  if (!size.buckets.has(cap)) {
    throw new Error(`heimdex_batch_size has no bucket at ${cap}: cannot check the batch cap`);
  }
  return {
    size,
    aboveCap: countAbove(size, cap),
    paddedTokens:
      sumOf(after, 'heimdex_batch_tokens_sum', match) -
      sumOf(before, 'heimdex_batch_tokens_sum', match),
    inferenceSeconds:
      sumOf(after, 'heimdex_inference_duration_seconds_sum', match) -
      sumOf(before, 'heimdex_inference_duration_seconds_sum', match),
  };
}

/**
 * Measures one model: the naive baseline and every (cap, length) cell, in `rounds` interleaved
 * rounds (one embedder process per cap, all started up front), keeping each cell's best round:
 * other work on the machine only ever slows a round down, so the best round is the closest
 * estimate of what the code does. Every round's figure is kept in `roundsTextsPerSecond`.
 */
export async function measureVariant(v: Variant, o: ThroughputOptions): Promise<ThroughputResult> {
  const warnings: string[] = [];
  const embedders = new Map<number, EmbedderProcess>();
  let naiveModel: NaiveModel | null = null;
  try {
    for (const cap of o.caps) {
      const dir = path.join(o.workDir, `${v.id}-cap${cap}`);
      mkdirSync(dir, { recursive: true });
      progress(`starting the embedder: ${v.label}, EMBEDDER_MAX_BATCH_ITEMS=${cap}`);
      embedders.set(
        cap,
        await startEmbedderProcess({
          modelDir: v.modelDir,
          modelName: v.modelName,
          dtype: v.dtype,
          maxBatchItems: cap,
          maxBatchTokens: o.maxBatchTokens,
          dataDir: path.join(dir, 'vectors'),
          logFile: path.join(dir, 'embedder.log'),
          nodeFlags: o.nodeFlags(`${v.id}-cap${cap}`),
        }),
      );
    }
    progress(`loading ${v.label} in this process for the naive baseline`);
    naiveModel = await loadNaive(v.modelDir, v.modelName, v.dtype);

    const naiveRounds = new Map<LengthClass, NaiveCell[]>();
    const cellRounds = new Map<string, ThroughputCell[]>();
    for (let round = 1; round <= o.rounds; round++) {
      for (const length of o.lengths) {
        const naive = await measureNaiveCell(
          naiveModel,
          v,
          length,
          o.minSeconds,
          path.join(o.workDir, `${v.id}-naive-${length}-r${round}`),
        );
        naiveRounds.set(length, [...(naiveRounds.get(length) ?? []), naive]);
        progress(
          `${v.label} ${length}${o.rounds > 1 ? ` (round ${round}/${o.rounds})` : ''}: naive ${naive.textsPerSecond} texts/s per job, ${naive.inferenceOnlyTextsPerSecond} inference only`,
        );
        for (const cap of o.caps) {
          const emb = embedders.get(cap) as EmbedderProcess;
          const cell = await measureCell(emb, v, cap, length, o.requestItems, o, warnings);
          const key = `${cap}/${length}`;
          cellRounds.set(key, [...(cellRounds.get(key) ?? []), cell]);
          progress(
            `  cap ${cap}: ${cell.textsPerSecond} texts/s (mean batch ${cell.meanBatchItems}, inference busy ${(cell.inferenceBusy * 100).toFixed(0)}%, other load ${cell.otherLoadCores} cores)`,
          );
        }
      }
    }

    const singleItem: ThroughputCell[] = [];
    const singleCap = o.singleItemCap;
    if (singleCap !== null && embedders.has(singleCap) && o.lengths.includes('short')) {
      const cell = await measureCell(
        embedders.get(singleCap) as EmbedderProcess,
        v,
        singleCap,
        'short',
        1,
        o,
        warnings,
      );
      singleItem.push({ ...cell, roundsTextsPerSecond: [cell.textsPerSecond] });
      progress(
        `  cap ${singleCap} short, single-item requests: ${cell.textsPerSecond} texts/s (mean batch ${cell.meanBatchItems})`,
      );
    }

    const bestOf = <T extends { textsPerSecond: number }>(
      rounds: T[],
    ): T & { roundsTextsPerSecond: number[] } => {
      const top = maxBy(rounds, (c) => c.textsPerSecond) as T;
      return { ...top, roundsTextsPerSecond: rounds.map((r) => r.textsPerSecond) };
    };
    return {
      naive: [...naiveRounds.values()].map(bestOf),
      cells: [...cellRounds.values()].map(bestOf),
      singleItem,
      warnings: [...new Set(warnings)],
    };
  } finally {
    await naiveModel?.dispose();
    for (const emb of embedders.values()) await emb.stop();
  }
}

async function measureNaiveCell(
  model: NaiveModel,
  v: Variant,
  length: LengthClass,
  minSeconds: number,
  dataDir: string,
): Promise<NaiveCell> {
  const tokens = LENGTH_TOKENS[length] + v.specialTokens;
  const texts = textsFor(length);
  const r = await model.runPerJob(texts, {
    minSeconds,
    minItems: 5,
    dataDir,
    label: `${v.id}-${length}`,
  });
  const inferenceOnly = await model.run(texts, { minSeconds, minItems: 5 });
  const flops = v.flopsPerText ? r.itemsPerSecond * v.flopsPerText(tokens) : null;
  return {
    variant: v.id,
    length,
    tokens,
    textsPerSecond: round(r.itemsPerSecond),
    inferenceOnlyTextsPerSecond: round(inferenceOnly.itemsPerSecond),
    tokensPerSecond: round(r.itemsPerSecond * tokens),
    flopsPerSecond: flops === null ? null : round(flops),
    items: r.items,
    seconds: round(r.seconds),
    roundsTextsPerSecond: [],
  };
}
