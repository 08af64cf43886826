import { AutoTokenizer, env } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { splitIntoChunks } from '../src/core/chunking.js';
import type { Chunk, ChunkOptions } from '../src/core/chunking.js';
import { codePointLength, fitToWindow } from '../src/core/truncate.js';
import { modelCacheDir } from '../../scripts/models/cache.js';
import { POTION, modelDir } from './helpers.js';

type Encode = (text: string) => readonly number[];

/** For the tests that tokenize a lot: generous, as the machine may be shared. */
const SLOW = 120_000;

/** Stand-in tokenizers (ids, special tokens excluded), over whitespace-separated words. */
const wordsOf = (s: string): string[] => s.split(/\s+/u).filter(Boolean);
/** One token per word. */
const byWord: Encode = (s) => wordsOf(s).map((w) => codePointLength(w));
/** One token per four code points of a word: a long run is many tokens, as in WordPiece. */
const byPiece: Encode = (s) =>
  wordsOf(s).flatMap((w) => {
    const cps = [...w];
    const ids: number[] = [];
    for (let i = 0; i < cps.length; i += 4) ids.push(cps[i]?.codePointAt(0) ?? 0);
    return ids;
  });
/** One token per non-blank code point (as BERT treats CJK ideographs). */
const byChar: Encode = (s) => [...s].filter((c) => /\S/u.test(c)).map((c) => c.codePointAt(0) ?? 0);
const FAKES = { byWord, byPiece, byChar } as const;
const countOf =
  (encode: Encode) =>
  (s: string): number =>
    encode(s).length;

/** Fails the test instead of hanging when the chunker loops. */
function bounded<A extends unknown[], R>(f: (...a: A) => R, limit = 2_000_000): (...a: A) => R {
  let calls = 0;
  return (...a) => {
    if (++calls > limit) throw new Error(`more than ${limit} tokenizer calls: no progress`);
    return f(...a);
  };
}

const slice = (cps: readonly string[], a: number, b: number): string => cps.slice(a, b).join('');

/** Code-point offsets where Intl.Segmenter puts a word-segment boundary (and the text's ends). */
function segmentBoundaries(text: string): Set<number> {
  const out = new Set<number>();
  let cp = 0;
  for (const { segment } of new Intl.Segmenter('en', { granularity: 'word' }).segment(text)) {
    out.add(cp);
    cp += codePointLength(segment);
  }
  out.add(cp);
  return out;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/u;

/**
 * The invariants every chunking must satisfy (requirements 1, 2, 3 and 6), checked without an
 * `expect` per chunk (thousands of chunks): fails listing the chunks that break one. Returns the
 * tokens each pair of neighbours shares.
 */
function checkChunks(text: string, chunks: Chunk[], options: ChunkOptions): number[] {
  const { countTokens, maxTokens, overlapTokens } = options;
  const prefix = options.prefix ?? '';
  const cps = [...text];
  expect(chunks.length).toBeGreaterThan(0);
  expect(chunks[0]?.start).toBe(0);
  expect(chunks.at(-1)?.end).toBe(cps.length);
  const problems: string[] = [];
  const overlaps: number[] = [];
  chunks.forEach((c, i) => {
    const fail = (what: string) => problems.push(`chunk ${i} [${c.start}, ${c.end}): ${what}`);
    const chunkText = slice(cps, c.start, c.end);
    if (c.input !== prefix + chunkText) fail('input is not prefix + its code points');
    if (c.tokenCount !== countTokens(chunkText)) fail(`tokenCount ${c.tokenCount} is wrong`);
    if (LONE_SURROGATE.test(chunkText)) fail('splits a surrogate pair');
    if (chunks.length > 1) {
      if (c.end <= c.start) fail('is empty');
      if (countTokens(c.input) > maxTokens) fail(`has ${countTokens(c.input)} tokens`);
    }
    const prev = chunks[i - 1];
    if (!prev) return;
    if (c.start <= prev.start) fail(`starts at or before the previous start ${prev.start}`);
    if (c.start > prev.end) fail(`leaves a gap after the previous end ${prev.end}`);
    if (c.end <= prev.end) fail(`ends at or before the previous end ${prev.end}`);
    if (overlapTokens === 0 && !options.encode && c.start !== prev.end) fail('is not adjacent');
    overlaps.push(countTokens(slice(cps, c.start, prev.end)));
  });
  expect(problems).toEqual([]);
  return overlaps;
}

/**
 * Requirement 3: a chunk ends on a word-segment boundary, unless it is cut inside a run, where
 * one more code point would not fit (token-exact). It starts on one, or at the previous end, or
 * inside a run where one code point earlier would share one more token (token-exact; how many
 * it shares is overlapTokens, or less where the overlap was halved to make room).
 */
function checkBoundaries(text: string, chunks: Chunk[], options: ChunkOptions, skipEnd0 = false) {
  const { countTokens, maxTokens } = options;
  const prefix = options.prefix ?? '';
  const cps = [...text];
  const bounds = segmentBoundaries(text);
  const problems: string[] = [];
  chunks.forEach((c, i) => {
    if (!bounds.has(c.end) && !(i === 0 && skipEnd0)) {
      const more = countTokens(prefix + slice(cps, c.start, c.end + 1));
      if (more <= maxTokens) problems.push(`chunk ${i} ends inside a word, yet ${more} fit`);
    }
    const prev = chunks[i - 1];
    if (prev && !bounds.has(c.start) && c.start !== prev.end && !(i === 1 && skipEnd0)) {
      const shared = countTokens(slice(cps, c.start, prev.end));
      if (countTokens(slice(cps, c.start - 1, prev.end)) <= shared) {
        problems.push(`chunk ${i} starts inside a word, not token-exactly`);
      }
    }
  });
  expect(problems).toEqual([]);
}

/** A deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ENGLISH = [
  'river',
  'mountain',
  'ledger',
  'photon',
  'harbor',
  'unbelievable',
  'antidisestablishmentarianism',
  'the',
  'of',
  'quantum',
  'search',
  'relevant',
];

/** `count` words, sentence punctuation every few words, `seed`-determined. */
function prose(count: number, seed = 1): string {
  const r = rng(seed);
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    const w = ENGLISH[Math.floor(r() * ENGLISH.length)] as string;
    words.push(r() < 0.1 ? `${w}.` : r() < 0.05 ? `${w},` : w);
  }
  return words.join(' ');
}

