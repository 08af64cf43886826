/**
 * The per-invocation context of the Worker's non-HTTP entry points (queue consumers, the cron):
 * parsed config, a logger with the invocation's fields, and a database handle closed when the
 * invocation ends. The HTTP side builds the same per request in middleware/context.ts.
 */
import type { Config, Env } from '../env';
import { parseConfig } from '../env';
import type { Db } from './db';
import { openDb } from './db';
import { createLogger } from './log';
import type { Logger } from './log';

export interface Invocation {
  config: Config;
  log: Logger;
  db: Db;
}

/**
 * Runs `fn` with a fresh invocation context. The database handle is closed afterwards, through
 * `ctx.waitUntil` when there is an execution context (the response need not wait for it).
 */
export async function withInvocation<T>(
  env: Env,
  fields: Record<string, string>,
  fn: (inv: Invocation) => Promise<T>,
  ctx?: ExecutionContext,
): Promise<T> {
  const config = parseConfig(env);
  const log = createLogger(config.logLevel, fields);
  const { db, close } = openDb(config);
  try {
    return await fn({ config, log, db });
  } finally {
    const closing = close().catch(() => undefined);
    if (ctx) ctx.waitUntil(closing);
    else await closing;
  }
}
