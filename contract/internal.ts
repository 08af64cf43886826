/**
 * The Worker ↔ embedder wire, written once: every /internal request and response, the point
 * payload and the search filters, as zod schemas with the types inferred from them. The embedder
 * validates requests with these; the Worker's EmbedderClient validates responses with them.
 * Field names are snake_case here (the wire format); each service maps them to its own domain
 * types at its edge.
 */
import { z } from 'zod';
import { Id, ModelName, ModelVer, PointId, Text } from './rules.js';

/**
 * The form of what a job writes: per chunk of the text, the dense vector, and on the first chunk
 * the keyword index's term vector of the whole text (v3; v2 put each chunk's own terms on it, v1
 * wrote one point per text, truncated). It is part of every job key, so when it changes an
 * identical resubmission is a new job that writes the segment again in the new form (the way
 * points written before the keyword index or chunking join them).
 */
export const POINT_FORMAT = 'dense+keyword+chunks-v3';

/** Items in one POST /internal/embed. */
export const MAX_EMBED_ITEMS = 512;
/** Most search results (the public `limit`'s bound too). */
export const MAX_SEARCH_LIMIT = 100;
/** Most ids in one any-of filter. */
export const MAX_FILTER_IDS = 100;

const count = z.int().nonnegative();

// ---------------------------------------------------------------- chunking

/** Bounds of a chunk's size in model tokens (a model's own window may be smaller: it caps). */
export const MIN_CHUNK_TOKENS = 16;
export const MAX_CHUNK_TOKENS = 512;

/**
 * How a text longer than the model's window is embedded: `"truncate"` embeds its first window
 * only (one point); windows (the default) split it into chunks of at most `max_tokens` model
 * tokens (default and cap: the model's window) overlapping by `overlap_tokens`, one point each.
 */
export const ChunkWindows = z
  .strictObject({
    max_tokens: z.int().min(MIN_CHUNK_TOKENS).max(MAX_CHUNK_TOKENS).optional(),
    overlap_tokens: z
      .int()
      .min(0)
      .max(MAX_CHUNK_TOKENS - 1)
      .optional(),
  })
  .refine(
    (c) => c.overlap_tokens === undefined || c.overlap_tokens < (c.max_tokens ?? MAX_CHUNK_TOKENS),
    { message: 'must be less than max_tokens', path: ['overlap_tokens'] },
  );
export const Chunking = z.union([z.literal('truncate'), ChunkWindows]);
export type Chunking = z.infer<typeof Chunking>;

/**
 * Overlap between consecutive chunks when a request names none, in model tokens. Chosen by
 * measurement (README "Search quality": chunked against truncated on the SciFact dev split).
 */
export const DEFAULT_CHUNK_OVERLAP_TOKENS = 32;

/** How search results count: one per segment (its best chunk), or every matching chunk. */
export const GROUP_BY = ['segment', 'chunk'] as const;
export const GroupBy = z.enum(GROUP_BY);
export type GroupBy = z.infer<typeof GroupBy>;

// ---------------------------------------------------------------- the point payload

/** Stored with every vector and returned by search: exactly these fields, never the text. */
export const PointPayload = z.object({
  org_id: z.string(),
  asset_id: z.string(),
  segment_id: z.string(),
  modality: z.literal('text'),
  model: z.string(),
  model_ver: z.string(),
  /** Length of the submitted text in Unicode code points. */
  text_len: count,
  /** The model's tokens the vector was computed from (special tokens included). */
  token_count: count,
  truncated: z.boolean(),
  /** Code points of the text that reached the model (= text_len unless truncated). */
  truncated_len: count,
  /**
   * The segment's point id (contract/ids.ts `pointId`): its first chunk's id, shared by all of
   * its chunks. Deletes and search grouping go by it.
   */
  segment_point_id: z.string(),
  /** This chunk's place among the segment's chunks (0 for a text that fits the window). */
  chunk_index: count,
  chunk_count: z.int().positive(),
  /** The chunk's code points in the submitted text: [chunk_start, chunk_end). */
  chunk_start: count,
  chunk_end: count,
  job_id: z.string(),
  /** The job's sequence number: a write lands only when no newer seq is stored for the point. */
  seq: z.int().nonnegative(),
  /** ISO 8601 time the vector was computed. */
  embedded_at: z.string(),
});
export type PointPayload = z.infer<typeof PointPayload>;

export const PAYLOAD_FIELDS = Object.keys(PointPayload.shape) as Array<keyof PointPayload>;

// ---------------------------------------------------------------- POST /internal/embed

export const EmbedItem = z.strictObject({
  job_id: z.uuid(),
  /** The job's sequence number from Postgres; the highest seq of a point wins. */
  seq: z.int().positive(),
  org_id: Id,
  asset_id: Id,
  segment_id: Id,
  text: Text,
  model: ModelName,
  model_ver: ModelVer,
  /** Default: windows of the model's size, DEFAULT_CHUNK_OVERLAP_TOKENS apart. */
  chunking: Chunking.optional(),
});
export type EmbedItem = z.infer<typeof EmbedItem>;

