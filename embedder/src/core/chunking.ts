/**
 * Chunking of long texts: instead of embedding only the first window of a text (truncate.ts), a
 * text longer than the window is split into overlapping chunks that each fit it, so every part
 * of the text is embedded. Pure: the tokenizer comes in as functions, nothing is inferred here.
 *
 * Units. Offsets are Unicode code points into the text, as `text_len` and `truncated_len` are:
 * a chunk's text is `[...text].slice(start, end).join('')`, never half a surrogate pair. Token
 * counts exclude the model's special tokens ([CLS]/[SEP]); `maxTokens` bounds the instruction
 * prefix and the chunk's text together, as `budget` does in `fitToWindow`.
 *
 * Policy.
 * - A text whose `prefix + text` fits is one chunk, `[0, len]`, exactly `fitToWindow`'s input.
 * - Otherwise chunks cover the text in order, each next one starting after the previous one's
 *   start and no later than its end. A chunk ends at the last word start that fits (so it keeps
 *   its trailing punctuation and whitespace, and the next chunk starts at a word). Word starts
 *   come from `Intl.Segmenter` word segmentation (locale "en"; CJK, Thai, … are split by
 *   dictionary): the start of a word-like segment, or of any other non-blank segment (emoji, an
 *   opening bracket) after whitespace. When ending at the last fitting word start would leave
 *   the chunk less than half full, the next "word" is a run (a blob without separators, a long
 *   dotted identifier): the chunk is cut inside it at the code point where one more would not
 *   fit (token-exact), so every chunk is non-empty and within `maxTokens`. (A WordPiece word over
 *   100 characters is one [UNK] token: such a run fits whole and is not cut.)
 * - Overlap: the next chunk starts at the earliest word start from which the rest of the
 *   previous chunk holds at most `overlapTokens` tokens, so neighbours share between
 *   `overlapTokens` minus one word's tokens and `overlapTokens` tokens (inside a run, at the
 *   code point where that holds). `overlapTokens = 0` makes chunks adjacent. The overlap is
 *   capped at `maxTokens` minus the prefix's tokens minus 1, and where it leaves no room for the
 *   next word (one that fits a chunk on its own), it is halved until that word fits rather than
 *   cutting the word. Every chunk ends beyond the previous one's end: the loop always progresses.
 * - Chunk 0 with `encode` (the choice for parity): chunk 0 is exactly what `fitToWindow` embeds
 *   today for the same budget, i.e. where sentence-transformers truncates (the first `maxTokens`
 *   tokens of `prefix + text`), even when that ends inside a word, at a word-piece boundary
 *   ("antidisestab|lishmentarianism"). So with `maxTokens` = the model's budget, a long text's
 *   chunk 0 has the vector it has today and that the reference implementation gives: vectors
 *   already stored for truncated texts stay valid as their chunk 0, `truncated_len` keeps its
 *   meaning (chunk 0's end), and parity with sentence-transformers holds. Snapping back to the
 *   word start would change that vector to drop at most one word's pieces from one chunk. No
 *   word is lost or left only in fragments: when chunk 0 ends inside a word, the next chunk's
 *   overlap is measured back from that word's start, so chunk 1 repeats the whole word (with
 *   `overlapTokens = 0` too: chunk 1 then starts at that word, the one case where 0 overlap is
 *   not adjacency). Without `encode`, chunk 0 follows the word rule like every later chunk
 *   (later chunks have no earlier vector to match).
 *
 * Cost. One full count of the text (two with a prefix; `fitToWindow` adds one full `encode` and
 * its own search when `encode` is given). Then per chunk: one count at the first word start
 * beyond the previous end, a search over word starts whose probes are placed by the counts
 * (predicted from the code points per token of the previous chunk, then interpolated between
 * the bracket's counts, bisecting when that stalls): about 3–5 counts of window-sized strings;
 * the overlap search the same way on overlap-sized strings; and one count of the chunk text
 * alone when there is a prefix. A word start far beyond a window is counted at most once, so a
 * long run cut into many chunks is not re-tokenized to its end for each.
 */
import { codePointLength, fitToWindow } from './truncate.js';

