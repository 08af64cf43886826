/**
 * Synthetic texts with an exact token count: words drawn (seeded) from the WordPiece vocabulary's
 * whole lowercase words, each of which is one token on its own, so a text of n words is n tokens
 * (plus [CLS]/[SEP] for BERT). Exact lengths make padding zero and FLOP counts exact.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { seededRandom } from './bert.js';
import { POTION, SHARED_MODELS_DIR } from './paths.js';

export type LengthClass = 'short' | 'medium' | 'long';
export const LENGTH_TOKENS: Readonly<Record<LengthClass, number>> = Object.freeze({
  short: 16,
  medium: 64,
  long: 256,
});
export const LENGTH_CLASSES: readonly LengthClass[] = ['short', 'medium', 'long'];

let words: string[] | null = null;

/** Whole words of the potion/BERT uncased vocabulary (3–12 letters a–z). */
export function vocabularyWords(): string[] {
  if (!words) {
    const tokenizer = JSON.parse(
      readFileSync(path.join(SHARED_MODELS_DIR, POTION, 'tokenizer.json'), 'utf8'),
    ) as { model: { vocab: Record<string, number> } };
    words = Object.keys(tokenizer.model.vocab)
      .filter((w) => /^[a-z]{3,12}$/.test(w))
      .sort();
    if (words.length < 1000) throw new Error(`too few vocabulary words (${words.length})`);
  }
  return words;
}

/** A deterministic stream of distinct texts of exactly `tokens` tokens each. */
export class TextSource {
  private readonly random: () => number;
  private readonly words = vocabularyWords();

  constructor(
    readonly tokens: number,
    seed: number,
  ) {
    this.random = seededRandom(seed);
  }

  next(): string {
    const out = new Array<string>(this.tokens);
    for (let i = 0; i < this.tokens; i++) {
      out[i] = this.words[Math.floor(this.random() * this.words.length)] as string;
    }
    return out.join(' ');
  }

  take(n: number): string[] {
    return Array.from({ length: n }, () => this.next());
  }
}

/**
 * `n` real English passages of exactly `chars` code points each, for the long-text ingest: the
 * SciFact corpus's abstracts (title + text, in a seeded order) run together and cut into
 * consecutive pieces, each starting at a word. Real prose has ~4–5 characters per WordPiece
 * token (the synthetic vocabulary words above have ~8), so a 4,000-character passage is ~900
 * tokens: 4–5 windows of all-MiniLM-L6-v2, as a long document of a user's would be.
 */
export function documentTexts(
  corpusDocs: readonly string[],
  n: number,
  chars: number,
  seed = 5,
): string[] {
  const random = seededRandom(seed);
  const order = corpusDocs.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const out: string[] = [];
  let pending: string[] = [];
  for (const i of order) {
    pending.push(...[...(corpusDocs[i] as string).replace(/\s+/g, ' ').trim()], ' ');
    while (pending.length >= chars) {
      const piece = pending.slice(0, chars);
      if (piece[chars - 1] === ' ') piece[chars - 1] = '.';
      out.push(piece.join(''));
      if (out.length === n) return out;
      // The next piece starts at the next word.
      let next = chars;
      while (next < pending.length && pending[next] !== ' ') next++;
      pending = pending.slice(next + 1);
    }
  }
  throw new Error(`the corpus holds fewer than ${n} passages of ${chars} characters`);
}
