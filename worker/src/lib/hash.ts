import { POINT_FORMAT } from '../../../contract/internal';

const encoder = new TextEncoder();

export async function sha256Hex(input: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(input));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The idempotency key of DESIGN.md: hash(org, asset, segment, model, model_ver, sha256(text)),
 * plus the point format (contract POINT_FORMAT): a job of an older format is not the same job.
 * Fields are joined with NUL, which ids cannot contain (validation refuses control characters).
 */
export interface JobKeyParts {
  orgId: string;
  assetId: string;
  segmentId: string;
  model: string;
  modelVer: string;
  text: string;
}

export async function jobKey(parts: JobKeyParts): Promise<string> {
  const textHash = await sha256Hex(parts.text);
  return sha256Hex(
    [
      parts.orgId,
      parts.assetId,
      parts.segmentId,
      parts.model,
      parts.modelVer,
      textHash,
      POINT_FORMAT,
    ].join('\u0000'),
  );
}
