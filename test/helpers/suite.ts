/** One real stack for the tests of a file, with probes of its database and its vector store. */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { DbProbe } from './db.js';
import { explainReloads, startTestStack } from './stack.js';
import type { TestStack, TestStackOptions } from './stack.js';
import { VectorProbe } from './vectors.js';

export interface StackSuite {
  readonly stack: TestStack;
  readonly db: DbProbe;
  readonly vectors: VectorProbe;
}

/**
 * Starts a test stack (`opts`) before the file's tests and stops it after them; a failing test
 * says whether a Worker reloaded while it ran (explainReloads). The fields are read in tests.
 */
export function useTestStack(opts: TestStackOptions): StackSuite {
  let stack: TestStack | undefined;
  let db: DbProbe | undefined;
  let vectors: VectorProbe | undefined;
  beforeAll(async () => {
    stack = await startTestStack(opts);
    db = new DbProbe(stack.databaseUrl);
    vectors = new VectorProbe(stack.vectorDataDir!);
  }, 240_000);
  afterAll(async () => {
    await db?.close();
    await stack?.dispose();
  }, 60_000);
  beforeEach(({ onTestFailed }) => explainReloads(onTestFailed, () => [stack]));
  const started = <T>(part: T | undefined): T => {
    if (part === undefined) throw new Error('the test stack has not started');
    return part;
  };
  return {
    get stack() {
      return started(stack);
    },
    get db() {
      return started(db);
    },
    get vectors() {
      return started(vectors);
    },
  };
}

/** A suffix for the org names of one run of a test file, so that runs never share an org. */
export const runSuffix = (): string =>
  `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
