/**
 * Reliability of the write path through the real stack (embedded PostgreSQL, the embedder with the
 * real model and LanceDB, wrangler dev with the local Queue): concurrent duplicates, a crash between
 * commit and Queue send, out-of-order delivery, a poison item, a vector-store outage, and a PII
 * canary sent through all of it.
 *
 * Two Workers share one database and embedder: `main` sends after commit as usual; `quiet` runs with
 * the fault switch QUEUE_SEND_DISABLED=true (every post-commit send is dropped, as if the Worker died
 * right after COMMIT) and a 1 s cron, so only its outbox sweep delivers. The main Worker runs a copy
 * of wrangler.toml with max_retries=3 and 1 s/4 s backoff, so the dead-letter path takes seconds.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KeywordTerms, analyze } from '../../embedder/src/core/keywords.js';
import { Api } from '../helpers/api.js';
import type { JobBody, ProblemBody } from '../helpers/api.js';
import { DbProbe } from '../helpers/db.js';
import { recordFigures } from '../helpers/report.js';
import {
  explainReloads,
  filesContaining,
  filesUnder,
  startTestStack,
  startWorkerOnly,
} from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';
import { VectorProbe } from '../helpers/vectors.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const MAX_RETRIES = 3;
const run = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
/** A string that must never be written anywhere but the outbox and the Queue. */
const CANARY = `okapi${run}canary`;

let main: TestStack;
let quiet: TestStack;
let refused: TestStack;
let db: DbProbe;
let vectors: VectorProbe;
let mainWorkerSettings: Record<string, string>;

const org = (name: string) => `${name}-${run}`;
/** A term id's 4 bytes as a store may write them: little-endian, then big-endian. */
const termIdBytes = (id: number): Buffer[] => {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(id);
  const be = Buffer.alloc(4);
  be.writeUInt32BE(id);
  return [le, be];
};
const api = (s: TestStack, orgId: string) => Api.forOrg(s.apiUrl, s.devJwtSecret, orgId);

beforeAll(async () => {
  mainWorkerSettings = {
    QUEUE_RETRY_BASE_SECONDS: '1',
    QUEUE_RETRY_MAX_SECONDS: '4',
  };
  main = await startTestStack({
    name: 'rel-delivery',
    maxRetries: MAX_RETRIES,
    embedderFaults: true,
    workerVars: mainWorkerSettings,
  });
  db = new DbProbe(main.databaseUrl);
  vectors = new VectorProbe(main.vectorDataDir!);
  [quiet, refused] = await Promise.all([
    startWorkerOnly(main, {
      name: 'rel-quiet',
      cronIntervalMs: 1000,
      workerVars: { QUEUE_SEND_DISABLED: 'true', OUTBOX_SWEEP_AGE_SECONDS: '4' },
    }),
    // The same switch in production must be refused: every request answers 500 misconfigured.
    startWorkerOnly(main, {
      name: 'rel-refused',
      workerReady: (res) => res.status > 0,
      workerVars: {
        ENVIRONMENT: 'production',
        AUTH_PROVIDER: 'jwks',
        AUTH_JWKS_URL: 'http://127.0.0.1:9/.well-known/jwks.json',
        AUTH_ISSUER: 'https://issuer.invalid/',
        AUTH_AUDIENCE: 'heimdex',
        QUEUE_SEND_DISABLED: 'true',
      },
    }),
  ]);
}, 240_000);

afterAll(async () => {
  await db?.close();
  await Promise.all([quiet?.dispose(), refused?.dispose()]);
  await main?.dispose();
}, 60_000);

beforeEach(({ onTestFailed }) => explainReloads(onTestFailed, () => [main, quiet]));

async function jobRow(id: string) {
  const [row] = await db.query<{
    status: string;
    attempts: number;
    seq: string;
    error: { code: string; message: string } | null;
  }>('SELECT status, attempts, seq, error FROM jobs WHERE id = $1', [id]);
  return row!;
}

