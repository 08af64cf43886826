/**
 * Deterministic point ids. Pure, dependency-free and Web Crypto only, so the same function runs in
 * the embedder (Node) and in the Worker (workerd).
 */

/** Heimdex's fixed UUID namespace for point ids. Never change it: every stored id depends on it. */
export const HEIMDEX_POINT_NAMESPACE = '800a83f7-9c68-4848-b036-8706739e1537';

export interface PointKey {
  org_id: string;
  asset_id: string;
  segment_id: string;
  model: string;
  model_ver: string;
}

/**
 * The point id of a segment's vector: a UUID v5 of `org\0asset\0segment\0model\0model_ver`.
 * There is no text hash in it, so new text for the same segment overwrites the old vector.
 * The parts must not contain NUL (the request schemas reject control characters).
 */
export function pointId(key: PointKey): Promise<string> {
  const name = [key.org_id, key.asset_id, key.segment_id, key.model, key.model_ver].join('\u0000');
  return uuidV5(name, HEIMDEX_POINT_NAMESPACE);
}

/**
 * The point id of chunk `index` of a segment's text: chunk 0 is the segment's point id (so a text
 * that fits the window keeps the id it always had), chunk i > 0 a UUID v5 of the same name plus
 * `\0i`.
 */
export function chunkPointId(key: PointKey, index: number): Promise<string> {
  if (index === 0) return pointId(key);
  const name = [key.org_id, key.asset_id, key.segment_id, key.model, key.model_ver, String(index)];
  return uuidV5(name.join('\u0000'), HEIMDEX_POINT_NAMESPACE);
}

/** RFC 4122 §4.3 name-based UUID, version 5 (SHA-1). */
export async function uuidV5(name: string, namespace: string): Promise<string> {
  const ns = parseUuid(namespace);
  const nameBytes = new TextEncoder().encode(name);
  const input = new Uint8Array(ns.length + nameBytes.length);
  input.set(ns, 0);
  input.set(nameBytes, ns.length);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', input));
  const bytes = digest.slice(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50; // version 5
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  return formatUuid(bytes);
}

function parseUuid(uuid: string): Uint8Array {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new TypeError('namespace must be a UUID');
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

function formatUuid(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
