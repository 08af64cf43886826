/**
 * (h) What chunking costs the embedder on long texts. The embedder's own embed path
 * (core/service.ts: tokenization, forward passes through the batcher, the store write) embeds the
 * same long texts (~4,000 characters, several windows each) twice per round in one process: with
 * the default chunking (every window, core/chunking.ts) and with `"truncate"` (the first window
 * only). Chunking embeds several times the tokens, so texts/s must fall; what must not is the
 * rate at which the model's tokens are embedded (issue target: chunked tokens/s at least 95% of
 * truncation's): the splitting, the extra tokenization and the per-chunk writes are the overhead.
 * Rounds alternate which goes first; the best round of each is kept.
 */
import type { Chunking } from '../../contract/internal.js';
import { KeywordTerms } from '../../embedder/src/core/keywords.js';
import { bestOfAlternating, embedRate, startInProcessEmbedder } from './in-process.js';
import { progress } from './progress.js';
import { round } from './stats.js';
import { TextSource } from './texts.js';

export interface ChunkingCostOptions {
  workDir: string;
  modelDir: string;
  modelName: string;
  texts: number;
  /** Words per text (vocabulary words, about a token each; 640 make ~4,000 characters). */
  words: number;
  rounds: number;
}

export interface ChunkingVariantRate {
  /** Points per text (chunks; 1 when truncating). */
  chunksPerText: number;
  /** Model tokens embedded per text (special tokens included). */
  tokensPerText: number;
  textsPerSecond: number;
  chunksPerSecond: number;
  tokensPerSecond: number;
}

export interface ChunkingCostResult {
  model: string;
  texts: number;
  charsPerText: number;
  rounds: number;
  chunked: ChunkingVariantRate;
  truncated: ChunkingVariantRate;
  /** chunked.tokensPerSecond / truncated.tokensPerSecond. */
  tokenRateRatio: number;
}

const ORG = 'bench-chunking-org';
const VARIANTS = { chunked: undefined, truncated: 'truncate' } as const satisfies Record<
  string,
  Chunking | undefined
>;
type VariantName = keyof typeof VARIANTS;

export async function measureChunkingCost(o: ChunkingCostOptions): Promise<ChunkingCostResult> {
  const embedder = await startInProcessEmbedder({
    workDir: o.workDir,
    storeDir: 'chunking-lancedb',
    modelDir: o.modelDir,
    modelName: o.modelName,
  });
  const { model } = embedder;
  try {
    const keywords = new KeywordTerms('bench-keyword-index-key-0123456789abcdef');
    const service = embedder.service(keywords);
    const texts = new TextSource(o.words, 4343).take(o.texts);
    // What each variant gives the model (counted outside the timed runs).
    const shape = (name: VariantName) => {
      const encodings = texts.map((t) => model.tokenizeChunks(t, VARIANTS[name]));
      const chunks = encodings.reduce((n, e) => n + e.length, 0);
      const tokens = encodings.reduce((n, e) => n + e.reduce((m, c) => m + c.ids.length, 0), 0);
      return { chunksPerText: chunks / texts.length, tokensPerText: tokens / texts.length };
    };
    const shapes = { chunked: shape('chunked'), truncated: shape('truncated') };
    let seq = 1;
    const best = await bestOfAlternating(['chunked', 'truncated'], o.rounds, async (name) => {
      const chunking = VARIANTS[name];
      const perSecond = await embedRate(service, texts, {
        orgId: ORG,
        assetId: `${name}-${seq}`,
        model: o.modelName,
        firstSeq: seq,
        ...(chunking === undefined ? {} : { chunking }),
      });
      seq += texts.length;
      progress(
        `  chunking: ${name} ${perSecond.toFixed(2)} texts/s, ${(perSecond * shapes[name].tokensPerText).toFixed(0)} tokens/s`,
      );
      return perSecond;
    });
    const rate = (name: VariantName): ChunkingVariantRate => ({
      chunksPerText: round(shapes[name].chunksPerText, 2),
      tokensPerText: round(shapes[name].tokensPerText),
      textsPerSecond: round(best[name], 2),
      chunksPerSecond: round(best[name] * shapes[name].chunksPerText, 2),
      tokensPerSecond: round(best[name] * shapes[name].tokensPerText),
    });
    const chunked = rate('chunked');
    const truncated = rate('truncated');
    return {
      model: o.modelName,
      texts: o.texts,
      charsPerText: round(texts.reduce((n, t) => n + [...t].length, 0) / texts.length),
      rounds: o.rounds,
      chunked,
      truncated,
      tokenRateRatio: round(
        (best.chunked * shapes.chunked.tokensPerText) /
          (best.truncated * shapes.truncated.tokensPerText),
        3,
      ),
    };
  } finally {
    await embedder.close();
  }
}
