/**
 * The CLI's one error type: a message fit for one line on stderr. Everything the user can cause
 * (bad arguments, an unreachable server, a rejected token, an unreadable file) becomes a CliError;
 * main prints `heimdex: <message>` and exits 1, never a stack trace.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A problem+json answer from the API (RFC 9457), as the Worker sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  detail?: string;
  request_id?: string;
  errors?: Array<{ field: string; pointer?: string; message: string }>;
}

/** The API answered with an error status (after retries, where those apply). */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(describeProblem(status, problem));
    this.name = 'ApiError';
  }
}

export function describeProblem(status: number, p: Problem): string {
  const fields = p.errors?.length
    ? ` [${p.errors.map((e) => `${e.field}: ${e.message}`).join('; ')}]`
    : '';
  const id = p.request_id ? ` (request id ${p.request_id})` : '';
  return `${status} ${p.code ?? 'error'}: ${p.detail ?? p.title ?? 'no detail'}${fields}${id}`;
}
