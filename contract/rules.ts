/**
 * The text and identifier rules, written once: the Worker's public schemas and the embedder's
 * internal ones both build on these, so the two services cannot disagree about what is valid.
 * Plain zod (no OpenAPI metadata): the Worker adds its documentation where it exposes them.
 */
import { z } from 'zod';

const CONTROL = /\p{Cc}/u;

/** Characters of a client-chosen identifier (asset and segment ids). */
export const MAX_ID_CHARS = 256;
/** The Worker's default MAX_TEXT_CHARS: characters (code points) of one text. */
export const DEFAULT_MAX_TEXT_CHARS = 32_000;
/** Segments of one `POST /vectors/embed/batch` (the Worker's limit; the CLI batches up to it). */
export const MAX_BATCH_SEGMENTS = 256;

/**
 * Client-chosen identifiers: 1..256 characters of well-formed Unicode, no control characters
 * (so no NUL, which point ids use as a separator), and not `.` or `..`: an asset id travels in a
 * URL path (`DELETE /vectors/assets/{asset_id}`, percent-encoded), where URL parsers remove dot
 * segments even when percent-encoded, so such an id could be stored but never deleted.
 */
export const Id = z
  .string()
  .min(1)
  .max(MAX_ID_CHARS)
  .regex(/^(?!\.\.?$)/, 'must not be "." or ".." (a URL path cannot address them)')
  .refine((s) => !CONTROL.test(s), 'must not contain control characters')
  .refine((s) => s.isWellFormed(), 'must be well-formed Unicode');

export const ModelName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'letters, digits, and . _ / - only');

export const ModelVer = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, and . _ - only');

/**
 * Text to embed or search for: non-empty, not blank, no NUL, well-formed Unicode. Its length
 * limit is configuration (the Worker's MAX_TEXT_CHARS, answered with 413).
 */
export const Text = z
  .string()
  .min(1)
  .refine((s) => s.trim().length > 0, 'must not be blank')
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
  .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)');

export const PointId = z.uuid();

/** Length in Unicode code points (what MAX_TEXT_CHARS and `text_len` count). */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** One field a request got wrong; both services answer validation problems with these. */
export interface FieldError {
  /** Dotted path of the offending field, e.g. `segments.3.text`. */
  field: string;
  /** JSON Pointer (RFC 6901) to the field. */
  pointer: string;
  message: string;
}

export function toPointer(path: readonly PropertyKey[]): string {
  return path.map((p) => '/' + String(p).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** The field errors of a failed zod parse (an unknown key is an error of its own path). */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue): FieldError[] => {
    const paths =
      issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    const message = issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message;
    return paths.map((path) => ({
      field: path.map(String).join('.') || '(body)',
      pointer: toPointer(path),
      message,
    }));
  });
}
