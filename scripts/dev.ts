/**
 * `npm run dev`: the whole system on this machine, with nothing but Node 22 installed.
 * Ctrl-C stops every process it started. The Node version is checked before anything starts (the
 * stack is imported only after it).
 */
import path from 'node:path';
import { requireNode } from './lib/node-version.mjs';

requireNode('npm run dev');
const { REPO_ROOT, startStack } = await import('./lib/stack.js');

const env = process.env;
const dataDir = path.resolve(REPO_ROOT, env.HEIMDEX_DATA_DIR ?? '.data');
const colors: Record<string, string> = { embedder: '\x1b[36m', worker: '\x1b[35m' };
const tty = process.stdout.isTTY;

async function main() {
  const stack = await startStack({
    dataDir,
    apiPort: Number(env.PORT ?? 8787),
    embedderPort: Number(env.EMBEDDER_PORT ?? 8788),
    pgPort: Number(env.PGPORT ?? 54329),
    onStatus: (m) => console.log(`[dev] ${m}`),
    onLine: (source, line) => {
      const tag = tty ? `${colors[source]}[${source}]\x1b[0m` : `[${source}]`;
      console.log(`${tag} ${line}`);
    },
  });
  console.log(`
  Heimdex is running.

    API          ${stack.apiUrl}          (OpenAPI: ${stack.apiUrl}/openapi.json)
    embedder     ${stack.embedderUrl}   (internal; service token in ${path.join(dataDir, 'dev-secrets.json')})
    Postgres     ${stack.databaseUrl.replace(/:[^:@/]+@/, ':***@')}
    data         ${dataDir}

  Get a token:   npm run token -- --org acme
  Then follow the walkthrough in README.md. Ctrl-C stops everything.
`);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n[dev] ${signal}: stopping all processes`);
    await stack.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`\n[dev] failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
