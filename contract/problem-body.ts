/**
 * The RFC 9457 body both services answer a problem with, built from the service's code table
 * (problemTable): the code's type URI, title and status, the detail, the request id, and the field
 * errors (at most `maxErrors` of them; `errors_omitted` says how many more there were).
 */
import { PROBLEM_BASE } from './problems.js';
import type { ProblemBody, ProblemDef } from './problems.js';
import type { FieldError } from './rules.js';

export interface ProblemParts<Code extends string> {
  code: Code;
  /** Never contains input text. */
  detail: string;
  requestId: string;
  instance?: string;
  errors?: readonly FieldError[];
  /** At most this many field errors are listed (default: all of them). */
  maxErrors?: number;
}

export function problemBody<Code extends string>(
  table: Record<Code, ProblemDef>,
  parts: ProblemParts<Code>,
): ProblemBody<Code> {
  const { code, instance, errors = [] } = parts;
  const body: ProblemBody<Code> = {
    type: PROBLEM_BASE + code,
    title: table[code].title,
    status: table[code].status,
    code,
    detail: parts.detail,
    request_id: parts.requestId,
  };
  if (instance) body.instance = instance;
  const max = parts.maxErrors ?? errors.length;
  if (errors.length > 0) body.errors = errors.slice(0, max);
  if (errors.length > max) body.errors_omitted = errors.length - max;
  return body;
}
