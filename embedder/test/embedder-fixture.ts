/** One running embedder shared by the tests of a suite (a describe block or a whole file). */
import { afterAll, beforeAll } from 'vitest';
import type { EmbedderConfig } from '../src/config.js';
import { startEmbedder } from '../src/server.js';
import type { RunningEmbedder } from '../src/server.js';
import { client, tempDir, testConfig } from './helpers.js';

export interface EmbedderFixture {
  /** A JSON client with the service token (call it in tests, once the suite has started). */
  call: ReturnType<typeof client>;
  /** Every log line the embedder wrote. */
  logs: string[];
  /** The running embedder (once the suite has started). */
  readonly embedder: RunningEmbedder;
  /** The folder `configure` was given. */
  readonly dir: string;
}

/**
 * Starts an embedder before the suite's tests and closes it after them. `configure` is given a
 * fresh folder (removed at the end) and returns the configuration (default: `testConfig` with
 * the folder as the data dir).
 */
export function useEmbedder(
  prefix: string,
  configure: (dir: string) => EmbedderConfig | Promise<EmbedderConfig> = (dir) =>
    testConfig({ dataDir: dir }),
): EmbedderFixture {
  let tmp: Awaited<ReturnType<typeof tempDir>> | undefined;
  let embedder: RunningEmbedder | undefined;
  const logs: string[] = [];
  beforeAll(async () => {
    tmp = await tempDir(prefix);
    embedder = await startEmbedder(await configure(tmp.dir), { log: (line) => logs.push(line) });
  });
  afterAll(async () => {
    await embedder?.close();
    await tmp?.remove();
  });
  const started = () => {
    if (!embedder || !tmp) throw new Error('the embedder has not started');
    return { embedder, dir: tmp.dir };
  };
  return {
    call: (...args) => client(started().embedder.url)(...args),
    logs,
    get embedder() {
      return started().embedder;
    },
    get dir() {
      return started().dir;
    },
  };
}
