/**
 * An embedding backend: what the serving path (core/models.ts, core/service.ts,
 * core/embeddings.ts, core/batcher.ts, server.ts) needs of a model. EMBEDDING_BACKEND picks it:
 * `local` runs the model in this process (core/model.ts, transformers.js), `openai` calls any
 * OpenAI-compatible `/v1/embeddings` server (core/remote-embedding.ts). Both tokenize here (the
 * model's own tokenizer, or a documented approximation), so chunking, truncation reports and the
 * batcher's budget work the same way for either.
 */
import type { Chunking } from '../../../contract/internal.js';
import type { BatchBackend, BatchLimits } from './batcher.js';
import type { ChunkEncoding, EmbedKind, Encoding } from './tokenization.js';

export interface EmbeddingBackend extends BatchBackend {
  /** The served name (EMBEDDING_MODEL_NAME or one of EMBEDDING_MODELS). */
  readonly name: string;
  /** EMBEDDING_MODEL_VER. */
  readonly version: string;
  /** Human-readable origin for logs: a Hub id, a folder, or a server's URL. */
  readonly source: string;
  /** Dimension of the vectors, measured at load. */
  readonly dim: number;
  /** The window in tokens, special tokens included. */
  readonly maxTokens: number;
  readonly ready: boolean;
  /**
   * How the batcher sizes this backend's passes, where it differs from EMBEDDER_MAX_BATCH_* and
   * one pass at a time (a remote server: its batch size, several calls at once).
   */
  readonly passLimits?: Partial<BatchLimits>;
  /** The text cut to the window, for `kind` (with its instruction prefix). */
  tokenize(text: string, kind: EmbedKind): Encoding;
  /** A passage's chunks (or its first window with `"truncate"`). */
  tokenizeChunks(text: string, chunking: Chunking | undefined): ChunkEncoding[];
  /** One pooled, un-normalised vector per encoding, in order. */
  infer(batch: readonly Encoding[]): Promise<Float32Array[]>;
  dispose(): Promise<void>;
}
