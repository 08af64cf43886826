/**
 * Embedder outage during an ingest (full suite only): 500 texts are submitted at a steady pace;
 * once about a fifth have been embedded the embedder process is stopped for 30 s while the rest
 * keep arriving, then started again. Every job must end SUCCEEDED and the store must hold exactly
 * 500 points. The Worker runs the repo's wrangler.toml (max_retries 8) with 1 s → 10 s backoff, a
 * retry budget of about a minute, which covers the outage.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Api } from '../helpers/api.js';
import type { ProblemBody } from '../helpers/api.js';
import { recordFigures } from '../helpers/report.js';
import { runSuffix, useTestStack } from '../helpers/suite.js';
import { mapPool, sleep, waitUntil } from '../helpers/wait.js';

const TOTAL = 500;
const OUTAGE_MS = 30_000;
const org = `outage-${runSuffix()}`;

const suite = useTestStack({
  name: 'rel-outage',
  workerVars: { QUEUE_RETRY_BASE_SECONDS: '1', QUEUE_RETRY_MAX_SECONDS: '10' },
});

const TOPICS = ['harbour', 'glacier', 'orchard', 'railway', 'volcano', 'library', 'meadow'];
const textFor = (i: number) =>
  `Field note ${i}: the ${TOPICS[i % TOPICS.length]} looked different on day ${i % 31}`;

describe('embedder outage', () => {
  it(`stopped for 30 s during an ingest of ${TOTAL} texts: every job SUCCEEDS, ${TOTAL} points`, async () => {
    const client = await Api.forOrg(suite.stack.apiUrl, suite.stack.devJwtSecret, org);
    const ids: string[] = [];
    const statuses: number[] = [];

    // The ingest: alternating batches of 25 and groups of 10 single embeds, ~25 texts/s.
    const ingest = (async () => {
      let next = 0;
      let round = 0;
      while (next < TOTAL) {
        const started = Date.now();
        if (round++ % 2 === 0) {
          const n = Math.min(25, TOTAL - next);
          const res = await client.embedBatch({
            asset_id: `asset-${round % 5}`,
            segments: Array.from({ length: n }, (_, k) => ({
              segment_id: `seg-${next + k}`,
              text: textFor(next + k),
            })),
          });
          statuses.push(res.status);
          if (res.status === 202) ids.push(...res.body.jobs.map((j) => j.job_id));
          next += n;
        } else {
          const n = Math.min(10, TOTAL - next);
          const first = next;
          const res = await mapPool(
            Array.from({ length: n }, (_, k) => first + k),
            10,
            (i) =>
              client.embed({
                asset_id: `asset-${round % 5}`,
                segment_id: `seg-${i}`,
                text: textFor(i),
              }),
          );
          for (const r of res) {
            statuses.push(r.status);
            if (r.status === 202) ids.push(r.body.job_id);
          }
          next += n;
        }
        await sleep(Math.max(0, 700 - (Date.now() - started)));
      }
    })();

    // Stop the embedder once about a fifth of the texts are embedded.
    await waitUntil(
      'a fifth of the ingest to be embedded',
      async () => (await suite.db.statusCounts(ids)).SUCCEEDED >= TOTAL / 5,
      60_000,
      100,
    );
    const stoppedAt = Date.now();
    await suite.stack.stopEmbedder();
    const atStop = await suite.db.statusCounts(ids);

    // Meanwhile: the API keeps accepting work; readiness and search report the dependency.
    await sleep(2000);
    const anon = new Api(suite.stack.apiUrl);
    const ready = await anon.request<{ status: string; checks: { embedder: string } }>(
      'GET',
      '/readyz',
    );
    expect(ready.status).toBe(503);
    expect(ready.body.checks.embedder).toBe('error');
    const search = await client.search({ query_text: 'harbour' });
    expect(search.status).toBe(503);
    expect((search.body as unknown as ProblemBody).code).toBe('dependency_unavailable');
    expect(search.headers.get('retry-after')).toBeTruthy();

    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));
    const duringOutage = await suite.db.statusCounts(ids);
    const restartAt = Date.now();
    await suite.stack.startEmbedder();
    const restartMs = Date.now() - restartAt;
    await ingest;

    expect(statuses.every((s) => s === 202)).toBe(true);
    expect(ids).toHaveLength(TOTAL);
    const counts = await suite.db.waitTerminal(ids, 180_000);
    const recoveredMs = Date.now() - restartAt;
    expect(counts).toEqual({ QUEUED: 0, PROCESSING: 0, SUCCEEDED: TOTAL, FAILED: 0 });

    const points = await suite.vectors.points(org);
    expect(points).toHaveLength(TOTAL);
    expect(new Set(points.map((p) => p.segment_id)).size).toBe(TOTAL);
    expect(new Set(points.map((p) => p.job_id))).toEqual(new Set(ids));

    const [att] = await suite.db.query<{ max: number; retried: string; total: string }>(
      `SELECT max(attempts) AS max, count(*) FILTER (WHERE attempts > 1) AS retried,
              sum(attempts) AS total FROM jobs WHERE org_id = $1`,
      [org],
    );
    expect(att!.max).toBeGreaterThan(1);
    const log = fs.readFileSync(suite.stack.logs.worker, 'utf8');
    expect(log).not.toContain('to dead letter queue');
    expect(
      await suite.db.query(
        'SELECT 1 FROM outbox o JOIN jobs j ON j.id = o.job_id WHERE j.org_id = $1',
        [org],
      ),
    ).toEqual([]);

    recordFigures('embedder_outage', {
      texts: TOTAL,
      embedder_down_ms: restartAt - stoppedAt + restartMs,
      succeeded_before_stop: atStop.SUCCEEDED,
      succeeded_at_restart: duringOutage.SUCCEEDED,
      embedder_restart_ms: restartMs,
      all_terminal_after_restart_ms: recoveredMs,
      jobs_retried: Number(att!.retried),
      max_attempts: att!.max,
      deliveries: Number(att!.total),
      succeeded: counts.SUCCEEDED,
      failed: counts.FAILED,
      points: points.length,
    });
  });
});
