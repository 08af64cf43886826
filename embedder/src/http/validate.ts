import type { Context } from 'hono';
import type { z } from 'zod';
import type { AppEnv } from './context.js';
import { ApiError, validationError } from './errors.js';

/**
 * Reads the JSON body and validates it against `schema`. Failures are problems: 415 for a
 * non-JSON content type, 400 `malformed_json`, 400 `validation_failed` naming each field.
 */
export async function readJson<S extends z.ZodType>(
  c: Context<AppEnv>,
  schema: S,
): Promise<z.output<S>> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/(?:[\w.+-]+\+)?json(?:\s*;|$)/i.test(type)) {
    throw new ApiError('unsupported_media_type', 'the body must be application/json');
  }
  let body: unknown;
  try {
    body = await c.req.json();
  } catch {
    throw new ApiError('malformed_json', 'the body is not valid JSON');
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw validationError(parsed.error, 'the request body');
  return parsed.data;
}
