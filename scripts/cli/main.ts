/**
 * `heimdex`: the command-line client for the Heimdex API (see USAGE in args.ts). `runCli` takes
 * the arguments and an Io and returns the exit code; it never throws and never prints a stack
 * trace: every failure is one line, `heimdex: <what went wrong>`, and exit code 1.
 */
import { USAGE, parseCli, parseUrl } from './args.js';
import type { Globals } from './args.js';
import { ApiClient } from './client.js';
import {
  batchCommand,
  deleteCommand,
  embedCommand,
  rerankCommand,
  jobCommand,
  searchCommand,
  tokenCommand,
} from './commands.js';
import { CliError } from './errors.js';
import { ingest, ingestExitCode, printSummary } from './ingest.js';
import type { Io } from './io.js';
import { processIo } from './io.js';

export const VERSION = '0.1.0';

function client(g: Globals, retries: number, counter: { count: number }): ApiClient {
  const baseUrl = parseUrl(g.url);
  if (!g.token) {
    throw new CliError(
      'no token: pass --token or set HEIMDEX_TOKEN (locally: export HEIMDEX_TOKEN=$(npx heimdex token --org acme))',
    );
  }
  return new ApiClient({
    baseUrl,
    token: g.token,
    retries,
    onRetry: () => {
      counter.count++;
    },
  });
}

export async function runCli(argv: string[], base: Omit<Io, 'json' | 'quiet'>): Promise<number> {
  let io: Io = { ...base, json: false, quiet: false };
  try {
    const { globals, command } = parseCli(argv, base.env);
    io = { ...base, json: globals.json, quiet: globals.quiet };
    const retries = { count: 0 };
    switch (command.name) {
      case 'help':
        io.out(USAGE.trimEnd());
        return 0;
      case 'version':
        io.out(VERSION);
        return 0;
      case 'token':
        return await tokenCommand(io, command);
      case 'ingest': {
        const api = client(globals, command.retries, retries);
        const summary = await ingest(io, api, command, retries);
        printSummary(io, summary);
        return ingestExitCode(summary);
      }
      case 'search':
        return await searchCommand(io, client(globals, 2, retries), command);
      case 'embed':
        return await embedCommand(io, client(globals, 2, retries), command);
      case 'rerank':
        return await rerankCommand(io, client(globals, 2, retries), command);
      case 'job':
        return await jobCommand(io, client(globals, 2, retries), command.jobId);
      case 'batch':
        return await batchCommand(io, client(globals, 6, retries), command);
      case 'delete':
        return await deleteCommand(io, client(globals, 2, retries), command);
    }
  } catch (err) {
    if (err instanceof CliError) {
      io.err(`heimdex: ${err.message}`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.err(`heimdex: unexpected error: ${message.split('\n')[0]}`);
    if (base.env.HEIMDEX_DEBUG && err instanceof Error && err.stack) io.err(err.stack);
    return 1;
  }
}

/** The process entry point, called by scripts/heimdex.mjs. */
export async function main(argv = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runCli(argv, processIo(process.env));
}
