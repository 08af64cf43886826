import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { env, pipeline } from '@huggingface/transformers';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EmbedOutcome, EmbeddingModel } from '../src/core/model.js';
import { POTION, cosine, embedTexts, loadPotion, maxAbsDiff, modelDir } from './helpers.js';

const DOG = 'A large furry dog is running in the park';
const CANINE = 'A big hairy canine is jogging outdoors';
const UNKNOWN_ONLY = '∰∰∰ ⌘⌘';

/** ~1,300 tokens of mixed words, digits and astral characters (so code points ≠ UTF-16 units). */
const LONG_TEXT = Array.from(
  { length: 650 },
  (_, i) =>
    `segment${i % 17} 🚀 ${['river', 'mountain', 'ledger', 'photon', 'harbor'][i % 5]} ${i}`,
).join(' ');

/** Tokens of `text` by the model's own tokenizer, special tokens excluded. */
function countTokens(text: string): number {
  const { tokenizer } = (
    model as unknown as {
      extractor: { tokenizer: { encode(t: string, o: { add_special_tokens: boolean }): number[] } };
    }
  ).extractor;
  return tokenizer.encode(text, { add_special_tokens: false }).length;
}

function vectorOf(outcome: EmbedOutcome | undefined): Float32Array {
  if (!outcome?.ok) throw new Error(`expected a vector, got ${outcome?.code}`);
  return outcome.vector;
}

let model: EmbeddingModel;

beforeAll(async () => {
  model = await loadPotion();
});

afterAll(async () => {
  await model?.dispose();
});

