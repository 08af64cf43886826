/**
 * Limits of the public API that are not configuration and not part of the Worker↔embedder
 * contract (contract/rules.ts has those). No imports: the tests read them too.
 */

/** The largest request body the Worker reads (413 beyond). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The most results one search returns (`limit`). */
export const MAX_SEARCH_LIMIT = 100;

/** The most ids one search filter (asset_ids, segment_ids) lists. */
export const MAX_FILTER_IDS = 100;

/** The longest bearer token the Worker verifies (401 beyond). */
export const MAX_TOKEN_LENGTH = 8192;

/** The longest organisation id a token may carry. */
export const MAX_TENANT_ID_CHARS = 128;

// ------------------------------------------------------------------------------- the queue
//
// Cloudflare Queues limits (https://developers.cloudflare.com/queues/platform/limits/): a message
// is at most 128 KB, "1 KB is measured as 1000 bytes", and "messages can include up to ~100 bytes
// of internal metadata that counts towards total message limits"; one sendBatch call takes at most
// 100 messages "(or 256KB in total)".

/** Cloudflare Queues: the largest message, in bytes (128 KB, KB = 1000 bytes). */
export const QUEUE_MESSAGE_MAX_BYTES = 128_000;

/** Cloudflare Queues: internal metadata counted in each message's size (up to ~100 bytes). */
export const QUEUE_MESSAGE_METADATA_BYTES = 100;

/** The largest message body (its JSON, UTF-8) the Worker sends: the limit less the metadata. */
export const QUEUE_MESSAGE_BODY_MAX_BYTES = QUEUE_MESSAGE_MAX_BYTES - QUEUE_MESSAGE_METADATA_BYTES;

/** Cloudflare Queues: the most messages in one sendBatch call. */
export const QUEUE_BATCH_MAX_MESSAGES = 100;

/** Cloudflare Queues: the most bytes in one sendBatch call (256 KB, KB = 1000 bytes). */
export const QUEUE_BATCH_MAX_BYTES = 256_000;

/**
 * What the relay puts in one sendBatch call: each message counted as its JSON body plus
 * QUEUE_MESSAGE_METADATA_BYTES, and 6,000 bytes of QUEUE_BATCH_MAX_BYTES left unused for whatever
 * that estimate of Cloudflare's metadata misses. Two messages of the largest text do not fit
 * together: each goes alone.
 */
export const QUEUE_BATCH_BUDGET_BYTES = QUEUE_BATCH_MAX_BYTES - 6_000;

/**
 * Bytes of a queue message reserved for everything but its encrypted text: the ids (asset and
 * segment ids of up to 256 UTF-16 units, at most 3 UTF-8 bytes each: 768 bytes apiece), the org
 * id, model and model_ver, seq, job id, key id, request id, chunking and the JSON around them. The
 * worst case that validation lets through is about 2,240 bytes (worker/test/chunking.test.ts
 * builds it); the rest is headroom (e.g. for a long EMBEDDING_MODEL_NAME).
 */
export const QUEUE_MESSAGE_ENVELOPE_BYTES = 4_000;

/** What AES-256-GCM adds to a text (lib/text-cipher.ts): a 12-byte IV and a 16-byte tag. */
export const TEXT_SEAL_BYTES = 12 + 16;

/**
 * The largest text one queue message carries, in UTF-8 bytes: the text travels encrypted
 * (+ TEXT_SEAL_BYTES) and base64url-encoded (4 characters per 3 bytes) in a message of at most
 * QUEUE_MESSAGE_BODY_MAX_BYTES with QUEUE_MESSAGE_ENVELOPE_BYTES kept for the rest:
 * ⌊(127,900 − 4,000) · 3/4⌋ − 28 = 92,897 bytes. A longer text is refused (413 naming the
 * field), never truncated. ASCII texts reach MAX_TEXT_CHARS (32,000 by default) long before it;
 * it binds for multi-byte scripts (a character is 2–4 bytes of UTF-8).
 */
export const MAX_TEXT_BYTES =
  Math.floor(((QUEUE_MESSAGE_BODY_MAX_BYTES - QUEUE_MESSAGE_ENVELOPE_BYTES) * 3) / 4) -
  TEXT_SEAL_BYTES;
