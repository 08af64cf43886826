/**
 * RFC 9457 problem details, as both services answer them: the shared part of their code→status
 * tables (each service adds its own codes), the `type` base, and the body shape.
 */
import type { FieldError } from './rules.js';

export const PROBLEM_BASE = 'https://heimdex.dev/problems/';

/** The codes both services answer with, with their status and title. */
export const COMMON_PROBLEMS = {
  validation_failed: { status: 400, title: 'Request validation failed' },
  malformed_json: { status: 400, title: 'Malformed JSON body' },
  unauthorized: { status: 401, title: 'Authentication required' },
  not_found: { status: 404, title: 'Not found' },
  payload_too_large: { status: 413, title: 'Payload too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type' },
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

/** A problem code's HTTP status and title. */
export interface ProblemDef<Status extends number = number> {
  status: Status;
  title: string;
}

/** A service's code→status table: the common problems and the service's own codes. */
export function problemTable<const Own extends Record<string, ProblemDef>>(
  own: Own,
): typeof COMMON_PROBLEMS & Own {
  return { ...COMMON_PROBLEMS, ...own };
}

export interface ProblemBody<Code extends string = string> {
  type: string;
  title: string;
  status: number;
  code: Code;
  detail: string;
  instance?: string;
  request_id: string;
  errors?: FieldError[];
  /** How many field errors were left out of `errors`. */
  errors_omitted?: number;
}