describe('concurrency', () => {
  it('100 concurrent identical embeds create exactly one job and one point', async () => {
    const o = org('dup');
    const client = await api(main, o);
    const item = { asset_id: 'a1', segment_id: 's1', text: 'Concurrent duplicates are one job' };
    const before = await db.jobCount(o);
    const t0 = Date.now();
    const responses = await Promise.all(Array.from({ length: 100 }, () => client.embed(item)));
    const answeredMs = Date.now() - t0;

    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(99);
    const ids = new Set(responses.map((r) => r.body.job_id));
    expect(ids.size).toBe(1);
    expect((await db.jobCount(o)) - before).toBe(1);

    const [jobId] = [...ids];
    expect((await client.waitForJob(jobId!, 30_000)).status).toBe('SUCCEEDED');
    expect(await vectors.count(o)).toBe(1);
    recordFigures('concurrent_identical', {
      requests: 100,
      jobs: 1,
      points: 1,
      answered_ms: answeredMs,
    });
  });

  it('200 concurrent distinct embeds: 200 jobs, all SUCCEEDED, 200 points, no duplicates', async () => {
    const o = org('fan');
    const client = await api(main, o);
    const t0 = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        client.embed({
          asset_id: `asset-${i % 7}`,
          segment_id: `seg-${i}`,
          text: `Distinct text number ${i} about ${['rivers', 'mountains', 'cities', 'forests'][i % 4]}`,
        }),
      ),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(202));
    const ids = responses.map((r) => r.body.job_id);
    expect(new Set(ids).size).toBe(200);
    expect(await db.jobCount(o)).toBe(200);

    const answeredMs = Date.now() - t0;
    const counts = await db.waitTerminal(ids, 60_000);
    const terminalMs = Date.now() - t0;
    expect(counts).toEqual({ QUEUED: 0, PROCESSING: 0, SUCCEEDED: 200, FAILED: 0 });

    const points = await vectors.points(o);
    expect(points).toHaveLength(200);
    expect(new Set(points.map((p) => p.id)).size).toBe(200);
    expect(new Set(points.map((p) => `${p.asset_id}/${p.segment_id}`)).size).toBe(200);
    expect(new Set(points.map((p) => p.job_id))).toEqual(new Set(ids));
    recordFigures('concurrent_distinct', {
      requests: 200,
      jobs: 200,
      succeeded: counts.SUCCEEDED,
      points: points.length,
      answered_ms: answeredMs,
      all_terminal_ms: terminalMs,
    });
  });
});

describe('crash after commit (QUEUE_SEND_DISABLED)', () => {
  it('a send dropped after commit is delivered by the cron sweep and the job SUCCEEDS', async () => {
    const client = await api(quiet, org('crash'));
    const submittedAt = Date.now();
    const res = await client.embed({
      asset_id: 'a1',
      segment_id: 's1',
      text: 'Committed but never sent to the queue',
    });
    expect(res.status).toBe(202);
    const jobId = res.body.job_id;

    // Committed with its outbox row; the send after commit was dropped.
    const [ob] = await db.query<{
      sent_at: Date | null;
      send_attempts: number;
      last_error: string;
    }>('SELECT sent_at, send_attempts, last_error FROM outbox WHERE job_id = $1', [jobId]);
    expect(ob).toMatchObject({ sent_at: null, send_attempts: 1, last_error: 'queue_send_failed' });
    await sleep(2000);
    expect(await jobRow(jobId)).toMatchObject({ status: 'QUEUED', attempts: 0 });

    // The sweep (cron every 1 s, rows older than 4 s) sends it; the job completes.
    const job = await client.waitForJob(jobId, 30_000);
    recordFigures('crash_after_commit', {
      send_dropped: true,
      delivered_by: 'cron sweep',
      sweep_age_s: 4,
      succeeded_after_ms: Date.now() - submittedAt,
    });
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempts).toBe(1);
    expect(await db.query('SELECT 1 FROM outbox WHERE job_id = $1', [jobId])).toEqual([]);
    expect(await vectors.count(org('crash'))).toBe(1);
  });

  it('refuses the switch when ENVIRONMENT=production (500 misconfigured, nothing written)', async () => {
    const before = await db.counts();
    const anon = new Api(refused.apiUrl);
    const health = await anon.request<ProblemBody>('GET', '/healthz');
    expect(health.status).toBe(500);
    expect(health.headers.get('content-type')).toContain('application/problem+json');
    expect(health.body).toMatchObject({ code: 'misconfigured', status: 500 });
    // The detail does not leak configuration; the log names the refused setting, and only it.
    expect(health.body.detail).not.toContain('QUEUE_SEND_DISABLED');

    const embed = await anon.raw<ProblemBody>('POST', '/vectors/embed', {
      headers: { 'content-type': 'application/json', authorization: 'Bearer x.y.z' },
      body: JSON.stringify({ asset_id: 'a', segment_id: 's', text: 'never stored' }),
    });
    expect(embed.status).toBe(500);
    expect(embed.body.code).toBe('misconfigured');
    expect(await db.counts()).toEqual(before);

    const issues = await waitUntil(
      'the configuration error in the Worker log',
      () => {
        for (const line of fs.readFileSync(refused.logs.worker, 'utf8').split('\n')) {
          const m = /\{"ts".*"msg":"configuration invalid".*\}/.exec(line);
          if (m) return (JSON.parse(m[0]) as { issues: string }).issues;
        }
        return undefined;
      },
      5000,
    );
    expect(issues).toBe('QUEUE_SEND_DISABLED: fault injection cannot be enabled in production');
  });
});

