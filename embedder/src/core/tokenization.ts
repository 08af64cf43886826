/**
 * Tokenization for embedding, shared by every embedding backend (core/backend.ts): a text cut to
 * the model's window in its tokens (core/truncate.ts), or split into overlapping token windows
 * (core/chunking.ts), with the exact string that goes to the model kept beside its token ids, so
 * that a local model infers the ids and a remote server (core/remote-embedding.ts) is sent the
 * string.
 *
 * Two kinds of tokenizer stand behind it:
 * - the model's own (transformers.js): token counts, truncation and chunk offsets are exact;
 * - `byteTokenizer`, for a remote model Heimdex has no tokenizer of (OpenAI's
 *   text-embedding-3-*, …): one "token" per UTF-8 byte. Every subword tokenizer in use (byte-level
 *   BPE, WordPiece, SentencePiece/Unigram) spends at least one byte of text per token, so the byte
 *   count is an upper bound on the server's count: a text cut to the window in bytes always fits
 *   the server's window, and `truncated` is never reported for a text the server would have kept
 *   whole… but a text may be cut (and chunks are smaller) where the server would have fit more.
 */
import { DEFAULT_CHUNK_OVERLAP_TOKENS } from '../../../contract/internal.js';
import type { Chunking } from '../../../contract/internal.js';
import { splitIntoChunks } from './chunking.js';
import { fitToWindow } from './truncate.js';
import type { TextStats } from './truncate.js';

export type EmbedKind = 'passage' | 'query';

/**
 * A text tokenized once, ready for the model: the token ids of exactly what gets embedded
 * (instruction prefix and, when the text is longer than the window, its longest fitting prefix;
 * special tokens included), that string itself, and the per-item truncation facts.
 */
export interface Encoding {
  /** Token ids (special tokens included); empty for an approximation (see `tokens`). */
  ids: readonly number[];
  /**
   * Tokens of the input, special tokens included, when `ids` does not list them (the byte
   * approximation); the batcher's token budget counts this, else `ids.length`.
   */
  tokens?: number;
  /** Segment ids, for tokenizers that produce them (BERT); null otherwise. */
  typeIds: readonly number[] | null;
  /**
   * The exact string the ids encode (prefix + the fitted text, or the chunk's text): what a
   * remote backend sends. Absent on pair encodings (the reranker's), which are never sent as one.
   */
  input?: string;
  stats: TextStats;
}

/** A chunk's place in its text: index among `count`, code points [start, end). */
export interface ChunkPlace {
  index: number;
  count: number;
  start: number;
  end: number;
}

/** One chunk of a passage, tokenized; `stats` describe the whole text. */
export interface ChunkEncoding extends Encoding {
  chunk: ChunkPlace;
}

/** What a tokenizer gives for one string. */
export interface TokenizedString {
  /** Ids with the special tokens the model adds; empty for an approximation. */
  ids: readonly number[];
  typeIds: readonly number[] | null;
  /** Tokens, special tokens included (`ids.length` when there are ids). */
  count: number;
}

/** The tokenizer behind a TextTokenizer. */
export interface TokenizerFunctions {
  /** The string's ids as the model gets them (special tokens included). */
  withSpecialTokens(text: string): TokenizedString;
  /**
   * The string's ids without special tokens, for cuts where the reference tokenizer cuts;
   * null for an approximation (cuts then follow the word rule of core/chunking.ts).
   */
  encode: ((text: string) => readonly number[]) | null;
  /** Special tokens `withSpecialTokens` adds to every string ([CLS]/[SEP] …). */
  specialTokens: number;
}

export interface TextTokenizerOptions {
  /** The model window in tokens, special tokens included. */
  maxTokens: number;
  queryPrefix: string;
  passagePrefix: string;
}

/** Tokenization with truncation and chunking in a model's tokens. */
export class TextTokenizer {
  constructor(
    private readonly fns: TokenizerFunctions,
    private readonly options: TextTokenizerOptions,
  ) {}

  /** The model window in tokens, special tokens included. */
  get maxTokens(): number {
    return this.options.maxTokens;
  }

  /** Tokens of the window left for text (and prefix): the window less the special tokens. */
  get budget(): number {
    return this.options.maxTokens - this.fns.specialTokens;
  }

