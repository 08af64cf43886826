/**
 * int8 against fp32 all-MiniLM-L6-v2 on this CPU, as the embedder runs them (EmbeddingModel from
 * the model cache of `npm run models`, onnxruntime's default threads): texts/s of each, in
 * interleaved rounds, and the median of the per-round ratios (a shared machine's load then
 * weighs on both alike).
 *
 *     npx tsx scripts/models/speed.ts [--rounds 7] [--texts 48] [--words 40] [--batch 32]
 *
 * The texts are the parity fixture's sentences (test/fixtures/reference) joined into passages of
 * about `--words` words; only timings are printed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { EmbeddingModel } from '../../embedder/src/core/model.js';
import type { Encoding } from '../../embedder/src/core/model.js';
import { scriptOptions } from '../lib/script-options.js';
import { REPO_ROOT, modelCacheDir } from './cache.js';

const options = scriptOptions({ rounds: 7, texts: 48, words: 40, batch: 32 });
const { rounds, words, batch } = options;
const count = options.texts;

const fixture = path.join(REPO_ROOT, 'test/fixtures/reference/sentences.json');
const pool = (
  JSON.parse(readFileSync(fixture, 'utf8')) as { sentences: { text: string }[] }
).sentences
  .map((s) => s.text)
  .filter((t) => t.trim().length > 0);
const texts: string[] = [];
for (let i = 0; texts.length < count; i++) {
  const parts: string[] = [];
  for (let j = 0; parts.join(' ').split(/\s+/).length < words; j++) {
    parts.push(pool[(i * 7 + j * 13) % pool.length] as string);
  }
  texts.push(parts.join(' ').split(/\s+/).slice(0, words).join(' '));
}

const load = (dtype: 'fp32' | 'q8') =>
  EmbeddingModel.load({
    name: 'minilm-l6-v2',
    version: '1',
    dir: modelCacheDir(),
    device: 'cpu',
    dtype,
    cpuSpinning: false,
  });
const fp32 = await load('fp32');
const q8 = await load('q8');
const encodings = texts.map((t) => fp32.tokenize(t, 'passage'));
const tokens = encodings.reduce((a, e) => a + e.ids.length, 0) / encodings.length;
const pass = async (model: EmbeddingModel): Promise<number> => {
  const started = performance.now();
  for (let s = 0; s < encodings.length; s += batch) {
    await model.infer(encodings.slice(s, s + batch) as Encoding[]);
  }
  return encodings.length / ((performance.now() - started) / 1000);
};
await pass(fp32);
await pass(q8);
const rows: { fp32: number; q8: number }[] = [];
for (let r = 0; r < rounds; r++) rows.push({ fp32: await pass(fp32), q8: await pass(q8) });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const ratios = rows.map((r) => r.q8 / r.fp32);
console.log(
  `all-MiniLM-L6-v2, ${texts.length} texts of ${tokens.toFixed(0)} tokens, batches of ${batch}, ` +
    `${rounds} rounds: fp32 ${median(rows.map((r) => r.fp32)).toFixed(1)} texts/s, ` +
    `int8 ${median(rows.map((r) => r.q8)).toFixed(1)} texts/s, int8/fp32 ${median(ratios).toFixed(2)}× ` +
    `(rounds: ${ratios.map((x) => x.toFixed(2)).join(' ')})`,
);
await fp32.dispose();
await q8.dispose();