export interface ChunkOptions {
  /** Counts the tokens of a string, special tokens excluded. */
  countTokens: (text: string) => number;
  /**
   * The token ids of a string, special tokens excluded (`encode(s).length` must equal
   * `countTokens(s)`). When given, chunk 0 is cut where `fitToWindow` (and sentence-transformers)
   * truncates, so it embeds exactly as today's truncated text.
   */
  encode?: (text: string) => readonly number[];
  /** Tokens per chunk for `prefix + chunk text`: at most the model's window minus its special tokens. */
  maxTokens: number;
  /** Tokens that consecutive chunks share (≥ 0, < maxTokens); 0: adjacent chunks. */
  overlapTokens: number;
  /** An instruction prefix such as e5's `passage: `, put before every chunk's text. */
  prefix?: string;
}

export interface Chunk {
  /** Offset of the chunk's first code point in the text. */
  start: number;
  /** Offset after the chunk's last code point (exclusive). */
  end: number;
  /** What goes to the model: the prefix and the chunk's text. */
  input: string;
  /** Tokens of the chunk's text (prefix and special tokens excluded). */
  tokenCount: number;
}

const WORDS = new Intl.Segmenter('en', { granularity: 'word' });

/**
 * Splits `text` into chunks whose `prefix + text` each fit `maxTokens` tokens, covering the text
 * in order with about `overlapTokens` shared between neighbours (see the module header).
 * Throws RangeError for invalid token settings, or when not even the prefix and one character
 * fit `maxTokens`.
 */
