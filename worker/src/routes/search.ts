import { createRoute, z } from '@hono/zod-openapi';
import { PointPayload } from '../../../contract/internal';
import type { OpenAPIHono } from '@hono/zod-openapi';
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
      .max(100)
      .optional()
      .openapi({ description: 'any of these assets' }),
    segment_ids: z
      .array(Id)
      .min(1)
      .max(100)
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

export const SearchRequest = z
  .object({
    query_text: Text.openapi({ example: 'A big hairy canine is jogging outdoors' }),
    limit: z.number().int().min(1).max(100).default(10),
    asset_id: Id.optional(),
    segment_id: Id.optional(),
    model: ModelName.optional(),
    filters: SearchFilters.optional(),
  })
  .strict()
  .openapi('SearchRequest');

/** The stored point payload as clients see it (contract/internal.ts, less the store's `seq`). */
export const SearchPayload = documented(PointPayload.omit({ seq: true }), 'PointPayload');

export const SearchResponse = z
  .object({
    results: z.array(
      z.object({ point_id: z.uuid(), score: z.number().min(-1).max(1), payload: SearchPayload }),
    ),
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
      }),
    );
    c.header('server-timing', `embedder;dur=${Date.now() - started}`, { append: true });
    // Parse the embedder's answer with the public schema: unknown payload fields are stripped,
    // so nothing the public contract does not name (the store's `seq`) reaches a client.
    return c.json(SearchResponse.parse(res), 200);
  });
}
