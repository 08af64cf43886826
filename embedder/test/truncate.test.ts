import { describe, expect, it } from 'vitest';
import { codePointLength, fitToWindow } from '../src/core/truncate.js';

/** A stand-in tokenizer: one token per whitespace-separated word. */
const words = (s: string): number => s.split(/\s+/).filter(Boolean).length;

describe('fitToWindow', () => {
  it('leaves a text that fits alone', () => {
    const fitted = fitToWindow('one two three', { countTokens: words, budget: 3 });
    expect(fitted).toEqual({
      input: 'one two three',
      stats: { text_len: 13, token_count: 3, truncated: false, truncated_len: 13 },
    });
  });

  it('cuts to the longest code-point prefix whose tokens fit', () => {
    const text = Array.from({ length: 1000 }, (_, i) => `w${i}`).join(' ');
    const fitted = fitToWindow(text, { countTokens: words, budget: 100 });
    expect(fitted.stats.truncated).toBe(true);
    expect(fitted.stats.token_count).toBe(1000);
    expect(words(fitted.input)).toBe(100);
    expect(fitted.input).toBe(text.slice(0, fitted.stats.truncated_len));
    // Maximal: one more character would need a 101st token.
    expect(words(text.slice(0, fitted.stats.truncated_len + 1))).toBe(101);
  });

  it('counts characters as code points, never splitting a surrogate pair', () => {
    const text = '😀 '.repeat(300);
    expect(codePointLength(text)).toBe(600);
    const fitted = fitToWindow(text, { countTokens: words, budget: 10 });
    expect(fitted.stats.text_len).toBe(600);
    expect(fitted.input).toBe([...text].slice(0, fitted.stats.truncated_len).join(''));
    expect(fitted.input).not.toMatch(
      /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/,
    );
    expect(words(fitted.input)).toBe(10);
  });

  it('keeps an instruction prefix inside the budget but out of the stats', () => {
    const text = 'a b c d e f g h';
    const fitted = fitToWindow(text, { countTokens: words, budget: 5, prefix: 'passage: ' });
    expect(fitted.input).toMatch(/^passage: a b c d/);
    expect(words(fitted.input)).toBe(5);
    expect(fitted.stats).toMatchObject({ text_len: 15, token_count: 8, truncated: true });
    expect(fitted.input).toBe('passage: ' + text.slice(0, fitted.stats.truncated_len));
  });

  it('finds the cut in few tokenizations for a very long text', () => {
    let calls = 0;
    let chars = 0;
    const counting = (s: string): number => {
      calls++;
      chars += s.length;
      return words(s);
    };
    const text = 'lorem ipsum '.repeat(100_000);
    const fitted = fitToWindow(text, { countTokens: counting, budget: 512 });
    expect(words(fitted.input)).toBe(512);
    expect(calls).toBeLessThan(40);
    // Apart from the one full count, the search only tokenizes prefixes near the window.
    expect(chars - text.length).toBeLessThan(40 * 512 * 12);
  });
});

describe('fitToWindow with token ids (the reference tokenizer cut)', () => {
  // A stand-in WordPiece: a vocabulary word is one token, any other word one token per character
  // (ids from the text), so a prefix ending inside a vocabulary word has more tokens than the
  // whole word: counts are not monotonic in the prefix length, as with real word pieces.
  const VOCAB = new Set(['searching', 'relevant', 'passages']);
  const encode = (s: string): number[] =>
    s
      .split(/\s+/)
      .filter(Boolean)
      .flatMap((w) => (VOCAB.has(w) ? [1000 + w.length] : [...w].map((c) => c.charCodeAt(0))));
  const count = (s: string): number => encode(s).length;

  it('embeds exactly the first `budget` tokens of the whole text, never a partial word', () => {
    const text = Array.from(
      { length: 40 },
      (_, i) => [...VOCAB][i % 3] + (i % 4 === 0 ? ' ab' : ''),
    ).join(' ');
    for (let budget = 5; budget <= 40; budget++) {
      const fitted = fitToWindow(text, { countTokens: count, budget, encode });
      expect(encode(fitted.input)).toEqual(encode(text).slice(0, budget));
      expect(fitted.input).toBe(text.slice(0, fitted.stats.truncated_len));
      expect(fitted.stats).toMatchObject({ truncated: true, token_count: count(text) });
    }
  });
});
