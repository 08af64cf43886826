/**
 * Load (full suite only): 5,000 embed jobs and 2,000 searches through the Worker at concurrency
 * 16, interleaved. No 5xx is allowed (429 would be an intended overload answer and is counted);
 * every job must end SUCCEEDED with exactly 5,000 points stored; the embedder's resident memory is
 * sampled from /proc/<pid>/status throughout and must stay bounded.
 */
import { describe, expect, it } from 'vitest';
import { Api } from '../helpers/api.js';
import { recordFigures } from '../helpers/report.js';
import { runSuffix, useTestStack } from '../helpers/suite.js';
import { mapPool, quantile, rssKiB } from '../helpers/wait.js';

const JOBS = 5000;
const SEARCHES = 2000;
const CONCURRENCY = 16;
/** The embedder may grow by at most this much over the run (queues, batches, store caches). */
const RSS_GROWTH_LIMIT_MIB = 512;
const org = `load-${runSuffix()}`;

const suite = useTestStack({ name: 'rel-load' });

/** A small deterministic PRNG (mulberry32), so every run sends the same texts. */
function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'river mountain city forest engine contract invoice quarterly revenue patient clinic ' +
  'dosage harbour cargo vessel satellite orbit telescope galaxy recipe flour oven butter ' +
  'guitar melody rhythm concert stadium football referee goal election ballot senate law ' +
  'court verdict appeal software server latency database index cache network router packet ' +
  'garden tomato seed harvest rain storm thunder glacier volcano desert camel oasis market ' +
  'price inflation bank loan mortgage school teacher lesson exam library novel poem author'
).split(' ');

function sentence(r: () => number, min: number, max: number): string {
  const n = min + Math.floor(r() * (max - min + 1));
  return Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]!).join(' ');
}

type Task = { kind: 'embed'; i: number } | { kind: 'search'; i: number };

describe('load', () => {
  it(`${JOBS} jobs + ${SEARCHES} searches at concurrency ${CONCURRENCY}: no 5xx, all terminal, RSS bounded`, async () => {
    const client = await Api.forOrg(suite.stack.apiUrl, suite.stack.devJwtSecret, org);
    const r = rng(42);
    const texts = Array.from({ length: JOBS }, (_, i) => `${i}: ${sentence(r, 6, 40)}`);
    const queries = Array.from({ length: SEARCHES }, () => sentence(r, 2, 8));
    // Interleave: 5 embeds, 2 searches, repeated.
    const tasks: Task[] = [];
    for (let e = 0, s = 0; e < JOBS || s < SEARCHES;) {
      for (let k = 0; k < 5 && e < JOBS; k++) tasks.push({ kind: 'embed', i: e++ });
      for (let k = 0; k < 2 && s < SEARCHES; k++) tasks.push({ kind: 'search', i: s++ });
    }

    const pid = suite.stack.embedderPid()!;
    const rss: number[] = [(await rssKiB(pid))!];
    const sampler = setInterval(() => {
      void rssKiB(pid).then((v) => v !== undefined && rss.push(v));
    }, 250);

    const statusCounts = new Map<number, number>();
    const latency = { embed: [] as number[], search: [] as number[] };
    const jobIds: string[] = [];
    const serverErrors: string[] = [];
    let searchHits = 0;
    const started = Date.now();
    try {
      await mapPool(tasks, CONCURRENCY, async (task) => {
        const t0 = performance.now();
        const res =
          task.kind === 'embed'
            ? await client.embed({
                asset_id: `asset-${task.i % 50}`,
                segment_id: `seg-${task.i}`,
                text: texts[task.i]!,
              })
            : await client.search({ query_text: queries[task.i]!, limit: 10 });
        latency[task.kind].push(performance.now() - t0);
        statusCounts.set(res.status, (statusCounts.get(res.status) ?? 0) + 1);
        if (res.status >= 500)
          serverErrors.push(`${task.kind} ${res.status} ${JSON.stringify(res.body)}`);
        if (task.kind === 'embed' && res.status === 202) {
          jobIds.push((res.body as { job_id: string }).job_id);
        }
        if (task.kind === 'search' && res.status === 200) {
          searchHits += (res.body as { results: unknown[] }).results.length;
        }
      });
      const submittedMs = Date.now() - started;
      const counts = await suite.db.waitTerminal(jobIds, 600_000);
      const drainedMs = Date.now() - started;
      // Let memory settle after the last batch, then take the end figure.
      await new Promise((res) => setTimeout(res, 2000));
      clearInterval(sampler);
      const endRss = (await rssKiB(pid))!;
      rss.push(endRss);

      expect(serverErrors.slice(0, 5)).toEqual([]);
      const unexpected = [...statusCounts.keys()].filter((s) => ![200, 202, 429].includes(s));
      expect(unexpected).toEqual([]);
      expect(jobIds).toHaveLength(JOBS);
      expect(counts).toEqual({ QUEUED: 0, PROCESSING: 0, SUCCEEDED: JOBS, FAILED: 0 });
      expect(await suite.vectors.count(org)).toBe(JOBS);
      expect(searchHits).toBeGreaterThan(0);
      const peak = Math.max(...rss);
      expect((peak - rss[0]!) / 1024).toBeLessThan(RSS_GROWTH_LIMIT_MIB);

      const ms = (v: number) => Math.round(v * 10) / 10;
      recordFigures('load', {
        jobs: JOBS,
        searches: SEARCHES,
        concurrency: CONCURRENCY,
        statuses: Object.fromEntries(statusCounts),
        submit_ms: submittedMs,
        all_terminal_ms: drainedMs,
        requests_per_s: Math.round(((JOBS + SEARCHES) / submittedMs) * 1000),
        jobs_per_s_end_to_end: Math.round((JOBS / drainedMs) * 1000),
        embed_latency_ms: {
          p50: ms(quantile(latency.embed, 0.5)),
          p95: ms(quantile(latency.embed, 0.95)),
          p99: ms(quantile(latency.embed, 0.99)),
        },
        search_latency_ms: {
          p50: ms(quantile(latency.search, 0.5)),
          p95: ms(quantile(latency.search, 0.95)),
          p99: ms(quantile(latency.search, 0.99)),
        },
        embedder_rss_mib: {
          start: Math.round(rss[0]! / 1024),
          peak: Math.round(peak / 1024),
          end: Math.round(endRss / 1024),
          samples: rss.length,
        },
        succeeded: counts.SUCCEEDED,
        points: JOBS,
      });
    } finally {
      clearInterval(sampler);
    }
  });
});
