/** What the end-to-end files share: how they start their stack, and a flow two of them check. */
import fs from 'node:fs';
import { expect } from 'vitest';
import { startStack } from '../../scripts/lib/stack.js';
import type { StackOptions } from '../../scripts/lib/stack.js';
import type { Api, JobBody, SearchBody } from './api.js';
import { tempDir } from './stack.js';
import type { TestStack } from './stack.js';

/**
 * The stack of an end-to-end file: the repo's Worker as it is (the reliability suite's
 * startTestStack runs a snapshot), no cron unless `opts` says, in a fresh data dir `heimdex-<name>-…`
 * that `dispose` removes.
 */
export async function startE2eStack(
  name: string,
  opts: Omit<StackOptions, 'dataDir'>,
): Promise<TestStack> {
  const dataDir = tempDir(name);
  const remove = () => fs.rmSync(dataDir, { recursive: true, force: true });
  try {
    const stack = await startStack({ cronIntervalMs: 0, ...opts, dataDir });
    return {
      ...stack,
      dataDir,
      dispose: async () => {
        await stack.stop();
        remove();
      },
    };
  } catch (err) {
    remove();
    throw err;
  }
}

/** The text rewriteSegment gives segment doc/intro last, and a dense search for it there. */
export const REWRITTEN = {
  query_text: 'Submarines explore the deep ocean floor',
  asset_id: 'doc',
  mode: 'dense',
} as const;

/**
 * Gives segment doc/intro a text and then another, each a new job waited for: both succeed and
 * the second keeps the first one's point. Returns both jobs.
 */
export async function rewriteSegment(api: Api): Promise<{ first: JobBody; second: JobBody }> {
  const intro = { asset_id: 'doc', segment_id: 'intro' };
  const a = await api.embed({ ...intro, text: 'Bananas are yellow fruit' });
  const first = await api.waitForJob(a.body.job_id);
  expect(first.status).toBe('SUCCEEDED');
  const b = await api.embed({ ...intro, text: REWRITTEN.query_text });
  expect(b.body.job_id).not.toBe(a.body.job_id);
  const second = await api.waitForJob(b.body.job_id);
  expect(second.status).toBe('SUCCEEDED');
  expect(second.result?.point_id).toBe(first.result?.point_id);
  return { first, second };
}

/** The REWRITTEN search found the segment's point alone, as the same text (score > 0.99). */
export function expectRewrittenFound(found: SearchBody, pointId: string | undefined): void {
  expect(found.results).toHaveLength(1);
  expect(found.results[0]?.point_id).toBe(pointId);
  expect(found.results[0]?.score).toBeGreaterThan(0.99);
}