describe('reordering', () => {
  it('two texts for one segment delivered newest-first: the stored vector is the newest', async () => {
    const o = org('order');
    const older = 'Bananas are a yellow tropical fruit';
    const newer = 'Submarines explore the deep ocean floor';
    const seg = { asset_id: 'doc', segment_id: 'intro' };

    // The older text commits first but its send is dropped (quiet Worker): only the sweep delivers it.
    const a = await (await api(quiet, o)).embed({ ...seg, text: older });
    expect(a.status).toBe(202);
    // The newer text is sent at once and completes first.
    const client = await api(main, o);
    const b = await client.embed({ ...seg, text: newer });
    expect(b.status).toBe(202);
    const jobB = await client.waitForJob(b.body.job_id, 30_000);
    expect(jobB).toMatchObject({ status: 'SUCCEEDED', result: { applied: true } });
    const rowA = await jobRow(a.body.job_id);
    expect(rowA).toMatchObject({ status: 'QUEUED', attempts: 0 });
    expect(Number(rowA.seq)).toBeLessThan(Number((await jobRow(b.body.job_id)).seq));

    // Then the sweep delivers the older one: it completes but does not overwrite.
    const jobA = await client.waitForJob(a.body.job_id, 30_000);
    expect(jobA).toMatchObject({ status: 'SUCCEEDED', result: { applied: false } });
    expect(jobA.result!.point_id).toBe(jobB.result!.point_id);

    const points = await vectors.points(o);
    expect(points).toHaveLength(1);
    expect(points[0]).toMatchObject({ id: jobB.result!.point_id, job_id: b.body.job_id });
    const hitNew = await client.search({ query_text: newer, ...seg, mode: 'dense' });
    expect(hitNew.body.results[0]!.score).toBeGreaterThan(0.99);
    const hitOld = await client.search({ query_text: older, ...seg, mode: 'dense' });
    expect(hitOld.body.results[0]!.score).toBeLessThan(0.9);
  });
});

/** Samples a job until it is terminal: every change of attempts, with the time it was seen. */
async function traceJob(client: Api, id: string, timeoutMs: number) {
  const seen: Array<{ at: number; attempts: number; status: string; code?: string }> = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await client.job(id);
    const last = seen.at(-1);
    if (!last || last.attempts !== body.attempts || last.status !== body.status) {
      seen.push({
        at: Date.now(),
        attempts: body.attempts,
        status: body.status,
        code: body.error?.code,
      });
    }
    if (body.status === 'SUCCEEDED' || body.status === 'FAILED') return { job: body, seen };
    if (Date.now() > deadline) throw new Error(`job ${id} not terminal: ${JSON.stringify(seen)}`);
    await sleep(100);
  }
}

