/**
 * Embedder outage during an ingest (full suite only): 500 texts are submitted at a steady pace;
 * once about a fifth have been embedded the embedder process is stopped for 30 s while the rest
 * keep arriving, then started again. Every job must end SUCCEEDED and the store must hold exactly
 * 500 points. The Worker runs the repo's wrangler.toml (max_retries 8) with 1 s → 10 s backoff, a
 * retry budget of about a minute, which covers the outage.
 *
 * Then a crash inside a chunked write: the embedder SIGKILLs itself (fault injection) after a
 * rewritten segment's new chunks are stored and before the old text's surplus chunks are pruned,
 * the worst moment for a segment; once it is restarted, the retried job must leave the segment
 * holding the new text's chunks alone.
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
  embedderFaults: true,
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

describe('embedder killed mid-segment', () => {
  it("SIGKILL between a rewrite's new chunks and the prune: after the retry only the new chunks remain", async () => {
    const o = `kill-${runSuffix()}`;
    const client = await Api.forOrg(suite.stack.apiUrl, suite.stack.devJwtSecret, o);
    const sentence = (i: number) =>
      `Step ${i} of the procedure checks the ${['pump', 'valve', 'gauge'][i % 3]} seal again.`;
    const text = (n: number) => Array.from({ length: n }, (_, i) => sentence(i)).join(' ');
    const first = await client.embed({ asset_id: 'proc', segment_id: 'kill-s1', text: text(150) });
    const firstJob = await client.waitForJob(first.body.job_id, 60_000);
    expect(firstJob.status).toBe('SUCCEEDED');
    const oldChunks = firstJob.result!.chunk_count!;
    expect(oldChunks).toBeGreaterThan(2);

    // The rewrite (fewer chunks) kills the embedder mid-write.
    suite.stack.setEmbedderFaults({ kill_mid_segment_prefix: 'kill-' });
    let rewrite: string;
    let mid: Awaited<ReturnType<typeof suite.vectors.points>>;
    try {
      const res = await client.embed({ asset_id: 'proc', segment_id: 'kill-s1', text: text(30) });
      expect(res.status).toBe(202);
      rewrite = res.body.job_id;
      await waitUntil(
        'the embedder to die in the segment write',
        async () => suite.stack.embedderPid() === undefined,
        60_000,
        50,
      );
      // What the crash left: the new text's chunks stored next to the old text's surplus.
      mid = await suite.vectors.points(o);
    } finally {
      suite.stack.setEmbedderFaults({});
    }
    const midNew = mid.filter((p) => p.job_id === rewrite).length;
    const midOld = mid.filter((p) => p.job_id === first.body.job_id).length;
    expect(midNew).toBeGreaterThan(0);
    expect(midOld).toBe(oldChunks - midNew);
    expect(midOld).toBeGreaterThan(0);

    const restartAt = Date.now();
    await suite.stack.startEmbedder();
    const job = await client.waitForJob(rewrite, 120_000);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempts).toBeGreaterThan(1);
    expect(job.result!.chunk_count).toBe(midNew);
    const points = await suite.vectors.points(o);
    expect(points).toHaveLength(midNew);
    expect(new Set(points.map((p) => p.job_id))).toEqual(new Set([rewrite]));
    // Search agrees: the segment is one result, of the new text's chunk count.
    const search = await client.search({
      query_text: 'the procedure checks the gauge seal',
      limit: 5,
    });
    expect(search.status, JSON.stringify(search.body)).toBe(200);
    expect(search.body.results).toHaveLength(1);
    expect(search.body.results[0]!.payload.chunk_count).toBe(midNew);
    recordFigures('embedder_killed_mid_segment', {
      old_chunks: oldChunks,
      new_chunks: midNew,
      stale_chunks_at_crash: midOld,
      attempts: job.attempts,
      terminal_after_restart_ms: Date.now() - restartAt,
    });
  });
});
