/**
 * The soak: sustained writes into one embedder process (POST /internal/embed, the consumer's
 * request shape) while its resident memory is sampled every second. Memory "stays flat" when every
 * sample after the warm-up is within ±10% of the baseline (the median of the first fifth of the
 * post-warm-up samples).
 *
 * Two streams: `ingest` (new segments every time) and `overwrite` (the same N segments rewritten
 * again and again with new texts and higher seqs: every write after the first round updates
 * rows). Two stores: the embedded LanceDB store (its data dir's bytes and files are sampled too)
 * or a live Qdrant (the embedder then holds no vectors).
 */
import path from 'node:path';
import { BENCH_TOKEN, startEmbedderProcess } from './embedder.js';
import { embedBody, runEmbedLoad } from './load.js';
import { has, sumOf } from './prom.js';
import type { Sample } from './prom.js';
import { progress } from './progress.js';
import { diskUsage } from './soak-disk.js';
import type { DiskUsage } from './soak-disk.js';
import { OverwriteStream, growthOf, thinSamples } from './soak-growth.js';
import type { Growth, GrowthSample } from './soak-growth.js';
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
  /** The store behind the embedder (default: the embedded LanceDB store). */
  store?: SoakStore;
  /** Rewrite this many segments again and again (0 or undefined: ingest new segments). */
  overwriteSegments?: number;
}

export type SoakStore =
  { kind: 'lancedb' } | { kind: 'qdrant'; url: string; apiKey: string | null; collection: string };

/** The embedded store's disk footprint over the soak (LanceDB only). */
export interface SoakDisk {
  /** Data dir MiB: baseline/end/growth after the warm-up, and per million writes. */
  mib: Growth;
  start: DiskUsage;
  end: DiskUsage;
  /** Largest number of manifests (table versions) on disk at any sample. */
  maxVersions: number;
  /** [seconds, writes so far, data dir MiB, versions] every few seconds. */
  samples: [number, number, number, number][];
}

