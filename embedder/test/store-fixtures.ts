/**
 * Points for the store tests (store.conformance, store.maintenance): unit vectors of DIM
 * dimensions and whole-text payloads, ids as the embedder makes them.
 */
import { randomUUID } from 'node:crypto';
import { pointId } from '../../contract/ids.js';
import type { PointPayload, VectorPoint } from '../src/store/types.js';

/** The vector size and model name of the store tests' points. */
export const DIM = 8;
export const MODEL = 'test-model';

/** `values` (padded with zeros to DIM) scaled to unit length. */
export function unit(values: number[]): Float32Array {
  const v = Float32Array.from({ length: DIM }, (_, i) => values[i] ?? 0);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

/**
 * A point of one segment's text; unless `extra` says otherwise, the text fits the window: the
 * segment's only chunk, whose id is the segment's point id.
 */
export async function point(
  org: string,
  asset: string,
  segment: string,
  vector: number[],
  seq: number,
  extra: Partial<PointPayload> = {},
): Promise<VectorPoint> {
  const payload: PointPayload = {
    segment_point_id: '',
    chunk_index: 0,
    chunk_count: 1,
    chunk_start: 0,
    chunk_end: extra.truncated_len ?? 10,
    org_id: org,
    asset_id: asset,
    segment_id: segment,
    modality: 'text',
    model: MODEL,
    model_ver: '1',
    text_len: 10,
    token_count: 3,
    truncated: false,
    truncated_len: 10,
    job_id: randomUUID(),
    seq,
    embedded_at: new Date(1_700_000_000_000 + seq).toISOString(),
    ...extra,
  };
  const id = await pointId(payload);
  if (extra.segment_point_id === undefined) payload.segment_point_id = id;
  return { id, vector: unit(vector), payload };
}
