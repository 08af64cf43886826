/**
 * End-to-end: two embedder replicas sharing one Qdrant behind a round-robin load balancer, with one
 * Worker (and its queue consumer) in front. Writes for one segment reach different replicas, and
 * overwrite, latest-wins and delete must hold through the store alone: neither replica knows what
 * the other wrote.
 *
 * LanceDB (the embedded default) is one process's store, so this needs a live Qdrant:
 * HEIMDEX_TEST_QDRANT_URL=http://127.0.0.1:6333 (see test/helpers/qdrant.ts). Without it the
 * suite is skipped, and says so.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitForHttp } from '../../scripts/lib/procs.js';
import type { ManagedProcess } from '../../scripts/lib/procs.js';
import { loadDevSecrets } from '../../scripts/lib/secrets.js';
import { spawnEmbedder, startStack } from '../../scripts/lib/stack.js';
import type { Stack } from '../../scripts/lib/stack.js';
import { Api } from '../helpers/api.js';
import type { JobBody } from '../helpers/api.js';
import { startBalancer } from '../helpers/balancer.js';
import { REWRITTEN, expectRewrittenFound, rewriteSegment } from '../helpers/e2e.js';
import type { Balancer, BalancedRequest } from '../helpers/balancer.js';
import { assertTestModel } from '../helpers/paths.js';
import { QdrantProbe, dropCollection, testQdrant } from '../helpers/qdrant.js';
import { tempDir, testEnv } from '../helpers/stack.js';

const qdrant = testQdrant();
if (!qdrant) {
  console.warn(
    'test/e2e/replicas.test.ts skipped: two embedder replicas need a shared Qdrant (LanceDB is ' +
      'single-process); set HEIMDEX_TEST_QDRANT_URL=http://host:6333 to run it.',
  );
}

let dataDir: string;
let stack: Stack | undefined;
let balancer: Balancer | undefined;
const replicas: ManagedProcess[] = [];
let collection: string;
let probe: QdrantProbe;
let api: Api;
const run = Date.now().toString(36);
const org = `acme-${run}`;

type AppliedJob = JobBody & {
  result: (NonNullable<JobBody['result']> & { applied: boolean }) | null;
};

/** The /internal/embed calls that carried `segment`, in arrival order. */
const callsFor = (segment: string): BalancedRequest[] =>
  (balancer?.log ?? []).filter(
    (r) => r.path === '/internal/embed' && r.items.some((i) => i.segment_id === segment),
  );

const seqOf = (r: BalancedRequest, segment: string): number =>
  r.items.find((i) => i.segment_id === segment)?.seq ?? Number.NaN;

