/**
 * Reranking speed: one query × `documents` documents (100 by default) through POST /v1/rerank,
 * with the ms-marco-MiniLM-shaped cross-encoder (bench/lib/cross-encoder-model.ts: the real
 * model's shape, tokenizer and cost per token; random weights, so only speed is measured here).
 * The local stack runs as `npm run dev` runs it (scripts/lib/stack.ts), its embedder started with
 * RERANK_MODEL_NAME; the embedding model is potion-base-2M (it plays no part).
 *
 * Measured, sequentially (one request in flight, as a search page reranks its results):
 * - through the Worker: the client's latency p50/p95 and texts/s (documents ÷ latency);
 * - the embedder alone (its POST /v1/rerank, same body): latency, and its timing headers
 *   (tokenization, queue, inference);
 * - the Worker's own time: its Server-Timing `app` less `embedder` per request (the target is a
 *   p50 of at most 3 ms), and the client-side difference of the two latency p50s (which adds
 *   wrangler dev's local proxy).
 * Rounds alternate Worker and embedder-only requests so that both see the same machine.
 */
import path from 'node:path';
import { localStackEnv } from '../../scripts/lib/local-env.js';
import { startStack } from '../../scripts/lib/stack.js';
import { mintDevToken } from '../../scripts/lib/token.js';
import { CROSS_ENCODER_SHAPED, ensureCrossEncoderShaped } from './cross-encoder-model.js';
import { serverTimingDuration } from './load.js';
import { BENCH_MODELS_DIR, POTION, SHARED_MODELS_DIR } from './paths.js';
import { progress } from './progress.js';
import { round, roundSummary, summarize } from './stats.js';
import type { Summary } from './stats.js';
import { TextSource } from './texts.js';

export interface RerankBenchOptions {
  /** Where the stack's data and logs go (a fresh `rerank` folder under it). */
  workDir: string;
  /** Documents per request (default 100). */
  documents?: number;
  /** Tokens per document (default 128: a search result's passage). */
  documentTokens?: number;
  /** Tokens of the query (default 16). */
  queryTokens?: number;
  /** Measured requests per path (default 30), after `warmup` (default 3) of each. */
  requests?: number;
  warmup?: number;
  /** RERANK_DTYPE: the cross-encoder's ONNX file (default fp32). */
  dtype?: 'fp32' | 'q8';
  /** Extra embedder environment (e.g. EMBEDDER_MAX_BATCH_ITEMS). */
  embedderEnv?: Record<string, string>;
}

export interface RerankBenchResult {
  reranker: string;
  dtype: string;
  documents: number;
  documentTokens: number;
  queryTokens: number;
  /** Tokens of one pair, special tokens included ([CLS] q [SEP] d [SEP]). */
  pairTokens: number;
  requests: number;
  /** Through the Worker (client latency, milliseconds) and its texts/s (documents ÷ p50). */
  worker: { latencyMs: Summary; textsPerSecond: number };
  /** The embedder's POST /v1/rerank alone. */
  embedder: {
    latencyMs: Summary;
    textsPerSecond: number;
    /** Its timing headers, per request (milliseconds). */
    tokenizationMs: Summary;
    queueMs: Summary;
    inferenceMs: Summary;
  };
  /** The Worker's own time: Server-Timing app − embedder (ms), and the two latencies' p50 gap. */
  workerOverhead: { serverTimingMs: Summary; clientP50GapMs: number; targetP50Ms: number };
}

const ORG = 'bench-rerank';

