/** Schemas shared by several routes, and the OpenAPI error responses generated from ERROR_CODES. */
import { z } from '@hono/zod-openapi';
import type { ZodError } from 'zod';
import {
  AppError,
  ERROR_CODES,
  MAX_LISTED_ERRORS,
  invalidRequestDetail,
  toPointer,
} from '../errors';
import type { AppVariables } from '../middleware/context';
import { EmbedderClient } from '../services/embedder';
import { unservedModels } from '../services/models';
import type { RequestedModel } from '../services/models';
import type { ErrorCode, FieldError } from '../errors';

const CONTROL = /[\p{Cc}]/u;

/**
 * Client-chosen identifiers: 1..256 characters, no control characters, and not `.` or `..`: an
 * asset id travels in a URL path (`DELETE /vectors/assets/{asset_id}`, percent-encoded), where
 * URL parsers remove dot segments even when percent-encoded (`%2E%2E`), so such an id could be
 * stored but never deleted. Every other id round-trips through encodeURIComponent.
 */
export const Id = z
  .string()
  .min(1)
  .max(256)
  .regex(/^(?!\.\.?$)/, 'must not be "." or ".." (a URL path cannot address them)')
  .refine((s) => !CONTROL.test(s), 'must not contain control characters')
  .refine((s) => s.isWellFormed(), 'must be well-formed Unicode')
  .openapi({
    description:
      '1–256 characters of well-formed Unicode, no control characters, not "." or "..". ' +
      'In a URL path, percent-encode it (encodeURIComponent).',
  });

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
 * Text to embed. Its length limit (MAX_TEXT_CHARS, in characters) is configuration, so routes check
 * it after parsing and answer 413; the body limit bounds it before that.
 */
export const Text = z
  .string()
  .min(1)
  .refine((s) => s.trim().length > 0, 'must not be blank')
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')
  .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)');

export const charLength = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** 413 naming the field when a text is longer than MAX_TEXT_CHARS characters. */
export function checkTextLength(text: string, max: number, field: string): void {
  if (charLength(text) > max) {
    throw new AppError('payload_too_large', `${field} exceeds ${max} characters`, {
      errors: [
        { field, pointer: '/' + field.split('.').join('/'), message: `at most ${max} characters` },
      ],
    });
  }
}

/** 400 naming each item whose model (or model_ver) the embedder does not serve. */
export async function refuseUnservedModels(
  vars: Pick<AppVariables, 'config' | 'requestId'>,
  requested: RequestedModel[],
): Promise<void> {
  const { config, requestId } = vars;
  const client = new EmbedderClient(config.embedder, requestId);
  const errors = await unservedModels(client, config.embedder.url, requested);
  if (errors.length > 0) {
    throw new AppError('validation_failed', invalidRequestDetail(errors), { errors });
  }
}

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]),
    detail: z.string(),
    instance: z.string().optional(),
    request_id: z.string(),
    errors: z
      .array(z.object({ field: z.string(), pointer: z.string(), message: z.string() }))
      .max(MAX_LISTED_ERRORS)
      .optional(),
    errors_omitted: z
      .number()
      .int()
      .positive()
      .optional()
      .openapi({ description: `field errors left out: at most ${MAX_LISTED_ERRORS} are listed` }),
  })
  .openapi('Problem');

/** Any route can fail with 500: an unexpected error, or a misconfigured Worker. */
export const SERVER_ERRORS: ErrorCode[] = ['internal', 'misconfigured'];

/** OpenAPI responses for the given error codes (plus SERVER_ERRORS), from the one code→status table. */
export function errorResponses(codes: ErrorCode[]) {
  const out: Record<
    number,
    { description: string; content: Record<string, { schema: typeof ProblemSchema }> }
  > = {};
  for (const code of new Set([...codes, ...SERVER_ERRORS])) {
    const { status, title } = ERROR_CODES[code];
    const prev = out[status];
    out[status] = {
      description: prev ? `${prev.description}; ${title} (${code})` : `${title} (${code})`,
      content: { 'application/problem+json': { schema: ProblemSchema } },
    };
  }
  return out;
}

/** Every authenticated route: a bad token, or (AUTH_PROVIDER=jwks) the identity provider down. */
export const AUTH_ERRORS: ErrorCode[] = ['unauthorized', 'dependency_unavailable'];
export const BODY_ERRORS: ErrorCode[] = [
  'validation_failed',
  'malformed_json',
  'payload_too_large',
  'unsupported_media_type',
];

export function fieldErrors(error: ZodError): FieldError[] {
  return error.issues.flatMap((issue): FieldError[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => {
        const path = [...issue.path, k];
        return { field: path.join('.'), pointer: toPointer(path), message: 'unknown field' };
      });
    }
    return [
      {
        field: issue.path.join('.') || '(body)',
        pointer: toPointer(issue.path),
        message: issue.message,
      },
    ];
  });
}
