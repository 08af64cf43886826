/**
 * The keyword index's terms: how a text becomes the sparse term-frequency vector a point carries,
 * and how a query becomes the terms it looks up. No readable word is ever kept: a term's id is a
 * keyed hash of the normalised word, with a key derived per organisation from a server secret
 * (KEYWORD_INDEX_KEY), so the same word has different ids in different organisations and nothing
 * stored can be read back, or matched against a dictionary, without the key.
 *
 * Analysis (chosen by measurement on the SciFact dev split, see README "Search quality"):
 * 1. Unicode NFKC, then case folding (full folding where JavaScript has it: ß → ss, ς → σ);
 * 2. word segmentation by `Intl.Segmenter` (ICU's rules, with dictionaries for Chinese, Japanese,
 *    Thai, Khmer, Lao and Burmese), keeping word-like segments;
 * 3. Lucene's English stop words removed;
 * 4. Porter's stemmer applied to words of ASCII letters only (other scripts are kept as they are).
 *
 * Scores are BM25 with Anserini's defaults k1 = 0.9, b = 0.4 and Lucene's idf
 * ln(1 + (N − df + 0.5) / (df + 0.5)), which is also Qdrant's IDF modifier.
 */
import { createHmac } from 'node:crypto';
import { stemmer } from 'stemmer';

export const BM25_K1 = 0.9;
export const BM25_B = 0.4;
/** Qdrant's default average text length in terms (QDRANT_KEYWORD_AVG_LENGTH). */
export const DEFAULT_KEYWORD_AVG_LENGTH = 128;

/** Lucene's `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`. */
export const STOP_WORDS: ReadonlySet<string> = new Set(
  (
    'a an and are as at be but by for if in into is it no not of on or such that the their then ' +
    'there these they this to was will with'
  ).split(' '),
);

export interface AnalyzerOptions {
  /** Drop Lucene's English stop words (default true). */
  stopWords?: boolean;
  /** Porter-stem words of ASCII letters (default true). */
  stem?: boolean;
}

const segmenter = new Intl.Segmenter('und', { granularity: 'word' });
const ASCII_WORD = /^[a-z]+$/;

/** NFKC and case folding, as far as JavaScript's case mappings go. */
export function foldCase(text: string): string {
  return text.normalize('NFKC').toUpperCase().toLowerCase().replaceAll('ς', 'σ');
}

/** The terms of a text, in order, repeats kept (a document's length is their count). */
export function analyze(text: string, options: AnalyzerOptions = {}): string[] {
  const stopWords = options.stopWords ?? true;
  const stem = options.stem ?? true;
  const out: string[] = [];
  for (const s of segmenter.segment(foldCase(text))) {
    if (!s.isWordLike) continue;
    const word = s.segment;
    if (stopWords && STOP_WORDS.has(word)) continue;
    out.push(stem && ASCII_WORD.test(word) ? stemmer(word) : word);
  }
  return out;
}

/** A sparse term-frequency vector: unique term ids (ascending), their counts, and the length. */
export interface TermVector {
  ids: Uint32Array;
  tfs: Uint32Array;
  /** Terms in the text, repeats included (BM25's document length). */
  length: number;
}

/** Term counts of a list of terms, as a TermVector under the given id function. */
export function termVector(terms: readonly string[], id: (term: string) => number): TermVector {
  const counts = new Map<number, number>();
  for (const term of terms) {
    const key = id(term);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const ids = Uint32Array.from(counts.keys()).sort();
  const tfs = Uint32Array.from(ids, (key) => counts.get(key) as number);
  return { ids, tfs, length: terms.length };
}

/** Lucene's BM25 idf (Qdrant's IDF modifier): `n` points in the scope, `df` of them hold the term. */
export function bm25Idf(n: number, df: number): number {
  return Math.log(1 + (n - df + 0.5) / (df + 0.5));
}

/** BM25's saturated term frequency for a document of `length` terms (average `avgLength`). */
export function bm25Tf(tf: number, length: number, avgLength: number): number {
  const norm = avgLength > 0 ? length / avgLength : 1;
  return (tf * (BM25_K1 + 1)) / (tf + BM25_K1 * (1 - BM25_B + BM25_B * norm));
}

/** What the service needs of the keyword index's term maker (KeywordTerms). */
export interface TermAnalyzer {
  document(orgId: string, text: string): TermVector;
  query(orgId: string, text: string): TermVector;
}

const KEY_CONTEXT = 'heimdex keyword terms v1\u0000';
const MAX_CACHED_KEYS = 10_000;

/**
 * Turns texts into keyed term vectors for one deployment secret. The per-organisation key is
 * HMAC-SHA256(secret, context ‖ org id); a term's id is the first four bytes (little-endian) of
 * HMAC-SHA256(org key, term). 32-bit ids are what Qdrant's sparse vectors take; two words of one
 * organisation share an id with probability ~n²/2³³ over a vocabulary of n words (a collision
 * merges their postings, it loses nothing).
 */
export class KeywordTerms implements TermAnalyzer {
  private readonly orgKeys = new Map<string, Buffer>();

  constructor(
    private readonly secret: string,
    private readonly options: AnalyzerOptions = {},
  ) {
    if (secret.length < 16) throw new Error('the keyword index key must be at least 16 characters');
  }

  /** The term vector a point of `orgId` with this text is stored with. */
  document(orgId: string, text: string): TermVector {
    return this.vector(orgId, text);
  }

  /** The terms a query of `orgId` looks up (counts weight repeated query terms, as BM25 does). */
  query(orgId: string, text: string): TermVector {
    return this.vector(orgId, text);
  }

  private vector(orgId: string, text: string): TermVector {
    const key = this.orgKey(orgId);
    return termVector(analyze(text, this.options), (term) =>
      createHmac('sha256', key).update(term).digest().readUInt32LE(0),
    );
  }

  private orgKey(orgId: string): Buffer {
    let key = this.orgKeys.get(orgId);
    if (key === undefined) {
      key = createHmac('sha256', this.secret)
        .update(KEY_CONTEXT + orgId)
        .digest();
      if (this.orgKeys.size >= MAX_CACHED_KEYS) this.orgKeys.clear();
      this.orgKeys.set(orgId, key);
    }
    return key;
  }
}
