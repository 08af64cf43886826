/**
 * The RFC 9457 problem+json checks every error response shares. No test harness in here: the
 * Worker tests (workerd) and the reliability suite (Node, the real stack) both use it.
 */
import { expect } from 'vitest';
import { PROBLEM_BASE } from '../../contract/problems.js';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance?: string;
  request_id: string;
  errors?: Array<{ field: string; pointer: string; message: string }>;
}

/** Checks a parsed response: its status, content type, and the problem shape with `code`. */
export function checkProblem(
  res: { status: number; headers: Headers; body: unknown },
  status: number,
  code: string,
): ProblemBody {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const body = res.body as ProblemBody;
  expect(body).toMatchObject({ type: PROBLEM_BASE + code, status, code });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.request_id).toBe(res.headers.get('x-request-id'));
  expect(body.request_id.length).toBeGreaterThanOrEqual(8);
  return body;
}

/** checkProblem on a fetch Response (reads its body). */
export async function expectProblem(
  res: Response,
  status: number,
  code: string,
): Promise<ProblemBody> {
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  return checkProblem(
    { status: res.status, headers: res.headers, body: await res.json() },
    status,
    code,
  );
}

/** Checks that a field problem names `fields` in errors[], each with its JSON pointer and a message. */
export function expectFieldErrors(problem: ProblemBody, fields: string[]): void {
  expect(problem.errors, 'errors[] names the fields').toBeDefined();
  expect(problem.errors!.map((e) => e.field)).toEqual(expect.arrayContaining(fields));
  for (const e of problem.errors!) {
    expect(e.pointer).toBe(e.field === '(body)' ? '' : '/' + e.field.split('.').join('/'));
    expect(e.message.length).toBeGreaterThan(0);
  }
}