const UNICODE_PIECES = [
  '😀',
  '👨‍👩‍👧',
  '🇯🇵',
  'e\u0301te\u0301',
  'n\u0303o',
  'z\u0301\u0302\u0303a\u0304\u0305',
  '日本語のテキストです。',
  '東京都',
  'ภาษาไทยเป็นภาษาที่',
  'مرحبا بالعالم',
  'שלום עולם',
  '𠀀𠀁',
  'café',
  '(note)',
  '—',
];

/** A mix of scripts, emoji, combining marks and runs, `seed`-determined. */
function mixed(count: number, seed: number): string {
  const r = rng(seed);
  let out = '';
  for (let i = 0; i < count; i++) {
    const x = r();
    if (x < 0.35) out += ENGLISH[Math.floor(r() * ENGLISH.length)];
    else if (x < 0.7) out += UNICODE_PIECES[Math.floor(r() * UNICODE_PIECES.length)];
    else if (x < 0.75) out += 'x'.repeat(20 + Math.floor(r() * 300));
    else if (x < 0.78) out += 'a.b'.repeat(10 + Math.floor(r() * 100));
    else if (x < 0.8) out += '😀'.repeat(1 + Math.floor(r() * 60));
    else out += ['.', ',', '!', '-', '/'][Math.floor(r() * 5)];
    out += [' ', ' ', ' ', '\n', '  ', '', '\t'][Math.floor(r() * 7)];
  }
  return out;
}

