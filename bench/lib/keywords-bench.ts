/**
 * (g) What the keyword index costs ingest. The embedder's own embed path (core/service.ts:
 * tokenize, forward passes through the batcher, the store write) runs the same texts twice per
 * round in one process: with the real term analysis (core/keywords.ts: segmentation, stop words,
 * stemming, one HMAC per term, the sparse columns written) and with none (empty term vectors).
 * Rounds alternate which goes first; the best round of each is kept, and their ratio is the
 * ingest throughput kept with the sparse vectors (issue target: at least 95%).
 */
import { KeywordTerms } from '../../embedder/src/core/keywords.js';
import type { TermAnalyzer, TermVector } from '../../embedder/src/core/keywords.js';
import { bestOfAlternating, embedRate, startInProcessEmbedder } from './in-process.js';
import { progress } from './progress.js';
import { round } from './stats.js';
import { LENGTH_TOKENS, TextSource } from './texts.js';
import type { LengthClass } from './texts.js';

export interface KeywordCostOptions {
  workDir: string;
  modelDir: string;
  modelName: string;
  texts: number;
  length: LengthClass;
  rounds: number;
}

export interface KeywordCostResult {
  model: string;
  length: LengthClass;
  texts: number;
  rounds: number;
  /** Best round, texts/s through EmbedderService.embed with the keyword terms. */
  withTermsTextsPerSecond: number;
  /** Best round, texts/s with empty term vectors (dense only). */
  denseOnlyTextsPerSecond: number;
  /** withTerms / denseOnly. */
  ratio: number;
  /** KeywordTerms.document alone, milliseconds per text (the same texts). */
  analysisMsPerText: number;
}

const EMPTY: TermVector = { ids: new Uint32Array(0), tfs: new Uint32Array(0), length: 0 };
const NO_TERMS: TermAnalyzer = { document: () => EMPTY, query: () => EMPTY };
const ORG = 'bench-keywords-org';

export async function measureKeywordCost(o: KeywordCostOptions): Promise<KeywordCostResult> {
  const embedder = await startInProcessEmbedder({
    workDir: o.workDir,
    storeDir: 'keywords-lancedb',
    modelDir: o.modelDir,
    modelName: o.modelName,
  });
  try {
    const terms = new KeywordTerms('bench-keyword-index-key-0123456789abcdef');
    const variants = {
      withTerms: embedder.service(terms),
      denseOnly: embedder.service(NO_TERMS),
    };
    const texts = new TextSource(LENGTH_TOKENS[o.length], 4242).take(o.texts);
    let seq = 1;
    const best = await bestOfAlternating(['withTerms', 'denseOnly'], o.rounds, async (name) => {
      const perSecond = await embedRate(variants[name], texts, {
        orgId: ORG,
        assetId: `${name}-${seq}`,
        model: o.modelName,
        firstSeq: seq,
      });
      seq += texts.length;
      progress(`  keywords: ${name} ${perSecond.toFixed(1)} texts/s`);
      return perSecond;
    });
    const a0 = performance.now();
    for (const text of texts) terms.document(ORG, text);
    const analysisMsPerText = (performance.now() - a0) / texts.length;
    return {
      model: o.modelName,
      length: o.length,
      texts: o.texts,
      rounds: o.rounds,
      withTermsTextsPerSecond: round(best.withTerms),
      denseOnlyTextsPerSecond: round(best.denseOnly),
      ratio: round(best.withTerms / best.denseOnly, 3),
      analysisMsPerText: round(analysisMsPerText, 3),
    };
  } finally {
    await embedder.close();
  }
}