  /**
   * Tokenizes a text for `kind` (search query or ingested passage), truncated to the model window.
   * The truncation search already tokenizes what it measures; the encoding of the final input is
   * reused rather than computed again, so a text that fits is tokenized exactly once.
   * A text with no tokens (blank) has `stats.token_count === 0` and must not be inferred.
   */
  tokenize(text: string, kind: EmbedKind): Encoding {
    const prefix = kind === 'query' ? this.options.queryPrefix : this.options.passagePrefix;
    const { countTokens, encoded } = this.memo();
    const fitted = fitToWindow(text, {
      countTokens,
      budget: this.budget,
      prefix,
      // Cut where sentence-transformers truncates: the window's first tokens, never mid-piece.
      ...(this.fns.encode ? { encode: this.fns.encode } : {}),
    });
    const e = encoded(fitted.input);
    return { ...encodingOf(e), input: fitted.input, stats: fitted.stats };
  }

  /**
   * A passage tokenized for storage, chunk by chunk (core/chunking.ts). `"truncate"` gives the
   * one encoding `tokenize` gives (the text's first window). Windows (the default: the model's
   * whole budget, DEFAULT_CHUNK_OVERLAP_TOKENS of overlap) give one encoding per chunk of at most
   * `max_tokens` tokens (capped at the model's window minus its special tokens); a text that fits
   * is one chunk, tokenized exactly as `tokenize` does, and the first chunk of a longer one is
   * the window `tokenize` would keep, so a text's first point is what truncation made.
   */
  tokenizeChunks(text: string, chunking: Chunking | undefined): ChunkEncoding[] {
    if (chunking === 'truncate') {
      const e = this.tokenize(text, 'passage');
      return [{ ...e, chunk: { index: 0, count: 1, start: 0, end: e.stats.truncated_len } }];
    }
    const budget = this.budget;
    const maxTokens = Math.min(chunking?.max_tokens ?? budget, budget);
    const overlapTokens = Math.min(
      chunking?.overlap_tokens ?? DEFAULT_CHUNK_OVERLAP_TOKENS,
      maxTokens - 1,
    );
    const { countTokens, encoded } = this.memo();
    const chunks = splitIntoChunks(text, {
      countTokens,
      ...(this.fns.encode ? { encode: this.fns.encode } : {}),
      maxTokens,
      overlapTokens,
      prefix: this.options.passagePrefix,
    });
    const textLen = chunks.at(-1)?.end ?? 0;
    const stats: TextStats = {
      text_len: textLen,
      token_count: countTokens(text),
      truncated: false,
      truncated_len: textLen,
    };
    return chunks.map((c, index) => {
      const e = encoded(c.input);
      return {
        ...encodingOf(e),
        input: c.input,
        stats,
        chunk: { index, count: chunks.length, start: c.start, end: c.end },
      };
    });
  }

  /** A token counter that remembers each string's encoding (the final input is reused). */
  private memo() {
    const seen = new Map<string, TokenizedString>();
    const encoded = (s: string): TokenizedString => {
      let out = seen.get(s);
      if (!out) {
        out = this.fns.withSpecialTokens(s);
        seen.set(s, out);
      }
      return out;
    };
    const countTokens = (s: string): number => encoded(s).count - this.fns.specialTokens;
    return { countTokens, encoded };
  }
}

/** An Encoding's token fields: the ids, or (for an approximation) only their count. */
function encodingOf(e: TokenizedString): Pick<Encoding, 'ids' | 'typeIds' | 'tokens'> {
  return e.ids.length === e.count
    ? { ids: e.ids, typeIds: e.typeIds }
    : { ids: e.ids, typeIds: e.typeIds, tokens: e.count };
}

const NO_IDS: readonly number[] = Object.freeze([]);

/**
 * The approximation for a model without a local tokenizer: one token per UTF-8 byte (an upper
 * bound on any subword tokenizer's count; see the module comment), no special tokens (the
 * window given to TextTokenizer is the server's less the tokens it adds).
 */
export const byteTokenizer: TokenizerFunctions = {
  withSpecialTokens: (text) => ({ ids: NO_IDS, typeIds: null, count: Buffer.byteLength(text) }),
  encode: null,
  specialTokens: 0,
};