describe('poison item', () => {
  it('is retried with backoff, dead-lettered and FAILED with a reason; its batch-mates SUCCEED', async () => {
    const o = org('poison');
    const client = await api(main, o);
    const prefix = `poison-${run}-`;
    main.setEmbedderFaults({ reject_segment_prefix: prefix });
    try {
      const res = await client.embedBatch({
        asset_id: 'book',
        segments: [
          { segment_id: 'p1', text: 'The first healthy paragraph' },
          { segment_id: `${prefix}1`, text: 'The embedder always rejects this one' },
          { segment_id: 'p2', text: 'The second healthy paragraph' },
          { segment_id: 'p3', text: 'The third healthy paragraph' },
        ],
      });
      expect(res.status).toBe(202);
      const [j1, poison, j2, j3] = res.body.jobs.map((j) => j.job_id);
      const started = Date.now();
      const { job, seen } = await traceJob(client, poison!, 60_000);
      const tookMs = Date.now() - started;

      for (const id of [j1!, j2!, j3!]) {
        expect((await client.job(id)).body.status).toBe('SUCCEEDED');
      }
      expect(job.status).toBe('FAILED');
      expect(job.attempts).toBe(MAX_RETRIES + 1);
      expect(job.error).toEqual({
        code: 'retries_exhausted',
        message: `gave up after ${MAX_RETRIES + 1} delivery attempts; last error: injected_fault`,
      });
      expect(job.result).toBeNull();
      // While it was being retried, the job showed the embedder's reason.
      expect(seen.some((s) => s.status !== 'FAILED' && s.code === 'injected_fault')).toBe(true);

      // Backoff: the gaps between deliveries grow (1 s, 2 s, then 3–4 s with jitter, capped at 4).
      const firstSeen = (n: number) => seen.find((s) => s.attempts >= n)!.at;
      const gaps = [2, 3, 4].map((n) => firstSeen(n) - firstSeen(n - 1));
      expect(gaps[0]!).toBeGreaterThanOrEqual(700);
      expect(gaps[1]!).toBeGreaterThan(gaps[0]! + 300);
      expect(gaps[2]!).toBeGreaterThan(gaps[0]! + 1000);
      expect(await vectors.count(o)).toBe(3);
      recordFigures('poison_item', {
        max_retries: MAX_RETRIES,
        attempts: job.attempts,
        delivery_gaps_ms: gaps,
        failed_after_ms: tookMs,
        reason: job.error,
        batch_mates_succeeded: 3,
      });
    } finally {
      main.setEmbedderFaults({});
    }
  });
});

describe('vector store outage', () => {
  it('jobs are retried while the store is down and nothing is lost once it clears', async () => {
    const o = org('store');
    const client = await api(main, o);
    main.setEmbedderFaults({ store_unavailable: true });
    const faultOn = Date.now();
    let outageStarted = 0;
    let ids: string[];
    try {
      const res = await client.embedBatch({
        asset_id: 'manual',
        segments: Array.from({ length: 20 }, (_, i) => ({
          segment_id: `s${i}`,
          text: `Chapter ${i} of the manual explains ${['pumps', 'valves', 'gauges'][i % 3]}`,
        })),
      });
      expect(res.status).toBe(202);
      ids = res.body.jobs.map((j) => j.job_id);

      // Every job has been tried and sent back for retry with the store's reason.
      await waitUntil(
        'every job to fail a delivery on the store',
        async () => {
          const rows = await db.query<{ n: string }>(
            `SELECT count(*) AS n FROM jobs WHERE id = ANY($1::uuid[]) AND attempts >= 1
             AND status = 'QUEUED' AND error->>'code' = 'embedder_unavailable'`,
            [ids],
          );
          return Number(rows[0]!.n) === ids.length;
        },
        15_000,
        100,
      );
      outageStarted = Date.now();
      // Search is a clean, retryable 503 meanwhile.
      const search = await client.search({ query_text: 'pumps' });
      expect(search.status).toBe(503);
      expect(search.headers.get('retry-after')).toBeTruthy();
      expect((search.body as unknown as ProblemBody).code).toBe('dependency_unavailable');
      await sleep(1500);
    } finally {
      main.setEmbedderFaults({});
    }
    const cleared = Date.now();
    const counts = await db.waitTerminal(ids, 30_000);
    expect(counts.SUCCEEDED).toBe(20);
    const attempts = await db.query<{ attempts: number }>(
      'SELECT attempts FROM jobs WHERE id = ANY($1::uuid[])',
      [ids],
    );
    expect(Math.min(...attempts.map((a) => a.attempts))).toBeGreaterThanOrEqual(2);
    expect(await vectors.count(o)).toBe(20);
    recordFigures('store_outage', {
      jobs: 20,
      store_down_ms: cleared - faultOn,
      all_failed_a_delivery_after_ms: outageStarted - faultOn,
      all_terminal_after_clear_ms: Date.now() - cleared,
      attempts_min: Math.min(...attempts.map((a) => a.attempts)),
      attempts_max: Math.max(...attempts.map((a) => a.attempts)),
      succeeded: counts.SUCCEEDED,
      points: 20,
    });
  });

  it('a chunked segment rewritten across a store outage ends as the newest text alone', async () => {
    const o = org('chunks');
    const client = await api(main, o);
    const sentence = (i: number) =>
      `Step ${i} of the procedure checks the ${['pump', 'valve', 'gauge'][i % 3]} seal again.`;
    const long = Array.from({ length: 120 }, (_, i) => sentence(i)).join(' ');
    const first = await client.embed({ asset_id: 'proc', segment_id: 's1', text: long });
    const firstJob = await client.waitForJob(first.body.job_id, 60_000);
    expect(firstJob.status).toBe('SUCCEEDED');
    expect(firstJob.result!.chunk_count).toBeGreaterThan(2);
    expect(await vectors.count(o)).toBe(firstJob.result!.chunk_count);

    // The rewrite (one chunk) fails its deliveries while the store is down, then lands.
    main.setEmbedderFaults({ store_unavailable: true });
    let id: string;
    try {
      const res = await client.embed({ asset_id: 'proc', segment_id: 's1', text: sentence(0) });
      id = res.body.job_id;
      await waitUntil(
        'the rewrite to fail a delivery on the store',
        async () => (await client.job(id)).body.attempts >= 1,
        15_000,
        100,
      );
    } finally {
      main.setEmbedderFaults({});
    }
    const job = await client.waitForJob(id, 60_000);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.result!.chunk_count).toBe(1);
    // No chunk of the old text is left: the segment is the new job's one point.
    const points = await vectors.points(o);
    expect(points.map((p) => [p.segment_id, p.job_id])).toEqual([['s1', id]]);
  });
});