export interface SoakResult {
  variant: string;
  /** Absent in results from before the store and stream options (LanceDB, ingest). */
  store?: 'lancedb' | 'qdrant';
  stream?: 'ingest' | 'overwrite';
  /** The overwrite stream's segment count, else null. */
  overwriteSegments?: number | null;
  /** Items sent over the whole soak, warm-up included (each a point written or rewritten). */
  writes?: number;
  /** RSS growth after the warm-up, and RSS MiB per million writes (least-squares slope). */
  rssGrowth?: Growth;
  disk?: SoakDisk | null;
  /** Requests answered 503 (store unavailable) and sent again, as the consumer would. */
  unavailable503?: number;
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
  const store = o.store ?? { kind: 'lancedb' };
  const overwrite = (o.overwriteSegments ?? 0) > 0;
  const dir = path.join(o.workDir, `soak-${v.id}-${store.kind}${overwrite ? '-overwrite' : ''}`);
  const dataDir = path.join(dir, 'vectors');
  progress(
    `soak: ${o.minutes} min of ${overwrite ? `overwrites of ${o.overwriteSegments} segments` : 'ingest'} ` +
      `into one embedder (${v.label}, ${store.kind}), sampling RSS every second`,
  );
  const emb = await startEmbedderProcess({
    modelDir: v.modelDir,
    modelName: v.modelName,
    dtype: v.dtype,
    dataDir,
    logFile: path.join(dir, 'embedder.log'),
    env:
      store.kind === 'qdrant'
        ? {
            VECTOR_STORE: 'qdrant',
            QDRANT_URL: store.url,
            QDRANT_COLLECTION: store.collection,
            ...(store.apiKey ? { QDRANT_API_KEY: store.apiKey } : {}),
          }
        : {},
  });
  const texts = new TextSource(LENGTH_TOKENS[o.length], 5150).take(2048);
  const stream = overwrite
    ? new OverwriteStream(texts, o.overwriteSegments ?? 0, v.modelName, 'bench-soak')
    : null;
  let sent = 0;
  try {
    const heapMiB = (samples: Sample[]) =>
      sumOf(samples, 'nodejs_heap_size_used_bytes') / 2 ** 20 || null;
    const heapStart = heapMiB(await emb.metrics());
    const samples: GrowthSample[] = [];
    const diskSamples: { t: number; writes: number; usage: DiskUsage }[] = [];
    const sampleDisk = (t: number) => {
      if (store.kind === 'lancedb')
        diskSamples.push({ t, writes: sent, usage: diskUsage(dataDir) });
    };
    sampleDisk(0);
    const started = performance.now();
    let tick = 0;
    const timer = setInterval(() => {
      const t = (performance.now() - started) / 1000;
      try {
        samples.push([t, sent, emb.rssBytes() / 2 ** 20]);
      } catch {
        // the process is gone; the load run reports the failure
      }
      if (++tick % 5 === 0) sampleDisk(t);
    }, 1000);
    const seconds = o.minutes * 60;
    let load;
    try {
      load = await runEmbedLoad({
        url: emb.url,
        token: BENCH_TOKEN,
        model: v.modelName,
        org: 'bench-soak',
        texts,
        requestItems: o.requestItems,
        concurrency: o.concurrency,
        minSeconds: seconds,
        minItems: 0,
        maxSeconds: seconds + 120,
        retryUnavailable: true,
        body: (start, n) => {
          sent += n;
          return stream ? stream.body(n) : embedBody(texts, start, n, v.modelName, 'bench-soak');
        },
      });
    } finally {
      clearInterval(timer);
    }
    sampleDisk((performance.now() - started) / 1000);
    const metricsEnd = await emb.metrics();
    const heapEnd = heapMiB(metricsEnd);
    const indexReported = has(metricsEnd, 'heimdex_store_memory_index_points');
    const memoryIndexEnd = indexReported
      ? {
          points: sumOf(metricsEnd, 'heimdex_store_memory_index_points'),
          vectorMiB: round(sumOf(metricsEnd, 'heimdex_store_memory_index_bytes') / 2 ** 20),
        }
      : null;
    // Overwrites: the table fills during the first round (every segment's first write); the
    // growth that matters is over the rewrites after it.
    const firstRound = stream
      ? (samples.find(([, w]) => w >= stream.segments + o.requestItems * o.concurrency)?.[0] ?? 0)
      : 0;
    const warmupSeconds = Math.round(
      Math.max(Math.min(60, Math.max(10, seconds * 0.2)), firstRound),
    );
    const rssGrowth = growthOf(samples, warmupSeconds);
    if (!rssGrowth) throw new Error('the soak took fewer than 10 samples after its warm-up');
    const after = samples.filter(([t]) => t >= warmupSeconds).map(([, , rss]) => rss);
    const baseline = median(after.slice(0, Math.max(3, Math.floor(after.length / 5))));
    const diskGrowth = growthOf(
      diskSamples.map((d) => [d.t, d.writes, d.usage.bytes / 2 ** 20]),
      warmupSeconds,
    );
    const firstDisk = diskSamples[0];
    const lastDisk = diskSamples.at(-1);
    const disk: SoakDisk | null =
      diskGrowth && firstDisk && lastDisk
        ? {
            mib: diskGrowth,
            start: firstDisk.usage,
            end: lastDisk.usage,
            maxVersions: Math.max(...diskSamples.map((d) => d.usage.versions)),
            samples: diskSamples
              .filter((_, i) => i % Math.max(1, Math.floor(diskSamples.length / 120)) === 0)
              .map((d) => [
                Math.round(d.t),
                d.writes,
                round(d.usage.bytes / 2 ** 20),
                d.usage.versions,
              ]),
          }
        : null;
    progress(
      `  RSS ${rssGrowth.baseline.toFixed(0)} → ${rssGrowth.end.toFixed(0)} MiB` +
        (disk
          ? `; disk ${disk.mib.baseline} → ${disk.mib.end} MiB, ${disk.end.versions} versions`
          : ''),
    );
    return {
      variant: v.id,
      store: store.kind,
      stream: overwrite ? 'overwrite' : 'ingest',
      overwriteSegments: overwrite ? (o.overwriteSegments ?? 0) : null,
      writes: sent,
      unavailable503: load.unavailable503,
      rssGrowth,
      disk,
      minutes: o.minutes,
      warmupSeconds,
      texts: load.items,
      textsPerSecond: round(load.itemsPerSecond),
      rssMiB: {
        baseline: round(baseline),
        end: rssGrowth.end,
        min: rssGrowth.min,
        max: rssGrowth.max,
      },
      drift: rssGrowth.drift,
      maxDeviation: rssGrowth.maxDeviation,
      heapUsedMiB:
        heapStart !== null && heapEnd !== null
          ? { start: round(heapStart), end: round(heapEnd) }
          : null,
      memoryIndexEnd,
      samples: thinSamples(samples).map(([t, , rss]) => [t, Math.round(rss)] as [number, number]),
    };
  } finally {
    await emb.stop();
    if (store.kind === 'qdrant') await dropCollection(store).catch(() => undefined);
  }
}

/** Deletes the soak's own Qdrant collection. */
async function dropCollection(store: Extract<SoakStore, { kind: 'qdrant' }>): Promise<void> {
  await fetch(`${store.url.replace(/\/$/, '')}/collections/${store.collection}`, {
    method: 'DELETE',
    headers: store.apiKey ? { 'api-key': store.apiKey } : {},
  });
}
