/**
 * The HTTP edge's mapping between the wire contract (contract/internal.ts, snake_case) and the
 * core's domain types (camelCase). Nothing under core/ speaks the wire format.
 */
import type {
  DeleteRequest,
  EmbedItem,
  EmbedResponse,
  SearchFilters,
  SearchRequest,
  SearchResponse,
} from '../../../contract/internal.js';
import { resolveFusion } from '../../../contract/internal.js';
import type {
  DeleteTarget,
  EmbedJob,
  EmbedResult,
  SearchQuery,
  SearchResult,
} from '../core/service.js';
import type { PayloadFilters } from '../store/types.js';

export function embedJob(item: EmbedItem): EmbedJob {
  return {
    jobId: item.job_id,
    seq: item.seq,
    orgId: item.org_id,
    assetId: item.asset_id,
    segmentId: item.segment_id,
    text: item.text,
    model: item.model,
    modelVer: item.model_ver,
    ...(item.chunking === undefined ? {} : { chunking: item.chunking }),
  };
}

export function embedResponse(result: EmbedResult): EmbedResponse {
  return {
    results: result.results.map((r) =>
      r.status === 'ok'
        ? {
            job_id: r.jobId,
            status: 'ok',
            point_id: r.pointId,
            chunk_count: r.chunkCount,
            applied: r.applied,
            text_len: r.textLen,
            token_count: r.tokenCount,
            truncated: r.truncated,
            truncated_len: r.truncatedLen,
            model: r.model,
            model_ver: r.modelVer,
          }
        : {
            job_id: r.jobId,
            status: 'error',
            code: r.code,
            retryable: r.retryable,
            message: r.message,
          },
    ),
    model: result.model,
    model_ver: result.modelVer,
  };
}

function payloadFilters(f: SearchFilters): PayloadFilters {
  return {
    ...(f.asset_ids === undefined ? {} : { assetIds: f.asset_ids }),
    ...(f.segment_ids === undefined ? {} : { segmentIds: f.segment_ids }),
    ...(f.truncated === undefined ? {} : { truncated: f.truncated }),
    ...(f.embedded_after === undefined ? {} : { embeddedAfter: f.embedded_after }),
    ...(f.embedded_before === undefined ? {} : { embeddedBefore: f.embedded_before }),
  };
}

/** A parsed search request (its `limit` defaulted) as the core's query. */
export function searchQuery(req: SearchRequest & { limit: number }): SearchQuery {
  return {
    orgId: req.org_id,
    queryText: req.query_text,
    limit: req.limit,
    ...(req.asset_id === undefined ? {} : { assetId: req.asset_id }),
    ...(req.segment_id === undefined ? {} : { segmentId: req.segment_id }),
    ...(req.model === undefined ? {} : { model: req.model }),
    ...(req.filters === undefined ? {} : { filters: payloadFilters(req.filters) }),
    ...(req.mode === undefined ? {} : { mode: req.mode }),
    ...(req.fusion === undefined ? {} : { fusion: resolveFusion(req.fusion) }),
    ...(req.explain === undefined ? {} : { explain: req.explain }),
    ...(req.group_by === undefined ? {} : { groupBy: req.group_by }),
  };
}

export function searchResponse(result: SearchResult): SearchResponse {
  return {
    results: result.results.map((r) => ({
      point_id: r.pointId,
      score: r.score,
      payload: r.payload,
      ...(r.explain === undefined ? {} : { explain: r.explain }),
    })),
    mode: result.mode,
    query_model: result.queryModel,
    query_model_ver: result.queryModelVer,
    total: result.total,
  };
}

export function deleteTarget(req: DeleteRequest): DeleteTarget {
  return req.point_id !== undefined
    ? { orgId: req.org_id, pointId: req.point_id }
    : { orgId: req.org_id, assetId: req.asset_id };
}
