import { createRoute, z } from '@hono/zod-openapi';
import {
  DEFAULT_DBSF,
  DEFAULT_FUSION_METHOD,
  DEFAULT_RRF,
  DEFAULT_SEARCH_MODE,
  FUSION_METHODS,
  refuseKWithoutRrf,
  GROUP_BY,
  PointPayload,
  SEARCH_MODES,
} from '../../../contract/internal';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { MAX_FILTER_IDS, MAX_SEARCH_LIMIT } from '../limits';
import type { AppBindings } from '../middleware/context';
import {
  AUTH_ERRORS,
  BODY_ERRORS,
  Id,
  ModelName,
  Text,
  checkTextLength,
  errorResponses,
  documented,
  fromEmbedder,
  jsonBody,
  json,
  AUTHENTICATED,
} from './common';

/** Conditions on the non-sensitive payload; all must hold. Applied by the store, server-side. */
export const SearchFilters = z
  .object({
    asset_ids: z
      .array(Id)
      .min(1)
      .max(MAX_FILTER_IDS)
      .optional()
      .openapi({ description: 'any of these assets' }),
    segment_ids: z
      .array(Id)
      .min(1)
      .max(MAX_FILTER_IDS)
      .optional()
      .openapi({ description: 'any of these segments' }),
    truncated: z
      .boolean()
      .optional()
      .openapi({ description: 'only texts that were (or were not) truncated to the model window' }),
    embedded_after: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: 'embedded at or after this instant (ISO 8601)' }),
    embedded_before: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: 'embedded strictly before this instant (ISO 8601)' }),
  })
  .strict()
  .openapi('SearchFilters');

export const Fusion = z
  .object({
    method: z
      .enum(FUSION_METHODS)
      .optional()
      .openapi({
        description: `dbsf (distribution-based score fusion${DEFAULT_FUSION_METHOD === 'dbsf' ? ', the default' : ''}): each ranking's scores mapped by their mean ± 3 standard deviations onto [0, 1] and summed, weighted, so one decisive match (a rare name, a code) counts for how far it stands out; rrf (reciprocal rank fusion${DEFAULT_FUSION_METHOD === 'rrf' ? ', the default' : ''}): ranks only`,
        default: DEFAULT_FUSION_METHOD,
      }),
    k: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .openapi({
        description: `reciprocal rank fusion's k, with method "rrf" only (default ${DEFAULT_RRF.k}): a hit at rank r of a ranking adds weight / (r + (k − 1)·weight); larger k flattens the rank differences`,
      }),
    weight: z
      .number()
      .min(0)
      .max(1)
      .optional()
      .openapi({
        description: `the dense ranking's share in [0, 1] (default ${DEFAULT_DBSF.weight} for dbsf, ${DEFAULT_RRF.weight} for rrf; 0.5 weighs both alike): the rankings weigh 2·weight (dense) and 2·(1 − weight) (keyword)`,
      }),
  })
  .strict()
  .superRefine(refuseKWithoutRrf)
  .openapi('Fusion', {
    description:
      'How hybrid mode fuses its two rankings (both methods as Qdrant computes them). Only with mode "hybrid" (the default mode); with another mode it is refused (400 naming `fusion`).',
  });

export const SearchRequest = z
  .object({
    query_text: Text.openapi({ example: 'A big hairy canine is jogging outdoors' }),
    limit: z.number().int().min(1).max(MAX_SEARCH_LIMIT).default(10),
    mode: z
      .enum(SEARCH_MODES)
      .optional()
      .openapi({
        description: `dense: nearest vectors (meaning); keyword: BM25 over the texts' words (exact terms, codes, names); hybrid: both, fused (distribution-based score fusion by default, or reciprocal rank fusion). Default ${DEFAULT_SEARCH_MODE}, which measures best.`,
        default: DEFAULT_SEARCH_MODE,
      }),
    fusion: Fusion.optional(),
    explain: z.boolean().optional().openapi({
      description: "add each result's rank and score in the dense and keyword rankings",
    }),
    group_by: z
      .enum(GROUP_BY)
      .optional()
      .openapi({
        description:
          'segment (the default): one result per segment, scored and placed by its best chunk ' +
          "(its `chunk_*` fields say which), with the segment's point id; chunk: every matching " +
          'chunk is a result of its own, with its own point id (`payload.segment_point_id` names ' +
          'its segment). A text that fits the model window is one chunk: both answer alike.',
        default: 'segment',
      }),
    asset_id: Id.optional(),
    segment_id: Id.optional(),
    model: ModelName.optional(),
    filters: SearchFilters.optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if (body.fusion !== undefined && (body.mode ?? DEFAULT_SEARCH_MODE) !== 'hybrid') {
      ctx.addIssue({
        code: 'custom',
        path: ['fusion'],
        message: 'applies to mode "hybrid" only',
      });
    }
  })
  .openapi('SearchRequest');