export function splitIntoChunks(text: string, options: ChunkOptions): Chunk[] {
  const { countTokens, encode, maxTokens, overlapTokens } = options;
  const prefix = options.prefix ?? '';
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new RangeError(`maxTokens must be a positive integer, got ${maxTokens}`);
  }
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= maxTokens) {
    throw new RangeError(
      `overlapTokens must be an integer in [0, maxTokens), got ${overlapTokens} for maxTokens ${maxTokens}`,
    );
  }
  const len = codePointLength(text);

  // One chunk when it fits; with `encode`, fitToWindow also gives chunk 0's reference cut.
  let total: number;
  let firstEnd: number | null = null;
  if (encode) {
    const fitted = fitToWindow(text, { countTokens, budget: maxTokens, prefix, encode });
    total = fitted.stats.token_count;
    if (!fitted.stats.truncated)
      return [{ start: 0, end: len, input: fitted.input, tokenCount: total }];
    if (fitted.stats.truncated_len > 0) firstEnd = fitted.stats.truncated_len;
  } else {
    total = countTokens(text);
    const fits = prefix === '' ? total <= maxTokens : countTokens(prefix + text) <= maxTokens;
    if (fits) return [{ start: 0, end: len, input: prefix + text, tokenCount: total }];
  }

  const prefixTokens = prefix === '' ? 0 : countTokens(prefix);
  if (prefixTokens >= maxTokens) {
    throw new RangeError(
      `the prefix takes ${prefixTokens} of maxTokens ${maxTokens} tokens: no room for text`,
    );
  }
  const textBudget = maxTokens - prefixTokens;
  const overlap = Math.min(overlapTokens, textBudget - 1);

  // offsets[p] = UTF-16 index where code point p starts (offsets[len] = text.length).
  const offsets = new Uint32Array(len + 1);
  let p = 0;
  for (const ch of text) {
    offsets[p + 1] = at(offsets, p) + ch.length;
    p++;
  }
  const piece = (a: number, b: number): string => text.slice(at(offsets, a), at(offsets, b));
  const starts = wordStarts(text, len);
  const lastIndex = starts.length - 1; // starts[lastIndex] === len
  /** Code points per token, from the text so far: the searches' first guess. */
  let density = len / Math.max(1, total);

  /** A far word start (see findEnd) found not to fit. */
  let farMiss = -1;

  /**
   * The end of a chunk that starts at `s`, beyond `after` (the previous chunk's end), with the
   * tokens of its `prefix + text`; null when nothing beyond `after` fits.
   */
  function findEnd(s: number, after: number): { end: number; cost: number } | null {
    const memo = new Map<number, number>([[s, prefixTokens]]);
    const cost = (e: number): number => {
      let c = memo.get(e);
      if (c === undefined) {
        c = countTokens(prefix + piece(s, e));
        memo.set(e, c);
      }
      return c;
    };
    const fits = (e: number): boolean => cost(e) <= maxTokens;
    const first = upperBound(starts, after);
    let lo = after; // the run fallback's start: fits (checked below), `hi` does not
    let hi = at(starts, first);
    // A word start far beyond a window's worth of text that did not fit is not counted again
    // while it stays far, so a long run cut into many chunks is not tokenized to its end for
    // each of them (once per run: a run may be one token, e.g. WordPiece's [UNK] over 100 chars).
    const far = hi - s > Math.max(64, 8 * textBudget * density);
    const probe = !far || hi !== farMiss;
    if (probe && fits(hi)) {
      const k =
        first +
        largestWithin(
          lastIndex - first + 1,
          cost(hi),
          maxTokens,
          density,
          (i) => at(starts, first + i) - s,
          (d) => upperBound(starts, s + d) - 1 - first,
          (i) => cost(at(starts, first + i)),
        );
      const end = at(starts, k);
      if (k === lastIndex || 2 * cost(end) >= maxTokens) return { end, cost: cost(end) };
      // Less than half full: the next word is a long run; cut inside it instead.
      lo = end;
      hi = at(starts, k + 1);
    } else if (s < after) {
      // With the overlap, not even the next word fits. Unless that word is a run that does not
      // fit a chunk on its own either, start later (less overlap) rather than cut the word.
      if (!fits(after)) return null;
      if (probe && countTokens(prefix + piece(after, hi)) <= maxTokens) return null;
    }
    if (far && lo === after) farMiss = hi;
    const from = lo;
    const end =
      from +
      largestWithin(
        hi - from,
        cost(from),
        maxTokens,
        density,
        (i) => i,
        Math.floor,
        (i) => cost(from + i),
      );
    return end > after ? { end, cost: cost(end) } : null;
  }

  /** Where the chunk after [s, …) starts: about `overlap` tokens before `resume`. */
  function nextStart(s: number, resume: number, overlap: number): number {
    if (overlap === 0) return resume;
    const tail = (x: number): number => countTokens(piece(x, resume));
    const jLo = upperBound(starts, s); // first word start after s
    const jHi = upperBound(starts, resume) - 1; // last word start at or before resume
    const last = at(starts, jHi);
    const lastTail = jHi >= jLo ? (last === resume ? 0 : tail(last)) : Infinity;
    if (lastTail <= overlap) {
      // The earliest word start in (s, resume] whose tail fits the overlap, searched backwards.
      const k = largestWithin(
        jHi - jLo + 1,
        lastTail,
        overlap,
        density,
        (i) => resume - at(starts, jHi - i),
        (d) => jHi - upperBound(starts, Math.ceil(resume - d) - 1),
        (i) => tail(at(starts, jHi - i)),
      );
      return at(starts, jHi - k);
    }
    // The chunk ends in a run without word starts longer than the overlap: cut inside it.
    const lo = jHi >= jLo ? last + 1 : s + 1;
    return (
      resume -
      largestWithin(
        resume - lo + 1,
        0,
        overlap,
        density,
        (i) => i,
        Math.floor,
        (i) => tail(resume - i),
      )
    );
  }

  const chunks: Chunk[] = [];
  const push = (start: number, end: number, cost: number | null): void => {
    const chunkText = piece(start, end);
    const tokenCount = cost !== null && prefix === '' ? cost : countTokens(chunkText);
    chunks.push({ start, end, input: prefix + chunkText, tokenCount });
    density = (end - start) / Math.max(1, tokenCount);
  };

  let start = 0;
  let end: number;
  let resume: number;
  if (firstEnd !== null) {
    end = firstEnd;
    push(0, end, null);
    // Ending inside a word: measure the overlap from that word's start, so the next chunk
    // repeats it whole (unless the "word" is most of the chunk: a run without word starts).
    const wordStart = at(starts, upperBound(starts, end) - 1);
    const inWord =
      wordStart > 0 && 2 * (end - wordStart) <= end && !segmentBoundary(text, at(offsets, end));
    resume = inWord ? wordStart : end;
  } else {
    const first = findEnd(0, 0);
    if (!first)
      throw new RangeError(`maxTokens ${maxTokens} cannot hold the prefix and one character`);
    end = first.end;
    push(0, end, first.cost);
    resume = end;
  }
  while (end < len) {
    // When the overlap leaves no room for the next word, halve it until the word fits.
    let from = start;
    let next: ReturnType<typeof findEnd> = null;
    for (let tokens = overlap; !next; tokens >>= 1) {
      from = nextStart(start, resume, tokens);
      next = findEnd(from, end);
      if (tokens === 0) break;
    }
    if (!next && from < end) {
      from = end;
      next = findEnd(from, end);
    }
    if (!next)
      throw new RangeError(`maxTokens ${maxTokens} cannot hold the prefix and one character`);
    push(from, next.end, next.cost);
    start = from;
    end = next.end;
    resume = end;
  }
  return chunks;
}

