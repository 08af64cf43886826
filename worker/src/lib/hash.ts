import { POINT_FORMAT } from '../../../contract/internal';
import type { Chunking } from '../../../contract/internal';

const encoder = new TextEncoder();

export async function sha256Hex(input: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(input));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A chunking in one canonical form: `"truncate"`, or the windows' fields in a fixed order with
 * the absent ones left out, so that `{overlap_tokens, max_tokens}` and `{max_tokens,
 * overlap_tokens}` are one job.
 */
export function canonicalChunking(chunking: Chunking): Chunking {
  if (chunking === 'truncate') return chunking;
  return {
    ...(chunking.max_tokens !== undefined ? { max_tokens: chunking.max_tokens } : {}),
    ...(chunking.overlap_tokens !== undefined ? { overlap_tokens: chunking.overlap_tokens } : {}),
  };
}

/**
 * The idempotency key of DESIGN.md: hash(org, asset, segment, model, model_ver, sha256(text)),
 * plus the point format (contract POINT_FORMAT): a job of an older format is not the same job;
 * and the job's resolved chunking when it has one (canonicalChunking): the same text chunked
 * otherwise is another job, and a job without one (the embedder's default) keys as before.
 * Fields are joined with NUL, which ids cannot contain (validation refuses control characters).
 */
export interface JobKeyParts {
  orgId: string;
  assetId: string;
  segmentId: string;
  model: string;
  modelVer: string;
  text: string;
  chunking?: Chunking;
}

export async function jobKey(parts: JobKeyParts): Promise<string> {
  const textHash = await sha256Hex(parts.text);
  const fields = [
    parts.orgId,
    parts.assetId,
    parts.segmentId,
    parts.model,
    parts.modelVer,
    textHash,
    POINT_FORMAT,
  ];
  if (parts.chunking !== undefined) {
    fields.push(`chunking=${JSON.stringify(canonicalChunking(parts.chunking))}`);
  }
  return sha256Hex(fields.join('\u0000'));
}
