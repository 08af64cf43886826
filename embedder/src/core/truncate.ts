/**
 * Token-based truncation. A text longer than the model's window is cut to the longest prefix, in
 * code points, whose tokens fit; that exact prefix is what gets embedded, so the reported
 * `truncated_len` is exact: embedding `[...text].slice(0, truncated_len).join('')` gives the
 * same vector.
 */

export interface TextStats {
  /** Length of the text in characters (Unicode code points). */
  text_len: number;
  /** Tokens in the whole text, special tokens excluded. */
  token_count: number;
  truncated: boolean;
  /** Characters (code points) actually embedded. */
  truncated_len: number;
}

export interface FittedText {
  /** What goes to the model: the instruction prefix (if any) and the text or its prefix. */
  input: string;
  stats: TextStats;
}

export interface WindowOptions {
  /** Counts the tokens of a string, special tokens excluded. */
  countTokens: (text: string) => number;
  /** Tokens available for `prefix + text` (the model window minus its special tokens). */
  budget: number;
  /** An instruction prefix such as e5's `passage: `; not counted in the text's stats. */
  prefix?: string;
  /**
   * The token ids of a string (special tokens excluded). When given, a long text is cut where the
   * reference tokenizer truncates (sentence-transformers, Hugging Face `truncation=True`): the
   * embedded prefix's tokens are exactly the first `budget` tokens of the whole input, so a cut
   * never lands inside a word piece (which would tokenize differently).
   */
  encode?: (text: string) => readonly number[];
}

export function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low surrogate is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

export function fitToWindow(text: string, options: WindowOptions): FittedText {
  const { countTokens, budget } = options;
  const prefix = options.prefix ?? '';
  const textLen = codePointLength(text);
  const tokenCount = countTokens(text);
  const fitsWhole = prefix === '' ? tokenCount <= budget : countTokens(prefix + text) <= budget;
  if (fitsWhole) {
    return {
      input: prefix + text,
      stats: {
        text_len: textLen,
        token_count: tokenCount,
        truncated: false,
        truncated_len: textLen,
      },
    };
  }

  // offsets[p] = UTF-16 index where code point p starts (offsets[textLen] = text.length).
  const offsets = new Uint32Array(textLen + 1);
  let p = 0;
  for (const ch of text) {
    offsets[p + 1] = (offsets[p] ?? 0) + ch.length;
    p++;
  }
  const cut = (n: number): string => text.slice(0, offsets[n]);
  const fitsCount = (n: number): boolean => countTokens(prefix + cut(n)) <= budget;
  const { encode } = options;
  if (encode) {
    // The window's tokens: a prefix "fits" until it holds more than these, starting with these.
    const window = encode(prefix + text).slice(0, budget);
    const startsWithWindow = (ids: readonly number[]) => window.every((id, i) => ids[i] === id);
    const fits = (n: number): boolean => {
      const ids = encode(prefix + cut(n));
      return ids.length <= budget || !startsWithWindow(ids);
    };
    const lo = longestFitting(textLen, tokenCount, budget, fits);
    const ids = encode(prefix + cut(lo));
    if (ids.length === window.length && startsWithWindow(ids)) return truncatedAt(lo);
    // A tokenizer for which no prefix gives exactly the window's tokens: the longest that fits.
  }
  return truncatedAt(longestFitting(textLen, tokenCount, budget, fitsCount));

  function truncatedAt(lo: number): FittedText {
    return {
      input: prefix + cut(lo),
      stats: { text_len: textLen, token_count: tokenCount, truncated: true, truncated_len: lo },
    };
  }
}

/**
 * The largest n in [0, textLen) with `fits(n)`, given that `fits(0)` holds (nothing of the text)
 * and `fits(textLen)` does not (the whole text).
 */
function longestFitting(
  textLen: number,
  tokenCount: number,
  budget: number,
  fits: (n: number) => boolean,
): number {
  // Invariant: `lo` fits, `hi` does not. Start from the proportional guess and gallop outwards,
  // so a long text costs a few tokenizations of about the window's size, not of the whole text.
  let lo = 0;
  let hi = textLen;
  const guess = Math.min(
    textLen - 1,
    Math.max(1, Math.floor((textLen * budget) / Math.max(tokenCount, 1))),
  );
  let step = Math.max(1, guess >> 4);
  if (fits(guess)) {
    lo = guess;
    while (lo + step < hi) {
      if (!fits(lo + step)) {
        hi = lo + step;
        break;
      }
      lo += step;
      step *= 2;
    }
  } else {
    hi = guess;
    while (hi - step > lo) {
      if (fits(hi - step)) {
        lo = hi - step;
        break;
      }
      hi -= step;
      step *= 2;
    }
  }
  while (hi - lo > 1) {
    const mid = lo + ((hi - lo) >> 1);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
