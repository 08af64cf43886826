/**
 * `npx tsx eval/analyzers.ts [--dataset DIR] [--split NAME]`: how the keyword analyzer's choices
 * (stop words, stemming) score on a BEIR dataset, with the eval's reference BM25 (k1 0.9, b 0.4)
 * over each variant's terms. This is the measurement behind the analyzer's defaults
 * (embedder/src/core/keywords.ts). It prints figures only, never a text.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AnalyzerOptions } from '../embedder/src/core/keywords.js';
import { Bm25Index } from './lib/bm25.js';
import { loadDataset } from './lib/dataset.js';
import { summarizeRun } from './lib/metrics.js';
import { REPO_ROOT } from './lib/python.js';

const { values } = parseArgs({
  options: {
    dataset: { type: 'string', default: path.resolve(REPO_ROOT, '../shared/eval/scifact') },
    split: { type: 'string', default: 'train' },
  },
});
const ds = loadDataset(values.dataset, values.split);
const variants: [string, AnalyzerOptions][] = [
  ['words only', { stopWords: false, stem: false }],
  ['stop words', { stopWords: true, stem: false }],
  ['Porter stemming', { stopWords: false, stem: true }],
  ['stop words + stemming (default)', { stopWords: true, stem: true }],
];
console.log(`${ds.name} ${ds.split}: ${ds.docs.length} documents, ${ds.queries.length} queries`);
console.log('| analyzer | nDCG@10 | Recall@100 | MRR@10 |');
console.log('| --- | --- | --- | --- |');
for (const [label, options] of variants) {
  const s = summarizeRun(ds.qrels, new Bm25Index(ds.docs, options).run(ds.queries, 100));
  const f = (x: number) => x.toFixed(4);
  console.log(`| ${label} | ${f(s.ndcgAt10)} | ${f(s.recallAt100)} | ${f(s.mrrAt10)} |`);
}