/** A result's rank (from 1) and score in one ranking, or null (inline: nullable per field). */
const rankInfo = (ranking: string) =>
  z
    .object({ rank: z.number().int().positive(), score: z.number() })
    .nullable()
    .openapi({
      description: `the result's rank (from 1) and score in the ${ranking} ranking; null where that ranking did not return it`,
    });

/** The stored point payload as clients see it (contract/internal.ts, less the store's `seq`). */
export const SearchPayload = documented(PointPayload.omit({ seq: true })).openapi('PointPayload', {
  description:
    "A point's non-sensitive metadata (never the text). A segment's text longer than the model's " +
    'window is stored as `chunk_count` chunks: this one is chunk `chunk_index` (from 0), the ' +
    "text's characters (code points) [`chunk_start`, `chunk_end`). `segment_point_id` is the " +
    "segment's point id (its first chunk's; the job's `result.point_id`): what DELETE " +
    "/vectors/points/{point_id} takes to delete the segment. `text_len`: the whole text's " +
    "length; `token_count`, `truncated` and `truncated_len`: this chunk's (truncated only with " +
    'chunking "truncate").',
});

export const SearchResponse = z
  .object({
    results: z.array(
      z.object({
        point_id: z.uuid().openapi({
          description:
            "group_by segment (the default): the segment's point id (= payload.segment_point_id); " +
            "group_by chunk: the chunk's own point id",
        }),
        score: z.number().openapi({
          description:
            "the mode's score, best first: cosine similarity in [-1, 1] (dense), BM25 (keyword), the fused score (hybrid)",
        }),
        payload: SearchPayload,
        explain: z
          .object({ dense: rankInfo('dense'), keyword: rankInfo('keyword') })
          .optional()
          .openapi({
            description:
              'with explain: the rank and score in each ranking, null where that ranking did not return the result',
          }),
      }),
    ),
    mode: z.enum(SEARCH_MODES).openapi({
      description:
        'the mode used: the requested one, except that hybrid answers with the dense ranking where the vector store has no keyword index',
    }),
    query_model: z.string(),
    query_model_ver: z.string(),
    total: z.number().int(),
  })
  .openapi('SearchResponse');

export const searchRoute = createRoute({
  method: 'post',
  path: '/vectors/search',
  operationId: 'search',
  tags: ['vectors'],
  summary: "Natural-language search over the caller's organisation",
  ...AUTHENTICATED,
  request: jsonBody(SearchRequest),
  responses: {
    200: json('Ranked results, best first', SearchResponse),
    ...errorResponses([...AUTH_ERRORS, ...BODY_ERRORS, 'unprocessable', 'dependency_unavailable']),
  },
});

export function registerSearch(app: OpenAPIHono<AppBindings>): void {
  app.openapi(searchRoute, async (c) => {
    const body = c.req.valid('json');
    const { config, auth } = c.var;
    checkTextLength(body.query_text, config.maxTextChars, 'query_text');
    const started = Date.now();
    const res = await fromEmbedder(
      c.var.embedder().search({
        org_id: auth.orgId,
        query_text: body.query_text,
        limit: body.limit,
        asset_id: body.asset_id,
        segment_id: body.segment_id,
        model: body.model ?? config.model.name,
        ...(body.filters === undefined ? {} : { filters: body.filters }),
        ...(body.mode === undefined ? {} : { mode: body.mode }),
        ...(body.fusion === undefined ? {} : { fusion: body.fusion }),
        ...(body.explain === undefined ? {} : { explain: body.explain }),
        ...(body.group_by === undefined ? {} : { group_by: body.group_by }),
      }),
    );
    c.header('server-timing', `embedder;dur=${Date.now() - started}`, { append: true });
    // Parse the embedder's answer with the public schema: unknown payload fields are stripped,
    // so nothing the public contract does not name (the store's `seq`) reaches a client.
    const out = SearchResponse.parse(res);
    // Per segment, a result is the segment: its point id, whichever chunk scored it.
    if ((body.group_by ?? 'segment') === 'segment') {
      for (const r of out.results) r.point_id = r.payload.segment_point_id;
    }
    return c.json(out, 200);
  });
}
