/**
 * The chunking settings an eval run compares (`--chunking truncate,default,128:16`), and what the
 * ingest's job results say about the corpus under one of them (chunks, texts over the window).
 * Pure: ids and numbers only.
 */
import { ChunkWindows, DEFAULT_CHUNK_OVERLAP_TOKENS } from '../../contract/internal.js';
import type { Chunking } from '../../contract/internal.js';
import { round, summarize } from '../../bench/lib/stats.js';
import type { Summary } from '../../bench/lib/stats.js';

export interface ChunkingSetting {
  /** As written on the command line: `truncate`, `default` or `MAX:OVERLAP`. */
  label: string;
  /** The batch requests' `chunking`; null: none sent (the server's default). */
  request: Chunking | null;
  /** For the organisation's id: `truncate`, `default`, `w128o16`. */
  slug: string;
}

/** `--chunking`'s items: known forms, comma-separated, each once, in the order given. */
export function parseChunkingList(value: string): ChunkingSetting[] {
  const out: ChunkingSetting[] = [];
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const setting = parseChunking(item);
    if (!out.some((s) => s.label === setting.label)) out.push(setting);
  }
  if (out.length === 0) throw new Error('--chunking names no setting');
  return out;
}

export function parseChunking(item: string): ChunkingSetting {
  if (item === 'truncate') return { label: item, request: 'truncate', slug: item };
  if (item === 'default') return { label: item, request: null, slug: item };
  const m = /^(\d+):(\d+)$/.exec(item);
  const parsed = m
    ? ChunkWindows.safeParse({ max_tokens: Number(m[1]), overlap_tokens: Number(m[2]) })
    : null;
  if (!m || !parsed?.success) {
    const why = parsed?.error?.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ');
    throw new Error(
      `--chunking: "${item}" is not truncate, default or MAX:OVERLAP (whole numbers of tokens)${why ? `: ${why}` : ''}`,
    );
  }
  const { max_tokens, overlap_tokens } = parsed.data;
  return { label: item, request: parsed.data, slug: `w${max_tokens}o${overlap_tokens}` };
}

/** "truncate (the first window only)" and the like, for reports. */
export function describeChunking(s: ChunkingSetting): string {
  if (s.request === 'truncate') return "truncate (each text's first window only)";
  if (s.request === null) {
    return `default (no chunking field sent: the server's default, windows of the model's size overlapping by ${DEFAULT_CHUNK_OVERLAP_TOKENS} tokens)`;
  }
  return `windows of ${String(s.request.max_tokens)} tokens overlapping by ${String(s.request.overlap_tokens)}`;
}

/** How a result document names a setting. */
export interface SettingRecord {
  /** As `--chunking` named it: `truncate`, `default`, `128:16`. */
  label: string;
  /** The batch requests' `chunking` field; null: none sent (the server's default). */
  request: Chunking | null;
  description: string;
}

export function settingRecord(s: ChunkingSetting): SettingRecord {
  return { label: s.label, request: s.request, description: describeChunking(s) };
}

/** The fields of a SUCCEEDED job's `result` that these figures read. */
export interface JobResultFields {
  token_count: number;
  truncated: boolean;
  /** Absent from results written before texts were chunked. */
  chunk_count?: number | undefined;
}

/** The corpus under one chunking setting, from its jobs' results. */
export interface ChunkStats {
  /** Succeeded jobs whose result was read. */
  texts: number;
  /** Points written: the sum of `chunk_count`. */
  chunks: number;
  /** Results without `chunk_count` (counted as one chunk each; should be 0). */
  chunkCountMissing: number;
  /** Texts of more than one chunk. */
  multiChunk: number;
  /** Texts the model saw only the first window of (`truncated`: the truncate setting). */
  truncated: number;
  /**
   * Model tokens the model's window holds for text (its special tokens excluded), null when the
   * model is not in the registry.
   */
  window: number | null;
  /** Texts of more tokens than `window` (`token_count`; instruction prefixes not counted). */
  overWindow: number | null;
  /** Model tokens per text (`token_count`, special tokens excluded). */
  tokens: Summary;
  /** Chunks per text. */
  chunksPerText: { mean: number; max: number };
}

export function summarizeJobResults(
  results: readonly JobResultFields[],
  window: number | null,
): ChunkStats {
  let chunks = 0;
  let chunkCountMissing = 0;
  let multiChunk = 0;
  let maxChunks = 0;
  for (const r of results) {
    const n = r.chunk_count ?? 1;
    if (r.chunk_count === undefined) chunkCountMissing++;
    chunks += n;
    if (n > 1) multiChunk++;
    maxChunks = Math.max(maxChunks, n);
  }
  const tokens = summarize(results.map((r) => r.token_count));
  return {
    texts: results.length,
    chunks,
    chunkCountMissing,
    multiChunk,
    truncated: results.filter((r) => r.truncated).length,
    window,
    overWindow: window === null ? null : results.filter((r) => r.token_count > window).length,
    tokens: { ...tokens, mean: round(tokens.mean) },
    chunksPerText: {
      mean: results.length > 0 ? round(chunks / results.length) : NaN,
      max: maxChunks,
    },
  };
}