describe('EmbeddingModel with potion-base-2M', () => {
  it('reads the dimension and window from the model', () => {
    expect(model.dim).toBe(64);
    expect(model.maxTokens).toBe(512);
  });

  it('places paraphrases close and unrelated texts apart', async () => {
    const [dog, canine, finance] = await embedTexts(
      model,
      [DOG, CANINE, 'Quarterly revenue grew by twelve percent compared to last year.'],
      'passage',
    );
    const similar = cosine(vectorOf(dog), vectorOf(canine));
    expect(similar).toBeGreaterThan(0.5);
    expect(similar).toBeLessThan(0.99);
    expect(cosine(vectorOf(dog), vectorOf(finance))).toBeLessThan(similar);
    // Unit length.
    expect(cosine(vectorOf(dog), vectorOf(dog))).toBeCloseTo(1, 5);
    let norm = 0;
    for (const x of vectorOf(dog)) norm += x * x;
    expect(Math.sqrt(norm)).toBeCloseTo(1, 5);
  });

  it('gives the same vectors batched as one at a time', async () => {
    const texts = [
      DOG,
      'short',
      CANINE,
      LONG_TEXT,
      'Ünïcödé text with accents — and dashes',
      'xylophone '.repeat(400),
    ];
    const batched = await embedTexts(model, texts, 'passage');
    for (const [i, text] of texts.entries()) {
      const [single] = await embedTexts(model, [text], 'passage');
      expect(maxAbsDiff(vectorOf(batched[i]), vectorOf(single))).toBeLessThanOrEqual(1e-5);
      expect(batched[i]?.stats).toEqual(single?.stats);
    }
  });

  it('matches the golden vectors (tolerance 4e-3) and transformers.js mean+normalize', async () => {
    const golden = JSON.parse(
      await readFile(path.join(import.meta.dirname, 'fixtures/golden-potion.json'), 'utf8'),
    ) as { texts: string[]; vectors: number[][] };
    const outcomes = await embedTexts(model, golden.texts, 'passage');
    golden.vectors.forEach((expected, i) => {
      expect(maxAbsDiff(vectorOf(outcomes[i]), expected)).toBeLessThanOrEqual(4e-3);
    });

    // Independent reference: the library's own pipeline with pooling + normalisation.
    env.allowRemoteModels = false;
    env.localModelPath = `${modelDir}/`;
    const extract = await pipeline('feature-extraction', POTION, { dtype: 'fp32' });
    const reference = await extract(golden.texts, { pooling: 'mean', normalize: true });
    const data = reference.data as Float32Array;
    golden.texts.forEach((_, i) => {
      expect(
        maxAbsDiff(vectorOf(outcomes[i]), data.subarray(i * 64, (i + 1) * 64)),
      ).toBeLessThanOrEqual(1e-5);
    });
    await extract.dispose();
  });

  it('truncates exactly at the 512-token window, measured in tokens', async () => {
    const [outcome] = await embedTexts(model, [LONG_TEXT], 'passage');
    const stats = outcome?.stats;
    if (!stats) throw new Error('no stats');
    const codePoints = [...LONG_TEXT];
    expect(stats.text_len).toBe(codePoints.length);
    expect(stats.text_len).not.toBe(LONG_TEXT.length); // astral characters are one character each
    expect(stats.token_count).toBe(countTokens(LONG_TEXT));
    expect(stats.token_count).toBeGreaterThan(512);
    expect(stats.truncated).toBe(true);
    expect(stats.truncated_len).toBeLessThan(stats.text_len);

    const prefix = codePoints.slice(0, stats.truncated_len).join('');
    expect(countTokens(prefix)).toBeLessThanOrEqual(512);
    // Exact: one more character no longer fits.
    expect(countTokens(codePoints.slice(0, stats.truncated_len + 1).join(''))).toBeGreaterThan(512);

    const [ofPrefix] = await embedTexts(model, [prefix], 'passage');
    expect(ofPrefix?.stats).toMatchObject({ truncated: false, text_len: stats.truncated_len });
    expect(maxAbsDiff(vectorOf(outcome), vectorOf(ofPrefix))).toBeLessThanOrEqual(1e-6);
  });

  it('reports empty_embedding for text with no known token instead of a NaN vector', async () => {
    const [unknown, blank, ok] = await embedTexts(model, [UNKNOWN_ONLY, '   \n\t', DOG], 'passage');
    expect(unknown).toMatchObject({ ok: false, code: 'empty_embedding' });
    expect(unknown?.stats).toMatchObject({ text_len: 6, truncated: false });
    expect(blank).toMatchObject({ ok: false, code: 'empty_embedding' });
    expect(ok?.ok).toBe(true);
    expect(vectorOf(ok).every(Number.isFinite)).toBe(true);
  });

  it('tokenizes a text that fits exactly once, and reuses the truncation search for a long one', async () => {
    const inner = (model as unknown as { extractor: { tokenizer: { _tokenizer: object } } })
      .extractor.tokenizer._tokenizer as { encode: (...args: unknown[]) => unknown };
    const spy = vi.spyOn(inner, 'encode');
    try {
      const outcomes = await embedTexts(model, [DOG, CANINE, 'short'], 'passage');
      expect(outcomes.every((o) => o.ok)).toBe(true);
      expect(spy).toHaveBeenCalledTimes(3); // one encoding per text, none for inference
      spy.mockClear();

      const encoding = model.tokenize(LONG_TEXT, 'passage');
      const searchCalls = spy.mock.calls.length;
      // The truncation search tokenizes the text and a few prefixes, and nothing more.
      expect(searchCalls).toBeGreaterThan(1);
      expect(searchCalls).toBeLessThan(40);
      expect(encoding.stats.truncated).toBe(true);
      expect(encoding.ids.length).toBe(512);
      const embedded = [...LONG_TEXT].slice(0, encoding.stats.truncated_len).join('');
      expect(spy.mock.calls.some((args) => args[0] === embedded)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses to embed once disposed', async () => {
    const own = await loadPotion();
    expect(own.ready).toBe(true);
    await own.dispose();
    expect(own.ready).toBe(false);
    await expect(embedTexts(own, [DOG], 'passage')).rejects.toMatchObject({
      code: 'model_not_ready',
    });
  });
});
