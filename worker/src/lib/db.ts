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
