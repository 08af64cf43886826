/** Shared helpers for Worker tests running inside workerd. */
import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import type { createMessageBatch } from 'cloudflare:test';
import { vi } from 'vitest';
import { mintDevToken } from '../../scripts/lib/token';
import type { EmbedMessage } from '../src/queue/message';
import type { Env } from '../src/env';
import worker from '../src/index';
import { parseConfig } from '../src/env';
import { openDb } from '../src/lib/db';
import type { OwnerFixture, RouteCase } from './routes';

export const baseEnv = env as unknown as Env;

/** A copy of the test env with overrides (a new object, so parsed config is not shared). */
export function envWith(overrides: Record<string, string> = {}): Env {
  return { ...baseEnv, ...overrides } as Env;
}

export function secret(e: Env = baseEnv): Uint8Array {
  return new TextEncoder().encode(e.DEV_JWT_SECRET as string);
}

export async function token(
  org: string | null,
  opts: {
    /** Expiry in seconds since the epoch (default: an hour from now). */
    exp?: number;
    nbf?: number;
    key?: Uint8Array;
    claims?: Record<string, unknown>;
  } = {},
): Promise<string> {
  return mintDevToken({
    secret: opts.key ?? secret(),
    org,
    subject: 'test-user',
    expiresAt: opts.exp,
    notBefore: opts.nbf,
    claims: opts.claims,
  });
}

export function uniqueOrg(prefix = 'org'): string {
  return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

export async function call(
  method: string,
  path: string,
  opts: {
    token?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
    env?: Env;
  } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.rawBody;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`http://heimdex.test${path}`, { method, headers, body }),
    opts.env ?? baseEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

export { checkProblem, expectProblem } from './problem';
export type { ProblemBody } from './problem';

/** Runs `route`'s request (routes.ts) with the given Authorization header (or none). */
export function callRoute(
  route: RouteCase,
  owner: OwnerFixture,
  authorization: string | undefined,
): Promise<Response> {
  const { path, body } = route.request(owner);
  return call(route.method, path, { body, headers: authorization ? { authorization } : {} });
}

/** Direct database access for assertions, through the same driver the Worker uses. */
export async function withDb<T>(
  fn: (db: ReturnType<typeof openDb>['db']) => Promise<T>,
): Promise<T> {
  const handle = openDb(parseConfig(envWith()));
  try {
    return await fn(handle.db);
  } finally {
    await handle.close();
  }
}

/** Builds queue messages the way the outbox stores them. */
type TestMessage = Parameters<typeof createMessageBatch>[1][number];

export function queueMessage(body: EmbedMessage, attempts = 1): TestMessage {
  return { id: crypto.randomUUID(), timestamp: new Date(), attempts, body };
}

/**
 * Runs `fn` while every fetch to `origin` rejects as workerd's fetch does for a refused
 * connection (TypeError), without a real connection attempt whose failure workerd would print.
 * Returns fn's result and the URLs that were tried.
 */
export async function withUnreachable<T>(
  origin: string,
  fn: () => Promise<T>,
): Promise<{ result: T; attempts: string[] }> {
  const realFetch = globalThis.fetch;
  const attempts: string[] = [];
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (!url.startsWith(origin)) return realFetch(input, init);
    attempts.push(url);
    return Promise.reject(new TypeError('Network connection lost.'));
  });
  try {
    return { result: await fn(), attempts };
  } finally {
    spy.mockRestore();
  }
}

/** An address nothing answers (see withUnreachable). */
export const UNREACHABLE = 'http://unreachable.heimdex.test';

/**
 * Runs `fn` with an env whose embedder is unreachable (EMBEDDER_URL is UNREACHABLE, see
 * withUnreachable). Returns fn's result and the embedder paths that were tried.
 */
export async function withEmbedderDown<T>(
  fn: (env: Env) => Promise<T>,
): Promise<{ result: T; attempts: string[] }> {
  const { result, attempts } = await withUnreachable(UNREACHABLE, () =>
    fn(envWith({ EMBEDDER_URL: UNREACHABLE })),
  );
  return { result, attempts: attempts.map((url) => url.slice(UNREACHABLE.length)) };
}