describe.skipIf(!qdrant)(
  'two embedder replicas behind a load balancer, sharing one Qdrant (skipped without HEIMDEX_TEST_QDRANT_URL: LanceDB is single-process)',
  () => {
    beforeAll(async () => {
      assertTestModel();
      dataDir = tempDir('replicas');
      fs.mkdirSync(path.join(dataDir, 'logs'), { recursive: true });
      const env = testEnv();
      collection = env.QDRANT_COLLECTION as string;
      probe = new QdrantProbe(qdrant!, collection);
      const secrets = loadDevSecrets(dataDir, env);
      // Both replicas start at once: both open (and may both try to create) the collection.
      const urls = await Promise.all(
        ['a', 'b'].map(async (name) => {
          const port = await freePort();
          const proc = spawnEmbedder({
            env,
            port,
            token: secrets.embedderToken,
            keywordIndexKey: secrets.keywordIndexKey,
            vectorDataDir: path.join(dataDir, `vectors-${name}`),
            logFile: path.join(dataDir, 'logs', `embedder-${name}.log`),
            name: `embedder-${name}`,
          });
          replicas.push(proc);
          const url = `http://127.0.0.1:${port}`;
          await waitForHttp(`${url}/readyz`, proc, 180_000);
          return url;
        }),
      );
      balancer = await startBalancer(urls);
      // The Worker's embedder is the balancer. One item per embedder call, so that the items of
      // one queue batch are spread over both replicas, concurrently.
      stack = await startStack({
        dataDir,
        env: { ...env, EMBEDDER_URL: balancer.url },
        cronIntervalMs: 0,
        workerVars: { EMBEDDER_CALL_ITEMS: '1' },
      });
      api = await Api.forOrg(stack.apiUrl, stack.devJwtSecret, org);
    }, 300_000);

    afterAll(async () => {
      await stack?.stop();
      await balancer?.close();
      for (const r of replicas) await r.stop();
      if (qdrant && collection && process.env.KEEP_TEST_DATA !== '1') {
        await dropCollection(qdrant, collection).catch(() => undefined);
      }
      if (dataDir && process.env.KEEP_TEST_DATA !== '1') {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }, 60_000);

    /** Searches through both replicas (two calls in a row go to both) and checks they agree. */
    async function searchBoth(body: Parameters<typeof api.search>[0]) {
      const first = await api.search(body);
      const second = await api.search(body);
      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      const searches = balancer!.log.filter((r) => r.path === '/internal/search').slice(-2);
      expect(new Set(searches.map((r) => r.target)).size).toBe(2);
      const view = (r: typeof first) => r.body.results.map((x) => [x.point_id, x.score.toFixed(4)]);
      expect(view(second)).toEqual(view(first));
      return first.body;
    }

    it('overwrites a segment when its next job reaches the other replica', async () => {
      const { first, second } = await rewriteSegment(api);
      expect((second as AppliedJob).result?.applied).toBe(true);

      const calls = callsFor('intro');
      expect(calls).toHaveLength(2);
      expect(calls[0]?.target).not.toBe(calls[1]?.target);

      expectRewrittenFound(await searchBoth(REWRITTEN), first.result?.point_id);
      expect(await probe.count(org)).toBe(1);
    });

    it('keeps the newer vector when the older job of the same segment is written last, by the other replica', async () => {
      const segment = 'race';
      // Once both writes for this segment have reached the balancer, the newer one goes on and
      // the older one is held until the newer one has been answered: the older then lands on
      // its replica after the newer landed on the other (8 s at most, then it goes on anyway).
      balancer!.beforeForward = async (req) => {
        const seq = seqOf(req, segment);
        if (Number.isNaN(seq)) return;
        const deadline = Date.now() + 8_000;
        while (callsFor(segment).length < 2 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
        }
        if (!callsFor(segment).some((r) => seqOf(r, segment) > seq)) return;
        await balancer!
          .answered((r) => seqOf(r, segment) > seq, Math.max(1, deadline - Date.now()))
          .catch(() => undefined);
      };
      let jobs: AppliedJob[];
      try {
        // One request, two jobs for the same segment: one queue batch, two concurrent embedder
        // calls (EMBEDDER_CALL_ITEMS=1), one to each replica.
        const res = await api.embedBatch({
          asset_id: 'race-doc',
          segments: [
            { segment_id: segment, text: 'The lighthouse keeper polished the great lens' },
            { segment_id: segment, text: 'Volcanic ash closed every airport in the region' },
          ],
        });
        expect(res.status).toBe(202);
        jobs = (await Promise.all(
          res.body.jobs.map((j) => api.waitForJob(j.job_id)),
        )) as AppliedJob[];
      } finally {
        balancer!.beforeForward = null;
      }
      expect(jobs.map((j) => j.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);

      const calls = callsFor(segment);
      expect(calls).toHaveLength(2);
      const [older, newer] = [...calls].sort((x, y) => seqOf(x, segment) - seqOf(y, segment));
      expect(older!.target).not.toBe(newer!.target);
      // The race happened as arranged: the older write was sent after the newer was answered.
      expect(older!.forwardedAt!).toBeGreaterThanOrEqual(newer!.answeredAt!);

      const jobOf = (r: BalancedRequest) =>
        jobs.find((j) => j.job_id === r.items.find((i) => i.segment_id === segment)?.job_id)!;
      expect(jobOf(newer!).result?.applied).toBe(true);
      expect(jobOf(older!).result?.applied).toBe(false);

      const texts = [
        'The lighthouse keeper polished the great lens',
        'Volcanic ash closed every airport in the region',
      ];
      const newerText = texts[jobs.indexOf(jobOf(newer!))]!;
      const found = await searchBoth({
        query_text: newerText,
        asset_id: 'race-doc',
        mode: 'dense',
      });
      expect(found.results).toHaveLength(1);
      expect(found.results[0]?.score).toBeGreaterThan(0.99);
      const stored = (await probe.points(org)).filter((p) => p.segment_id === segment);
      expect(stored).toHaveLength(1);
      expect(stored[0]?.seq).toBe(seqOf(newer!, segment));
      expect(stored[0]?.job_id).toBe(jobOf(newer!).job_id);
    });

    it('deletes a point and an asset through one replica, and neither replica finds them', async () => {
      const res = await api.embedBatch({
        asset_id: 'gone',
        segments: [
          { segment_id: 'g1', text: 'Penguins huddle together through the polar winter' },
          { segment_id: 'g2', text: 'A violinist tuned her instrument before the concert' },
          { segment_id: 'g3', text: 'The bakery sells sourdough bread every morning' },
        ],
      });
      const jobs = await Promise.all(res.body.jobs.map((j) => api.waitForJob(j.job_id)));
      expect(jobs.map((j) => j.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
      // The asset's three writes went to both replicas.
      const targets = new Set(['g1', 'g2', 'g3'].flatMap((s) => callsFor(s).map((r) => r.target)));
      expect(targets.size).toBe(2);
      expect((await probe.points(org)).filter((p) => p.asset_id === 'gone')).toHaveLength(3);

      const byPoint = await api.deletePoint(jobs[0]!.result!.point_id);
      expect(byPoint.status).toBe(200);
      expect(byPoint.body.deleted).toBe(1);
      const afterPoint = await searchBoth({
        query_text: 'Penguins huddle together through the polar winter',
        asset_id: 'gone',
      });
      expect(afterPoint.results.map((r) => r.point_id).sort()).toEqual(
        [jobs[1]!.result!.point_id, jobs[2]!.result!.point_id].sort(),
      );

      const byAsset = await api.deleteAsset('gone');
      expect(byAsset.status).toBe(200);
      expect(byAsset.body.deleted).toBe(2);
      const afterAsset = await searchBoth({
        query_text: 'The bakery sells sourdough bread every morning',
        asset_id: 'gone',
      });
      expect(afterAsset.results).toEqual([]);
      expect((await probe.points(org)).filter((p) => p.asset_id === 'gone')).toEqual([]);

      // The same text again makes a new job, and its vector is stored again (any replica).
      const again = await api.embed({
        asset_id: 'gone',
        segment_id: 'g3',
        text: 'The bakery sells sourdough bread every morning',
      });
      expect((await api.waitForJob(again.body.job_id)).status).toBe('SUCCEEDED');
      const back = await searchBoth({
        query_text: 'The bakery sells sourdough bread every morning',
        asset_id: 'gone',
      });
      expect(back.results.map((r) => r.point_id)).toEqual([jobs[2]!.result!.point_id]);
    });
  },
);