export const EmbedRequest = z.strictObject({
  items: z.array(EmbedItem).min(1).max(MAX_EMBED_ITEMS),
});
export type EmbedRequest = z.infer<typeof EmbedRequest>;

export const ITEM_ERROR_CODES = [
  'unknown_model',
  'model_unavailable',
  'empty_embedding',
  'invalid_embedding',
  'injected_fault',
] as const;
export type ItemErrorCode = (typeof ITEM_ERROR_CODES)[number];

/** What a successful job reports (the Worker stores it as the job's `result`). No text. */
export const EmbedSuccess = z.object({
  /** The segment's point id (its first chunk's). */
  point_id: PointId,
  /** Points the text was written as (1 unless chunked). */
  chunk_count: z.int().positive(),
  /** False when a newer seq is already stored for the point (latest wins; not an error). */
  applied: z.boolean(),
  text_len: count,
  token_count: count,
  truncated: z.boolean(),
  truncated_len: count,
  /** The model and version that made the vector (a batch may mix models). */
  model: z.string(),
  model_ver: z.string(),
});
export type EmbedSuccess = z.infer<typeof EmbedSuccess>;

export const EmbedItemResult = z.discriminatedUnion('status', [
  EmbedSuccess.extend({ job_id: z.uuid(), status: z.literal('ok') }),
  z.object({
    job_id: z.uuid(),
    status: z.literal('error'),
    code: z.enum(ITEM_ERROR_CODES),
    retryable: z.boolean(),
    message: z.string(),
  }),
]);
export type EmbedItemResult = z.infer<typeof EmbedItemResult>;

export const EmbedResponse = z.object({
  results: z.array(EmbedItemResult),
  /** The items' model when they all name one; else the default model. */
  model: z.string(),
  model_ver: z.string(),
});
export type EmbedResponse = z.infer<typeof EmbedResponse>;

// ---------------------------------------------------------------- POST /internal/search

/** Conditions on the non-sensitive payload; all must hold. Applied by the store, server-side. */
export const SearchFilters = z.strictObject({
  /** Any of these assets. */
  asset_ids: z.array(Id).min(1).max(MAX_FILTER_IDS).optional(),
  /** Any of these segments. */
  segment_ids: z.array(Id).min(1).max(MAX_FILTER_IDS).optional(),
  /** Only texts that were (or were not) truncated to the model window. */
  truncated: z.boolean().optional(),
  /** Embedded at or after this instant (ISO 8601). */
  embedded_after: z.iso.datetime({ offset: true }).optional(),
  /** Embedded strictly before this instant (ISO 8601). */
  embedded_before: z.iso.datetime({ offset: true }).optional(),
});
export type SearchFilters = z.infer<typeof SearchFilters>;

/** The rankings a search can use: vectors, the keyword index (BM25), or both fused. */
export const SEARCH_MODES = ['dense', 'keyword', 'hybrid'] as const;
export const SearchMode = z.enum(SEARCH_MODES);
export type SearchMode = z.infer<typeof SearchMode>;

/**
 * The mode of a search that names none: hybrid measured best on the SciFact dev split (README
 * "Search quality": above both dense and keyword).
 */
export const DEFAULT_SEARCH_MODE: SearchMode = 'hybrid';

/**
 * How hybrid search fuses its dense and keyword rankings, both as Qdrant computes them:
 * - `dbsf` (distribution-based score fusion, the default): each ranking's scores mapped by its
 *   mean ± 3 standard deviations onto [0, 1] and summed, weighted 2·weight (dense) and
 *   2·(1 − weight) (keyword). Scores, not just ranks, count: one decisive match (a rare name, a
 *   code) outweighs many middling ones.
 * - `rrf` (reciprocal rank fusion): a hit at rank r (from 1) of a ranking with weight w adds
 *   1 / (r / w + k − 1), with the same weights.
 * `weight` is the dense ranking's share in [0, 1]; `k` is RRF's alone (refused with `dbsf`).
 */
export const FUSION_METHODS = ['dbsf', 'rrf'] as const;
export const FusionMethod = z.enum(FUSION_METHODS);
export type FusionMethod = z.infer<typeof FusionMethod>;
/** The method of a hybrid search that names none (DEFAULT_DBSF below: why). */
export const DEFAULT_FUSION_METHOD: FusionMethod = 'dbsf';

export const Fusion = z
  .strictObject({
    /** Default DEFAULT_FUSION_METHOD. */
    method: FusionMethod.optional(),
    /** RRF's k: larger flattens the rank differences. RRF only. */
    k: z.int().min(1).max(1000).optional(),
    /** The dense ranking's share in [0, 1]; 0.5 weighs both alike. */
    weight: z.number().min(0).max(1).optional(),
  })
  .superRefine(refuseKWithoutRrf);
export type Fusion = z.infer<typeof Fusion>;

