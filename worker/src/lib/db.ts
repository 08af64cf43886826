/**
 * Postgres through the Neon serverless driver (WebSocket), wrapped by drizzle. A Pool lives for one
 * invocation: Workers may not share sockets across requests. Locally, NEON_WS_PROXY points the
 * driver at our WebSocket→TCP proxy; in production Neon's own proxy is used and it is unset.
 */
import { Pool, neonConfig } from '@neondatabase/serverless';
import { drizzle } from 'drizzle-orm/neon-serverless';
import type { NeonDatabase } from 'drizzle-orm/neon-serverless';
import * as schema from '../../../db/schema';
import type { Config } from '../env';

export type Db = NeonDatabase<typeof schema>;

export interface DbHandle {
  db: Db;
  close(): Promise<void>;
}

export function openDb(config: Config): DbHandle {
  if (config.neonWsProxy) {
    const proxy = config.neonWsProxy;
    neonConfig.wsProxy = (host, port) => `${proxy}?address=${host}:${port}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  const pool = new Pool({ connectionString: config.databaseUrl, max: 4 });
  // A pool error (e.g. a dropped socket) must not crash the isolate; queries still reject.
  pool.on('error', () => undefined);
  return { db: drizzle(pool, { schema }), close: () => pool.end() };
}

/**
 * SQLSTATE classes that mean "the database cannot serve right now", not "this query is wrong":
 * 08 connection exception, 53 insufficient resources (too many connections, disk, memory),
 * 57P01–57P03 shutting down / cannot connect now.
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[123])/;
/** What the driver and the runtime say when the socket to Postgres (or its proxy) fails. */
const UNAVAILABLE_MESSAGE =
  /connection terminated|network connection lost|websocket|ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up|timeout exceeded when trying to connect/i;

/**
 * True when `err` (or an error it wraps, such as drizzle's DrizzleQueryError around the driver's)
 * says Postgres is unreachable or out of capacity: callers should retry later (503), nothing is
 * wrong with the request.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNAVAILABLE_SQLSTATE.test(code)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message.split('\n')[0]!)) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