describe('splitIntoChunks with stand-in tokenizers', () => {
  const countTokens = countOf(byWord);

  it('keeps a text that fits as one chunk, exactly as fitToWindow', () => {
    for (const [text, prefix] of [
      ['one two three', ''],
      ['one two', 'passage: '],
      ['', ''],
      ['', 'query: '],
      ['   ', ''],
    ] as const) {
      const chunks = splitIntoChunks(text, { countTokens, maxTokens: 3, overlapTokens: 1, prefix });
      const fitted = fitToWindow(text, { countTokens, budget: 3, prefix });
      expect(fitted.stats.truncated).toBe(false);
      expect(chunks).toEqual([
        {
          start: 0,
          end: codePointLength(text),
          input: fitted.input,
          tokenCount: fitted.stats.token_count,
        },
      ]);
    }
  });

  it('covers a long text with full chunks ending at word starts, overlapping by overlapTokens', () => {
    const text = prose(1000);
    for (const overlapTokens of [0, 1, 5, 20, 39]) {
      for (const prefix of ['', 'passage: ']) {
        const options = { countTokens: bounded(countTokens), maxTokens: 40, overlapTokens, prefix };
        const chunks = splitIntoChunks(text, options);
        const overlaps = checkChunks(text, chunks, options);
        const textBudget = 40 - (prefix ? 1 : 0);
        // One token per word: the overlap is exact (capped to leave room for one new word).
        expect(overlaps).toEqual(overlaps.map(() => Math.min(overlapTokens, textBudget - 1)));
        // Full chunks (the last excepted), every boundary at a word start.
        for (const c of chunks.slice(0, -1)) expect(c.tokenCount).toBe(textBudget);
        for (const c of chunks) {
          expect(c.input.slice(prefix.length)).toMatch(/^\S/u);
          if (c.end < text.length) expect(text[c.end - 1]).toBe(' ');
        }
        checkBoundaries(text, chunks, options);
      }
    }
  });

  it('ends and starts chunks at word starts when words take several tokens', () => {
    // Words of 1 to 7 tokens: chunks are not exactly full, yet no word is cut.
    const count = bounded(countOf(byPiece));
    const text = prose(1500, 2);
    for (const [maxTokens, overlapTokens] of [
      [40, 8],
      [64, 0],
      [254, 32],
    ] as const) {
      const options = { countTokens: count, maxTokens, overlapTokens };
      const chunks = splitIntoChunks(text, options);
      const overlaps = checkChunks(text, chunks, options);
      const bounds = segmentBoundaries(text);
      const cut = chunks.filter((c) => !bounds.has(c.start) || !bounds.has(c.end));
      expect(cut).toEqual([]);
      // Nearly full: the next word (at most 7 tokens, 8 with punctuation) did not fit.
      for (const c of chunks.slice(0, -1)) expect(c.tokenCount).toBeGreaterThan(maxTokens - 8);
      for (const o of overlaps) expect(o).toBeGreaterThan(overlapTokens - 8);
    }
  });

  it('keeps punctuation with its word and starts chunks at words', () => {
    const text = 'Alpha beta. Gamma (delta) epsilon, zeta! Eta theta... iota kappa';
    const chunks = splitIntoChunks(text, { countTokens, maxTokens: 2, overlapTokens: 0 });
    expect(chunks.map((c) => c.input)).toEqual([
      'Alpha beta. ',
      'Gamma (delta) ',
      'epsilon, zeta! ',
      'Eta theta... ',
      'iota kappa',
    ]);
  });

  it(
    'cuts a run without word boundaries token-exactly, never empty, always progressing',
    () => {
      const count = bounded(countOf(byPiece));
      const run = 'q'.repeat(5000);
      const texts = [
        run,
        `intro words here ${run} and an outro`,
        `${'ab '.repeat(30)}${run}`,
        Buffer.from(Array.from({ length: 3750 }, (_, i) => (i * 2654435761) % 256))
          .toString('base64')
          .replace(/[+/]/gu, 'x'),
      ];
      for (const text of texts) {
        for (const [maxTokens, overlapTokens] of [
          [1, 0],
          [7, 3],
          [64, 16],
          [254, 32],
        ] as const) {
          const options = { countTokens: count, maxTokens, overlapTokens };
          const chunks = splitIntoChunks(text, options);
          checkChunks(text, chunks, options);
          checkBoundaries(text, chunks, options);
          // Nearly full: a run is cut where one more code point would not fit.
          const runChunks = chunks.slice(0, -1).filter((c) => c.start > 100 && c.end < 5000);
          for (const c of runChunks) expect(c.tokenCount).toBe(maxTokens);
        }
      }
    },
    SLOW,
  );

  it('halves the overlap rather than cut a word that fits a chunk on its own', () => {
    // After "a … j" (10 tokens), 8 shared tokens leave no room for the 6-token word: 4 do.
    const count = bounded(countOf(byPiece));
    const text = `a b c d e f g h i j ${'x'.repeat(24)} k l m`;
    const options = { countTokens: count, maxTokens: 10, overlapTokens: 8 };
    const chunks = splitIntoChunks(text, options);
    const overlaps = checkChunks(text, chunks, options);
    expect(chunks[0]?.input).toBe('a b c d e f g h i j ');
    expect(chunks[1]?.input).toBe(`g h i j ${'x'.repeat(24)} `);
    expect(overlaps[0]).toBe(4);
    const bounds = segmentBoundaries(text);
    for (const c of chunks) expect(bounds.has(c.start) && bounds.has(c.end)).toBe(true);
    expect(overlaps.slice(1).every((o) => o <= 8)).toBe(true);
  });

  it('rejects settings that leave no room for text', () => {
    const text = prose(50);
    const bad: Array<Partial<ChunkOptions>> = [
      { maxTokens: 0 },
      { maxTokens: 2.5 },
      { overlapTokens: -1 },
      { overlapTokens: 10 },
      { overlapTokens: 0.5 },
      { prefix: 'an instruction prefix that is longer than the ten tokens of the window' },
    ];
    for (const over of bad) {
      expect(() =>
        splitIntoChunks(text, { countTokens, maxTokens: 10, overlapTokens: 2, ...over }),
      ).toThrow(RangeError);
    }
  });

  it(
    'holds its invariants on random texts, tokenizers and settings',
    () => {
      const r = rng(7);
      for (let trial = 0; trial < 150; trial++) {
        const text =
          trial % 3 === 0
            ? prose(5 + Math.floor(r() * 300), trial)
            : mixed(5 + Math.floor(r() * 200), trial);
        const name = (['byWord', 'byPiece', 'byChar'] as const)[trial % 3] as keyof typeof FAKES;
        const encode = FAKES[name];
        const count = bounded(countOf(encode));
        const prefix = r() < 0.3 ? 'q: ' : '';
        const maxTokens = Math.max(count(prefix) + 1, 1 + Math.floor(r() * 60));
        const overlapTokens = r() < 0.25 ? 0 : Math.floor(r() * maxTokens);
        const withIds = r() < 0.5;
        const options: ChunkOptions = {
          countTokens: count,
          maxTokens,
          overlapTokens,
          prefix,
          ...(withIds ? { encode } : {}),
        };
        const context = `trial ${trial} (${name}, max ${maxTokens}, overlap ${overlapTokens})`;
        const chunks = splitIntoChunks(text, options);
        const overlaps = checkChunks(text, chunks, options);
        checkBoundaries(text, chunks, options, withIds);
        if (withIds) {
          const fitted = fitToWindow(text, {
            countTokens: count,
            budget: maxTokens,
            prefix,
            encode,
          });
          expect(chunks[0]?.input, context).toBe(fitted.input);
        }
        // The overlap never exceeds overlapTokens (chunk 0 with ids: up to the word it ends in).
        overlaps.forEach((o, i) => {
          if (!(withIds && i === 0)) expect(o, context).toBeLessThanOrEqual(overlapTokens);
        });
      }
    },
    SLOW,
  );
});