/** `k` is RRF's alone: an issue at `k` when the method (given or default) is another. */
export function refuseKWithoutRrf(
  f: { method?: FusionMethod | undefined; k?: number | undefined },
  ctx: { addIssue(issue: { code: 'custom'; path: string[]; message: string }): void },
): void {
  if (f.k !== undefined && (f.method ?? DEFAULT_FUSION_METHOD) !== 'rrf') {
    ctx.addIssue({
      code: 'custom',
      path: ['k'],
      message: 'k is reciprocal rank fusion\'s parameter: send it with method "rrf"',
    });
  }
}

/**
 * The fusion defaults, chosen by measurement on the SciFact train split with all-MiniLM-L6-v2
 * (README "Search quality"): DBSF at equal weights (nDCG@10 0.7347 offline against RRF's 0.7299,
 * and 79 of 100 needles first against 53: eval/fusion-lab.ts); RRF's own best, should a request
 * ask for it, of k ∈ {10, 30, 60, 100} × weight ∈ {0.3, 0.5, 0.7}: k 10, weight 0.7
 * (eval/results/2026-12-01-scifact-minilm-l6-v2-modes.md).
 */
export const DEFAULT_DBSF = { method: 'dbsf', weight: 0.5 } as const;
export const DEFAULT_RRF = { method: 'rrf', k: 10, weight: 0.7 } as const;

/**
 * A fusion with every setting filled in (what a hybrid search runs with). `k` is RRF's; DBSF
 * carries RRF's default and ignores it.
 */
export interface ResolvedFusion {
  method: FusionMethod;
  k: number;
  weight: number;
}

/** The fusion a hybrid search runs with: the request's settings over its method's defaults. */
export function resolveFusion(requested: Fusion | undefined): ResolvedFusion {
  const method = requested?.method ?? DEFAULT_FUSION_METHOD;
  const defaults = method === 'rrf' ? DEFAULT_RRF : DEFAULT_DBSF;
  return {
    method,
    k: requested?.k ?? DEFAULT_RRF.k,
    weight: requested?.weight ?? defaults.weight,
  };
}

/** The fusion of a hybrid search that names none. */
export const DEFAULT_FUSION: ResolvedFusion = resolveFusion(undefined);

export const SearchRequest = z.strictObject({
  org_id: Id,
  query_text: Text,
  limit: z.int().min(1).max(MAX_SEARCH_LIMIT).default(10),
  /** Default DEFAULT_SEARCH_MODE. */
  mode: SearchMode.optional(),
  /** Hybrid mode only. */
  fusion: Fusion.optional(),
  /** Add each hit's rank and score in the dense and keyword rankings. */
  explain: z.boolean().optional(),
  /** Default `segment`: one result per segment, its best chunk. */
  group_by: GroupBy.optional(),
  asset_id: Id.optional(),
  segment_id: Id.optional(),
  model: ModelName.optional(),
  filters: SearchFilters.optional(),
});
export type SearchRequest = z.input<typeof SearchRequest>;

/** A hit's place in one ranking: rank from 1, and that ranking's score. */
export const RankInfo = z.object({ rank: z.int().positive(), score: z.number() });
export type RankInfo = z.infer<typeof RankInfo>;

export const SearchHit = z.object({
  point_id: PointId,
  /** Dense: cosine similarity in [-1, 1]; keyword: BM25; hybrid: the fused RRF score. */
  score: z.number(),
  payload: PointPayload,
  /** With `explain`: the hit's place in each ranking (null where that ranking did not hold it). */
  explain: z.object({ dense: RankInfo.nullable(), keyword: RankInfo.nullable() }).optional(),
});
export type SearchHit = z.infer<typeof SearchHit>;

export const SearchResponse = z.object({
  results: z.array(SearchHit),
  /**
   * The mode used: the requested one, except that a hybrid search of a store without a keyword
   * index (a Qdrant collection created before it) answers with the dense ranking.
   */
  mode: SearchMode,
  query_model: z.string(),
  query_model_ver: z.string(),
  total: count,
});
export type SearchResponse = z.infer<typeof SearchResponse>;

// ---------------------------------------------------------------- POST /internal/delete

export const DeleteRequest = z
  .strictObject({
    org_id: Id,
    point_id: PointId.optional(),
    asset_id: Id.optional(),
  })
  .refine((b) => (b.point_id === undefined) !== (b.asset_id === undefined), {
    message: 'exactly one of point_id or asset_id is required',
    path: ['point_id'],
  });
export type DeleteRequest = { org_id: string } & (
  { point_id: string; asset_id?: undefined } | { asset_id: string; point_id?: undefined }
);

export const DeleteResponse = z.object({ deleted: count });
export type DeleteResponse = z.infer<typeof DeleteResponse>;

// ---------------------------------------------------------------- GET /internal/models

export const ModelsResponse = z.object({
  default_model: z.string(),
  models: z.array(z.object({ name: z.string(), model_ver: z.string() })),
});
export type ModelsResponse = z.infer<typeof ModelsResponse>;
