/**
 * CLI entry (`npm run embedder`): parse the environment, start, and shut down gracefully on
 * SIGINT/SIGTERM. Configuration and start-up problems print a plain fix-it message and exit 1.
 */
import { ConfigError, parseEmbedderConfig } from './config.js';
import { StartupError } from './core/errors.js';
import { startEmbedder } from './server.js';
import type { RunningEmbedder } from './server.js';

const SHUTDOWN_TIMEOUT_MS = 30_000;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

async function main(): Promise<void> {
  let running: RunningEmbedder;
  try {
    running = await startEmbedder(parseEmbedderConfig(process.env));
  } catch (err) {
    if (err instanceof ConfigError || err instanceof StartupError) fail(err.message);
    fail(`The embedder failed to start: ${err instanceof Error ? err.message : String(err)}`);
  }
  console.log(`embedder listening on ${running.url}`);

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`${signal} again: exiting immediately\n`);
      process.exit(1);
    }
    stopping = true;
    const timer = setTimeout(
      () => fail('graceful shutdown timed out; exiting'),
      SHUTDOWN_TIMEOUT_MS,
    );
    timer.unref();
    running.close().then(
      () => process.exit(0),
      (err: unknown) =>
        fail(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

void main();
