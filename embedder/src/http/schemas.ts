import { z } from 'zod';

/** Schemas shared by several routes. Limits match the Worker's (worker/src/routes/common.ts). */

const CONTROL = /\p{Cc}/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Client-chosen identifiers: 1..256 characters, no control characters (so no NUL). */
export const Id = z
  .string()
  .min(1)
  .max(256)
  .refine((s) => !CONTROL.test(s), 'must not contain control characters')
  .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode');

/**
 * A model name or version as the caller sends it. Deliberately loose: a name this embedder
 * does not serve is a per-item `unknown_model` outcome (400 for search), not a schema error.
 */
export const ModelRef = Id;

/** Text to embed or search for. A text with no known token is a per-item/422 outcome, not a 400. */
export const Text = z
  .string()
  .min(1)
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
  .refine((s) => !LONE_SURROGATE.test(s), 'must be well-formed Unicode (no lone surrogates)');

export const PointId = z.uuid();

/**
 * Optional conditions on the non-sensitive payload, all of which must hold. Same shape as the
 * Worker's public `filters` (worker/src/routes/search.ts).
 */
export const SearchFilters = z.strictObject({
  asset_ids: z.array(Id).min(1).max(100).optional(),
  segment_ids: z.array(Id).min(1).max(100).optional(),
  truncated: z.boolean().optional(),
  embedded_after: z.iso.datetime({ offset: true }).optional(),
  embedded_before: z.iso.datetime({ offset: true }).optional(),
});