/**
 * Word starts in code points, ascending, ending with `len`: the start of every word-like segment
 * and of every other non-blank segment that follows whitespace (or opens the text).
 */
function wordStarts(text: string, len: number): Uint32Array {
  const out: number[] = [];
  let cp = 0;
  let afterBlank = true;
  for (const { segment, isWordLike } of WORDS.segment(text)) {
    const blank = !/\S/u.test(segment);
    if (!blank && (isWordLike === true || afterBlank)) out.push(cp);
    afterBlank = blank;
    cp += codePointLength(segment);
  }
  if (out[out.length - 1] !== len) out.push(len);
  return Uint32Array.from(out);
}

/** Whether UTF-16 `index` of `text` is where a word segmentation segment starts (or the end). */
function segmentBoundary(text: string, index: number): boolean {
  if (index >= text.length) return true;
  return WORDS.segment(text).containing(index)?.index === index;
}

function at(array: Uint32Array, i: number): number {
  return array[i] ?? 0;
}

/** The index of the first element of ascending `array` greater than `x` (its length if none). */
function upperBound(array: Uint32Array, x: number): number {
  let lo = 0;
  let hi = array.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (at(array, mid) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The largest k in [0, n) with `value(k) <= limit`, given `value(0) = v0 <= limit` (n itself is
 * taken not to fit and never evaluated); for a value that is not monotone, a k whose value fits
 * and whose successor's does not. Candidate k lies `dist(k)` code points (increasing) from an
 * anchor, and `kAt(d)` is the largest k with `dist(k) <= d`. Probes are placed by the counts:
 * first where `perToken` code points per token predicts one token over the limit (doubling that
 * reach while no probe has exceeded it), then by interpolation between the bracket's counts;
 * when probes keep landing on one side, they step across by 1, 2, 4, … candidates, so a poor
 * interpolation costs a logarithmic number of probes. A good prediction costs three or four.
 */
function largestWithin(
  n: number,
  v0: number,
  limit: number,
  perToken: number,
  dist: (k: number) => number,
  kAt: (d: number) => number,
  value: (k: number) => number,
): number {
  let lo = 0;
  let lv = v0;
  let hi = n;
  let hv = Infinity; // unknown while `hi` is n
  let grow = 1;
  let side = 0; // 1: the last probe fit, -1: it exceeded the limit
  let streak = 0; // probes in a row on that side
  while (hi - lo > 1) {
    let k: number;
    if (hv === Infinity) {
      k = kAt(dist(lo) + (limit - lv + 1) * perToken * grow);
      grow *= 2;
    } else {
      k = kAt(dist(lo) + ((limit + 0.5 - lv) / (hv - lv)) * (dist(hi) - dist(lo)));
      if (streak >= 2) {
        const step = 2 ** (streak - 2);
        k = side > 0 ? Math.max(k, lo + step) : Math.min(k, hi - step);
      }
    }
    k = Math.min(hi - 1, Math.max(lo + 1, k));
    const v = value(k);
    const now = v <= limit ? 1 : -1;
    streak = now === side ? streak + 1 : 1;
    side = now;
    if (v <= limit) {
      lo = k;
      lv = v;
    } else {
      hi = k;
      hv = v;
    }
  }
  return lo;
}
