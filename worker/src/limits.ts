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