export async function measureRerank(o: RerankBenchOptions): Promise<RerankBenchResult> {
  const documents = o.documents ?? 100;
  const documentTokens = o.documentTokens ?? 128;
  const queryTokens = o.queryTokens ?? 16;
  const requests = o.requests ?? 30;
  const warmup = o.warmup ?? 3;
  const dtype = o.dtype ?? 'fp32';
  progress('rerank: building the ms-marco-MiniLM-shaped cross-encoder (once)');
  ensureCrossEncoderShaped({ log: (m) => progress(`  ${m}`) });

  const dataDir = path.join(o.workDir, 'rerank');
  progress(`rerank: starting the local stack (embedder with ${CROSS_ENCODER_SHAPED}, ${dtype})`);
  const stack = await startStack({
    dataDir,
    env: localStackEnv(
      { dir: SHARED_MODELS_DIR, name: POTION },
      {
        QDRANT_URL: '',
        VECTOR_STORE: 'lancedb',
        VECTOR_DATA_DIR: path.join(dataDir, 'vectors'),
        RERANK_MODEL_NAME: CROSS_ENCODER_SHAPED,
        RERANK_MODEL_DIR: BENCH_MODELS_DIR,
        RERANK_DTYPE: dtype,
      },
    ),
    ...(o.embedderEnv ? { embedderEnv: o.embedderEnv } : {}),
    cronIntervalMs: 0,
    onStatus: (m) => progress(`  ${m}`),
  });
  try {
    const jwt = await mintDevToken({
      secret: stack.devJwtSecret,
      org: ORG,
      ttlSeconds: 7200,
      tenantClaim: process.env.AUTH_TENANT_CLAIM,
    });
    // A new query and new documents per request: nothing is cached anywhere, but the same sizes.
    const queries = new TextSource(queryTokens, 91);
    const docs = new TextSource(documentTokens, 92);
    const body = () => ({ query: queries.next(), documents: docs.take(documents) });

    const viaWorker = async () => {
      const b = body();
      const t0 = performance.now();
      const res = await fetch(`${stack.apiUrl}/v1/rerank`, {
        method: 'POST',
        headers: { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' },
        body: JSON.stringify(b),
      });
      const text = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200)
        throw new Error(`POST /v1/rerank answered ${res.status}: ${text.slice(0, 300)}`);
      const results = (JSON.parse(text) as { results: unknown[] }).results;
      if (results.length !== documents) throw new Error('the Worker ranked too few documents');
      const timing = res.headers.get('server-timing');
      return {
        ms,
        overhead: serverTimingDuration(timing, 'app') - serverTimingDuration(timing, 'embedder'),
      };
    };
    const direct = async () => {
      const b = body();
      const t0 = performance.now();
      const res = await fetch(`${stack.embedderUrl}/v1/rerank`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${stack.embedderToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ query: b.query, texts: b.documents }),
      });
      const text = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200)
        throw new Error(`embedder /v1/rerank answered ${res.status}: ${text.slice(0, 300)}`);
      const header = (name: string) => Number(res.headers.get(name));
      return {
        ms,
        tokenization: header('x-tokenization-time'),
        queue: header('x-queue-time'),
        inference: header('x-inference-time'),
      };
    };

    progress(`rerank: warm-up (${warmup} requests each way)`);
    for (let i = 0; i < warmup; i++) {
      await viaWorker();
      await direct();
    }
    progress(`rerank: ${requests} requests of 1 query × ${documents} documents, each way`);
    const worker: number[] = [];
    const overhead: number[] = [];
    const embedder: number[] = [];
    const tokenization: number[] = [];
    const queue: number[] = [];
    const inference: number[] = [];
    for (let i = 0; i < requests; i++) {
      const w = await viaWorker();
      worker.push(w.ms);
      if (Number.isFinite(w.overhead)) overhead.push(w.overhead);
      const d = await direct();
      embedder.push(d.ms);
      tokenization.push(d.tokenization);
      queue.push(d.queue);
      inference.push(d.inference);
    }
    const workerLatency = summarize(worker);
    const embedderLatency = summarize(embedder);
    const result: RerankBenchResult = {
      reranker: CROSS_ENCODER_SHAPED,
      dtype,
      documents,
      documentTokens,
      queryTokens,
      pairTokens: queryTokens + documentTokens + 3,
      requests,
      worker: {
        latencyMs: roundSummary(workerLatency),
        textsPerSecond: round(documents / (workerLatency.p50 / 1000)),
      },
      embedder: {
        latencyMs: roundSummary(embedderLatency),
        textsPerSecond: round(documents / (embedderLatency.p50 / 1000)),
        tokenizationMs: roundSummary(summarize(tokenization)),
        queueMs: roundSummary(summarize(queue)),
        inferenceMs: roundSummary(summarize(inference)),
      },
      workerOverhead: {
        serverTimingMs: roundSummary(summarize(overhead)),
        clientP50GapMs: round(workerLatency.p50 - embedderLatency.p50),
        targetP50Ms: 3,
      },
    };
    progress(
      `  rerank: Worker p50 ${result.worker.latencyMs.p50} ms / p95 ${result.worker.latencyMs.p95} ms ` +
        `(${result.worker.textsPerSecond} texts/s); embedder p50 ${result.embedder.latencyMs.p50} ms; ` +
        `Worker's own time p50 ${result.workerOverhead.serverTimingMs.p50} ms`,
    );
    return result;
  } finally {
    progress('rerank: stopping the local stack');
    await stack.stop();
  }
}

/** Markdown lines for a report. */
export function describeRerank(r: RerankBenchResult): string[] {
  const s = (x: Summary) => `p50 ${x.p50} ms, p95 ${x.p95} ms`;
  return [
    `Rerank: 1 query (${r.queryTokens} tokens) × ${r.documents} documents (${r.documentTokens} tokens; ${r.pairTokens}-token pairs), ${r.reranker} (${r.dtype}, random weights: speed only), ${r.requests} sequential requests.`,
    `- Through the Worker: ${s(r.worker.latencyMs)}; ${r.worker.textsPerSecond} texts/s.`,
    `- Embedder alone: ${s(r.embedder.latencyMs)}; ${r.embedder.textsPerSecond} texts/s (inference ${s(r.embedder.inferenceMs)}, tokenization p50 ${r.embedder.tokenizationMs.p50} ms).`,
    `- The Worker's own time (Server-Timing app − embedder): ${s(r.workerOverhead.serverTimingMs)} (target p50 ≤ ${r.workerOverhead.targetP50Ms} ms); client-side p50 gap ${r.workerOverhead.clientP50GapMs} ms (includes wrangler dev's local proxy).`,
  ];
}