/** The real tokenizers, special tokens excluded, as model.ts calls them. */
interface Tokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
}
const tokenizers: Record<string, Tokenizer> = {};

beforeAll(async () => {
  env.allowRemoteModels = false;
  env.localModelPath = `${modelCacheDir()}/`;
  tokenizers.minilm = (await AutoTokenizer.from_pretrained(
    'Xenova/all-MiniLM-L6-v2',
  )) as unknown as Tokenizer;
  env.localModelPath = `${modelDir}/`;
  tokenizers.potion = (await AutoTokenizer.from_pretrained(POTION)) as unknown as Tokenizer;
}, 60_000);

/** The real tokenizer's options, counting calls and characters tokenized. */
function real(name: 'minilm' | 'potion') {
  const tokenizer = tokenizers[name] as Tokenizer;
  const stats = { calls: 0, chars: 0 };
  const encode = (s: string): number[] => {
    stats.calls++;
    stats.chars += s.length;
    return tokenizer.encode(s, { add_special_tokens: false });
  };
  return { stats, encode, countTokens: (s: string) => encode(s).length };
}

describe.each([
  ['minilm', 254],
  ['potion', 512],
] as const)('splitIntoChunks with the real %s tokenizer (budget %i)', (name, budget) => {
  it('keeps a text that fits as one chunk, exactly as fitToWindow', () => {
    const { countTokens, encode } = real(name);
    const text = 'A large furry dog is running in the park 🐕 — 東京, ภาษาไทย, שלום.';
    for (const prefix of ['', 'passage: ']) {
      const chunks = splitIntoChunks(text, {
        countTokens,
        encode,
        maxTokens: budget,
        overlapTokens: 32,
        prefix,
      });
      const fitted = fitToWindow(text, { countTokens, encode, budget, prefix });
      expect(chunks).toEqual([
        {
          start: 0,
          end: [...text].length,
          input: fitted.input,
          tokenCount: fitted.stats.token_count,
        },
      ]);
    }
  });

  it(
    'chunks long prose within the window, at word starts, overlapping by about overlapTokens',
    () => {
      const { countTokens } = real(name);
      const text = prose(3000, 11);
      const cps = [...text];
      for (const [maxTokens, overlapTokens, prefix] of [
        [budget, 32, ''],
        [budget, 64, 'passage: '],
        [128, 0, ''],
      ] as const) {
        const options = { countTokens, maxTokens, overlapTokens, prefix };
        const chunks = splitIntoChunks(text, options);
        expect(chunks.length).toBeGreaterThan(3);
        const overlaps = checkChunks(text, chunks, options);
        checkBoundaries(text, chunks, options);
        const starts = segmentBoundaries(text);
        chunks.forEach((c, i) => {
          // Word boundaries: every chunk starts at a word and ends after whitespace.
          expect(starts.has(c.start) && starts.has(c.end)).toBe(true);
          expect(cps[c.start]).toMatch(/\S/u);
          if (i < chunks.length - 1) {
            expect(cps[c.end - 1]).toBe(' ');
            // Nearly full: the next word would not fit.
            expect(countTokens(c.input)).toBeGreaterThan(maxTokens - 12);
          }
        });
        // About overlapTokens: at most that, and one word earlier would exceed it.
        overlaps.forEach((o, i) => {
          expect(o).toBeLessThanOrEqual(overlapTokens);
          const prev = chunks[i] as Chunk;
          const next = chunks[i + 1] as Chunk;
          if (overlapTokens > 0) {
            let wordBefore = next.start - 1;
            while (wordBefore > 0 && !(cps[wordBefore - 1] === ' ' && cps[wordBefore] !== ' ')) {
              wordBefore--;
            }
            expect(countTokens(slice(cps, wordBefore, prev.end))).toBeGreaterThan(overlapTokens);
            expect(o).toBeGreaterThan(overlapTokens - 10);
          }
        });
      }
    },
    SLOW,
  );

  it(
    'makes chunk 0 exactly what fitToWindow embeds at the full budget, even inside a word',
    () => {
      const { countTokens, encode } = real(name);
      // `budget - 2` one-token words, then an 8-piece word: the window ends after its 2nd piece.
      const word = 'antidisestablishmentarianism';
      expect(countTokens(word)).toBe(8);
      for (const [prefix, overlapTokens] of [
        ['', 0],
        ['', 32],
        ['passage: ', 0],
        ['passage: ', 32],
      ] as const) {
        const head = 'a '.repeat(budget - 2 - countTokens(prefix));
        const text = `${head}${word} ${prose(400, 3)}`;
        const wordStart = head.length;
        const options = { countTokens, encode, maxTokens: budget, overlapTokens, prefix };
        const chunks = splitIntoChunks(text, options);
        checkChunks(text, chunks, options);
        const fitted = fitToWindow(text, { countTokens, encode, budget, prefix });
        const [first, second] = chunks as [Chunk, Chunk];
        expect(first.input).toBe(fitted.input);
        expect(first.end).toBe(fitted.stats.truncated_len);
        expect(encode(first.input)).toEqual(encode(prefix + text).slice(0, budget));
        // The window ends inside the word ("antidisestab" without a prefix) …
        expect(first.end).toBeGreaterThan(wordStart);
        expect(first.end).toBeLessThan(wordStart + word.length);
        // … and chunk 1 repeats it whole: from its start with no overlap, earlier with overlap.
        expect(second.input).toContain(word);
        if (overlapTokens === 0) expect(second.start).toBe(wordStart);
        else {
          expect(second.start).toBeLessThan(wordStart);
          const shared = countTokens(text.slice(second.start, wordStart));
          expect(shared).toBeLessThanOrEqual(overlapTokens);
          expect(shared).toBeGreaterThan(overlapTokens - 2);
        }
        // Without ids the word rule applies to chunk 0 too: it ends before the word.
        const plain = splitIntoChunks(text, {
          countTokens,
          maxTokens: budget,
          overlapTokens,
          prefix,
        });
        expect(plain[0]?.end).toBe(wordStart);
      }
    },
    SLOW,
  );

  it(
    'matches fitToWindow for chunk 0 of varied long texts (ids given, full budget)',
    () => {
      const { countTokens, encode } = real(name);
      for (let seed = 1; seed <= 4; seed++) {
        const text = seed % 2 === 0 ? prose(1200, seed) : mixed(700, seed);
        for (const prefix of ['', 'passage: ']) {
          const options = { countTokens, encode, maxTokens: budget, overlapTokens: 48, prefix };
          const chunks = splitIntoChunks(text, options);
          checkChunks(text, chunks, options);
          checkBoundaries(text, chunks, options, true);
          expect(chunks[0]?.input).toBe(
            fitToWindow(text, { countTokens, encode, budget, prefix }).input,
          );
        }
      }
    },
    SLOW,
  );

  it(
    'keeps code-point offsets across emoji, combining marks, CJK, Thai and RTL text',
    () => {
      const { countTokens } = real(name);
      for (let seed = 20; seed < 23; seed++) {
        const text = mixed(800, seed);
        expect([...text].length).toBeLessThan(text.length); // astral characters present
        for (const [maxTokens, overlapTokens] of [
          [budget, 32],
          [40, 8],
          [12, 0],
        ] as const) {
          const options = { countTokens, maxTokens, overlapTokens };
          const chunks = splitIntoChunks(text, options);
          checkChunks(text, chunks, options);
          checkBoundaries(text, chunks, options);
          // Boundaries never split a grapheme (an emoji sequence, a letter and its marks) except
          // inside a run without word boundaries.
          const graphemes = new Set<number>([[...text].length]);
          let cp = 0;
          for (const { segment } of new Intl.Segmenter('en', {
            granularity: 'grapheme',
          }).segment(text)) {
            graphemes.add(cp);
            cp += codePointLength(segment);
          }
          const bounds = segmentBoundaries(text);
          for (const c of chunks) {
            if (bounds.has(c.end)) expect(graphemes.has(c.end)).toBe(true);
            if (bounds.has(c.start)) expect(graphemes.has(c.start)).toBe(true);
          }
        }
      }
    },
    SLOW,
  );

  it(
    'cuts runs that have no word boundary (dotted identifiers, long words) token-exactly',
    () => {
      const { countTokens } = real(name);
      // One word-segment for Intl.Segmenter, one token per letter and dot for WordPiece.
      const dotted = Array.from({ length: 1500 }, (_, i) => 'abcdefghij'[i % 10]).join('.');
      // WordPiece makes a word over 100 characters one [UNK]: it fits, whole, in any chunk.
      const letters = 'q'.repeat(5000);
      expect(countTokens(letters)).toBe(1);
      for (const text of [
        dotted,
        `some words first ${dotted} and after`,
        `${letters} ${prose(600, 5)}`,
      ]) {
        for (const [maxTokens, overlapTokens] of [
          [budget, 32],
          [16, 4],
          [1, 0],
        ] as const) {
          const options = { countTokens: bounded(countTokens, 200_000), maxTokens, overlapTokens };
          const chunks = splitIntoChunks(text, options);
          checkChunks(text, chunks, options);
          checkBoundaries(text, chunks, options);
        }
      }
    },
    SLOW,
  );

  it(
    'chunks 32,000 characters in few tokenizations per chunk',
    () => {
      const text = [...`${prose(2500, 17)} ${mixed(900, 18)}`].slice(0, 32_000).join('');
      expect(codePointLength(text)).toBe(32_000);
      for (const [prefix, overlapTokens, withIds] of [
        ['', 32, false],
        ['', 32, true],
        ['passage: ', 64, true],
      ] as const) {
        const { stats, countTokens, encode } = real(name);
        const options = {
          countTokens,
          maxTokens: budget,
          overlapTokens,
          prefix,
          ...(withIds ? { encode } : {}),
        };
        const chunks = splitIntoChunks(text, options);
        expect(chunks.length).toBeGreaterThan(5);
        expect(stats.calls).toBeLessThanOrEqual(20 * chunks.length);
        // Characters tokenized: a few full passes plus a few windows per chunk.
        expect(stats.chars).toBeLessThanOrEqual(16 * text.length);
        checkChunks(text, chunks, options);
      }
    },
    SLOW,
  );
});