describe('PII canary', () => {
  it('never appears in any log, Postgres row, vector store file or /metrics', async () => {
    const o = org('pii');
    const client = await api(main, o);
    const viaSweep = await api(quiet, o);
    const text = (k: string) => `Please call ${CANARY} about ${k}`;
    const prefix = `pii-poison-${run}-`;
    const jobIds: string[] = [];
    let requestId = '';
    main.setEmbedderFaults({ reject_segment_prefix: prefix });
    try {
      // Accepted paths: single, batch (with one item the embedder rejects), the sweep, a duplicate.
      const single = await client.embed({ asset_id: 'pii', segment_id: 'single', text: text('a') });
      requestId = single.headers.get('x-request-id')!;
      const again = await client.embed({ asset_id: 'pii', segment_id: 'single', text: text('a') });
      expect([single.status, again.status]).toEqual([202, 200]);
      const batch = await client.embedBatch({
        asset_id: 'pii',
        segments: [
          { segment_id: 'b1', text: text('b') },
          { segment_id: `${prefix}1`, text: text('c') },
        ],
      });
      const swept = await viaSweep.embed({ asset_id: 'pii', segment_id: 'swept', text: text('d') });
      jobIds.push(single.body.job_id, ...batch.body.jobs.map((j) => j.job_id), swept.body.job_id);

      // Refused paths: every one of these carries the canary in the body.
      const refusedCases: Array<[string, string, number]> = [
        [
          '/vectors/embed',
          JSON.stringify({ asset_id: 'a', segment_id: 's', text: text('x').repeat(2000) }),
          413,
        ],
        [
          '/vectors/embed',
          JSON.stringify({ asset_id: 'a', segment_id: 's', text: `${text('nul')}\u0000` }),
          400,
        ],
        [
          '/vectors/embed',
          JSON.stringify({ asset_id: 'a', segment_id: 's', text: 'x', note: CANARY }),
          400,
        ],
        ['/vectors/embed', `{"asset_id":"a","segment_id":"s","text":"${CANARY}`, 400],
        ['/vectors/search', JSON.stringify({ query_text: text('q'), limit: 0 }), 400],
        [
          '/vectors/embed/batch',
          JSON.stringify({ segments: [{ segment_id: 's', text: text('y') }] }),
          400,
        ],
      ];
      for (const [route, body, status] of refusedCases) {
        const res = await client.raw('POST', route, {
          headers: { 'content-type': 'application/json' },
          body,
        });
        expect(res.status, `${route} ${body.slice(0, 60)}`).toBe(status);
        expect(JSON.stringify(res.body)).not.toContain(CANARY);
      }
      // Searches, on both Workers, and one while the store is down (503).
      for (const c of [client, viaSweep]) {
        const found = await c.search({ query_text: text('search'), limit: 5 });
        expect(found.status).toBe(200);
        expect(JSON.stringify(found.body)).not.toContain(CANARY);
      }
      main.setEmbedderFaults({ reject_segment_prefix: prefix, store_unavailable: true });
      await sleep(400);
      expect((await client.search({ query_text: text('outage') })).status).toBe(503);
      main.setEmbedderFaults({ reject_segment_prefix: prefix });

      const jobs = await Promise.all(jobIds.map((id) => client.waitForJob(id, 60_000)));
      expect(jobs.map((j: JobBody) => j.status)).toEqual([
        'SUCCEEDED',
        'SUCCEEDED',
        'FAILED',
        'SUCCEEDED',
      ]);
    } finally {
      main.setEmbedderFaults({});
    }
    await sleep(1000); // let the processes flush their logs

    // Logs of every process of every stack (embedder, wrangler/workerd, postgres, wrangler's own).
    const logDirs = [main.logDir, quiet.logDir, refused.logDir];
    const logFiles = logDirs.flatMap((d) => filesUnder(d));
    expect(logFiles.length).toBeGreaterThanOrEqual(5);
    // The scan reads real logs: the Worker logged the requests above (by id, not by content).
    expect(fs.readFileSync(main.logs.worker, 'utf8')).toContain(requestId);
    for (const d of logDirs) expect(filesContaining(d, CANARY)).toEqual([]);

    // Every row of every table, once the jobs are terminal.
    const tables = await db.dumpAllTables();
    expect([...tables.keys()]).toEqual(expect.arrayContaining(['public.jobs', 'public.outbox']));
    expect(tables.get('public.jobs')).toContain(jobIds[0]);
    for (const [name, dump] of tables) expect(dump, name).not.toContain(CANARY);

    // The vector store's files, byte for byte; the asset id is found there, so the scan sees data.
    const vectorDir = main.vectorDataDir!;
    expect(filesContaining(vectorDir, jobIds[0]!).length).toBeGreaterThan(0);
    expect(filesContaining(vectorDir, CANARY)).toEqual([]);
    // The keyword index holds the canary word's id keyed for this org (found, so the scan reads
    // the index), never an unkeyed hash of it (whole, hex, or its first 4 bytes as an id). Ids are
    // looked for in both byte orders: LanceDB writes them little-endian, Qdrant's write-ahead log
    // (CBOR) big-endian.
    const [term] = analyze(CANARY);
    const unkeyed = createHash('sha256')
      .update(term as string)
      .digest();
    const [keyed] = new KeywordTerms(main.keywordIndexKey).document(o, CANARY).ids;
    const storeFiles = filesUnder(vectorDir);
    const holds = (bytes: Buffer) => storeFiles.filter((f) => f.bytes.includes(bytes));
    expect(termIdBytes(keyed as number).some((b) => holds(b).length > 0)).toBe(true);
    const unkeyedForms = [
      unkeyed,
      Buffer.from(unkeyed.toString('hex')),
      ...termIdBytes(unkeyed.readUInt32LE(0)),
    ];
    for (const needle of unkeyedForms) expect(holds(needle).map((f) => f.file)).toEqual([]);

    // The embedder's metrics.
    const metrics = await fetch(`${main.embedderUrl}/metrics`, {
      headers: { authorization: `Bearer ${main.embedderToken}` },
    });
    expect(metrics.status).toBe(200);
    const exposition = await metrics.text();
    expect(exposition).toContain('heimdex_');
    expect(exposition).not.toContain(CANARY);
    // Nor in the persisted state of wrangler's local runtime.
    for (const s of [main, quiet]) {
      expect(filesContaining(path.join(s.dataDir, 'wrangler'), CANARY)).toEqual([]);
    }
    recordFigures('pii_canary', {
      paths:
        'embed, duplicate embed, batch, poison item (FAILED), cron sweep, 6 refused requests, 3 searches incl. 503',
      log_files_scanned: logFiles.length,
      log_bytes_scanned: logFiles.reduce((n, f) => n + f.bytes.length, 0),
      tables_scanned: tables.size,
      vector_store_files_scanned: filesUnder(vectorDir).length,
      metrics_bytes_scanned: exposition.length,
      found: 0,
    });
  });
});
