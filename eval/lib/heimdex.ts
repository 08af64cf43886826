/**
 * Heimdex's side of the evaluation, through the public API only: the corpus goes in through
 * `POST /vectors/embed/batch` (≤ 256 segments and ≤ 1 MiB per request, a few requests in flight,
 * with the run's `chunking`), the jobs are followed to the end (`GET /batches/{batch_id}` when the
 * answer carries a batch id, else `GET /jobs/{job_id}`), then each job's result is read
 * (`GET /jobs/{job_id}`: tokens, chunks; not timed), and every query runs through
 * `POST /vectors/search` (one result per segment: the API's default grouping). Documents are
 * segments of one dataset-level asset, the segment id being the document id, so a search result
 * maps back to its document through `payload.segment_id`. Errors and progress name ids and
 * counts only, never a text.
 */
import { round, summarize } from '../../bench/lib/stats.js';
import type { Summary } from '../../bench/lib/stats.js';
import type { Chunking, SearchMode } from '../../contract/internal.js';
import { summarizeJobResults } from './chunking.js';
import type { ChunkStats, JobResultFields } from './chunking.js';
import type { Doc, Query } from './dataset.js';

export const MAX_SEGMENTS = 256;
/** Request bodies stay under this (the Worker accepts 1 MiB). */
export const MAX_BODY_BYTES = 900 * 1024;

export interface Api {
  url: string;
  token: string;
  log: (message: string) => void;
}

export interface IngestResult {
  docs: number;
  requests: number;
  /** Seconds from the first POST to the last job's completion. */
  seconds: number;
  textsPerSecond: number;
  /** Seconds spent posting (the API's acceptance rate, before the queue drains). */
  submitSeconds: number;
  /** Points written per second over `seconds` (chunks.chunks / seconds). */
  chunksPerSecond: number;
  /** The corpus as the jobs' results describe it (read after `seconds`, not timed). */
  chunks: ChunkStats;
  succeeded: number;
  failed: number;
  /** Error codes of failed jobs, with counts. */
  failedCodes: Record<string, number>;
  /** How completion was followed: the batch handle, or per-job polling. */
  waitedWith: 'batches' | 'jobs';
  retries: number;
}

export interface SearchRunResult {
  /** query id → document id → the API's score (for comparing scores with a reference). */
  scores: Map<string, Map<string, number>>;
  /** query id → document id → score. */
  run: Map<string, Map<string, number>>;
  latencyMs: Summary;
  queries: number;
  /** Results whose segment id is not a document of the corpus (should be 0). */
  unknownResults: number;
  /** The search mode the API reported, when it reports one (the last answer's). */
  modeReported: string | null;
  /** Answers that reported no mode or another mode than the one requested. */
  modeMismatches: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** JSON request with retries on 429 / 503 (Retry-After honoured) and on connection errors. */
async function call(
  api: Api,
  method: 'GET' | 'POST',
  route: string,
  body: string | undefined,
  counters: { retries: number },
  label: string,
): Promise<{ status: number; json: unknown; headers: Headers }> {
  for (let attempt = 1; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(`${api.url}${route}`, {
        method,
        headers: {
          authorization: `Bearer ${api.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body,
      });
    } catch (err) {
      if (attempt >= 5) throw err;
      counters.retries++;
      await sleep(500 * attempt);
      continue;
    }
    const text = await res.text();
    if ((res.status === 429 || res.status === 503) && attempt < 10) {
      counters.retries++;
      const after = Number(res.headers.get('retry-after') ?? '1');
      await sleep(Math.min(10_000, Math.max(200, (Number.isFinite(after) ? after : 1) * 1000)));
      continue;
    }
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      throw new Error(`${label}: ${method} ${route} answered ${res.status} with a non-JSON body`);
    }
    return { status: res.status, json, headers: res.headers };
  }
}

/** A problem document's code and detail (API errors name fields and ids, never texts). */
function problem(json: unknown): string {
  const p = (json ?? {}) as { code?: unknown; detail?: unknown };
  return `${String(p.code ?? '?')}: ${String(p.detail ?? '').slice(0, 300)}`;
}

/**
 * Splits documents into request bodies of ≤ MAX_SEGMENTS segments and ≤ MAX_BODY_BYTES, each
 * with the batch-level `chunking` when one is given (null: none sent, the server's default).
 */
export function batchBodies(
  docs: readonly Doc[],
  assetId: string,
  chunking: Chunking | null = null,
): { body: string; n: number }[] {
  const out: { body: string; n: number }[] = [];
  let current: { segment_id: string; text: string }[] = [];
  let bytes = 0;
  const envelope = { asset_id: assetId, ...(chunking === null ? {} : { chunking }) };
  const overhead = Buffer.byteLength(JSON.stringify({ ...envelope, segments: [] }));
  const flush = () => {
    if (current.length === 0) return;
    out.push({ body: JSON.stringify({ ...envelope, segments: current }), n: current.length });
    current = [];
    bytes = 0;
  };
  for (const doc of docs) {
    const segment = { segment_id: doc.id, text: doc.text };
    const size = Buffer.byteLength(JSON.stringify(segment)) + 1;
    if (
      current.length >= MAX_SEGMENTS ||
      (current.length > 0 && overhead + bytes + size > MAX_BODY_BYTES)
    ) {
      flush();
    }
    current.push(segment);
    bytes += size;
  }
  flush();
  return out;
}

interface BatchAnswer {
  batch_id?: string;
  jobs?: { job_id: string; segment_id: string }[];
}

interface BatchStatus {
  total: number;
  counts: { queued: number; processing: number; succeeded: number; failed: number };
  done: boolean;
  failed_jobs: { job_id: string; segment_id: string; error: { code: string } | null }[];
}

interface JobStatus {
  status: 'QUEUED' | 'PROCESSING' | 'SUCCEEDED' | 'FAILED';
  error: { code: string } | null;
  result: JobResultFields | null;
  updated_at: string;
}

/**
 * Posts every document, waits until every job is SUCCEEDED or FAILED, then reads the succeeded
 * jobs' results for the corpus figures (`window`: the model's text tokens, for `overWindow`).
 */
export async function ingest(
  api: Api,
  docs: readonly Doc[],
  opts: {
    assetId: string;
    inFlight: number;
    timeoutSeconds: number;
    chunking?: Chunking | null;
    window: number | null;
  },
): Promise<IngestResult> {
  const bodies = batchBodies(docs, opts.assetId, opts.chunking ?? null);
  const counters = { retries: 0 };
  const batchIds: string[] = [];
  const jobIds: string[] = [];
  const started = performance.now();
  let next = 0;
  let posted = 0;
  const poster = async () => {
    for (;;) {
      const i = next++;
      const b = bodies[i];
      if (!b) return;
      const res = await call(api, 'POST', '/vectors/embed/batch', b.body, counters, `batch ${i}`);
      const answer = res.json as BatchAnswer;
      if ((res.status !== 202 && res.status !== 200) || !answer.jobs) {
        throw new Error(
          `POST /vectors/embed/batch (batch ${i}) answered ${res.status}: ${problem(res.json)}`,
        );
      }
      if (answer.jobs.length !== b.n) {
        throw new Error(`batch ${i}: ${answer.jobs.length} jobs for ${b.n} segments`);
      }
      if (answer.batch_id) batchIds.push(answer.batch_id);
      jobIds.push(...answer.jobs.map((j) => j.job_id));
      posted += b.n;
      if (i % 5 === 0 || posted === docs.length)
        api.log(`  posted ${posted}/${docs.length} documents`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.inFlight, bodies.length) }, () => poster()));
  const submitSeconds = (performance.now() - started) / 1000;
  const useBatches = batchIds.length === bodies.length;
  const deadline = started + opts.timeoutSeconds * 1000;
  const outcome = useBatches
    ? await waitForBatches(api, batchIds, counters, deadline)
    : await waitForJobs(api, jobIds, counters, deadline);
  const seconds = (outcome.completedAt - started) / 1000;
  api.log(`  reading the ${jobIds.length} jobs' results (GET /jobs/{job_id}; not timed)`);
  const chunks = summarizeJobResults(
    await jobResults(api, jobIds, opts.inFlight, counters),
    opts.window,
  );
  // Rounded for readable JSON (4 significant digits).
  return {
    docs: docs.length,
    requests: bodies.length,
    seconds: round(seconds),
    textsPerSecond: round(docs.length / seconds),
    submitSeconds: round(submitSeconds),
    chunksPerSecond: round(chunks.chunks / seconds),
    chunks,
    succeeded: outcome.succeeded,
    failed: outcome.failed,
    failedCodes: outcome.failedCodes,
    waitedWith: useBatches ? 'batches' : 'jobs',
    retries: counters.retries,
  };
}

interface WaitOutcome {
  /** performance.now() when the last job was seen (or known) to be done. */
  completedAt: number;
  succeeded: number;
  failed: number;
  failedCodes: Record<string, number>;
}

const POLL_MS = 250;

async function waitForBatches(
  api: Api,
  batchIds: readonly string[],
  counters: { retries: number },
  deadline: number,
): Promise<WaitOutcome> {
  const pending = new Set(batchIds);
  let succeeded = 0;
  let failed = 0;
  const failedCodes: Record<string, number> = {};
  let lastReport = 0;
  for (;;) {
    let queued = 0;
    for (const id of [...pending]) {
      const res = await call(api, 'GET', `/batches/${id}`, undefined, counters, `batch ${id}`);
      if (res.status !== 200)
        throw new Error(`GET /batches/${id} answered ${res.status}: ${problem(res.json)}`);
      const b = res.json as BatchStatus;
      if (b.done) {
        pending.delete(id);
        succeeded += b.counts.succeeded;
        failed += b.counts.failed;
        for (const f of b.failed_jobs) {
          const code = f.error?.code ?? 'unknown';
          failedCodes[code] = (failedCodes[code] ?? 0) + 1;
        }
      } else {
        queued += b.counts.queued + b.counts.processing;
        // Batches complete roughly in order: the rest are checked on the next round.
        break;
      }
    }
    const now = performance.now();
    if (pending.size === 0) return { completedAt: now, succeeded, failed, failedCodes };
    if (now > deadline) throw new Error(`${pending.size} batches still running at the time limit`);
    if (now - lastReport > 10_000) {
      lastReport = now;
      api.log(
        `  waiting: ${pending.size} of ${batchIds.length} batches running (${queued} jobs left in the first)`,
      );
    }
    await sleep(POLL_MS);
  }
}

async function waitForJobs(
  api: Api,
  jobIds: readonly string[],
  counters: { retries: number },
  deadline: number,
): Promise<WaitOutcome> {
  api.log('  the API gave no batch_id: following each job through GET /jobs/{id}');
  const pending = [...jobIds];
  let succeeded = 0;
  let failed = 0;
  const failedCodes: Record<string, number> = {};
  let lastUpdate = 0;
  let lastReport = 0;
  for (;;) {
    // Jobs finish roughly in submission order: look at the oldest pending ones until a few are
    // still running, then wait, so polling costs the stack little.
    let running = 0;
    const still: string[] = [];
    for (const id of pending) {
      if (running >= 8) {
        still.push(id);
        continue;
      }
      const res = await call(api, 'GET', `/jobs/${id}`, undefined, counters, `job ${id}`);
      if (res.status !== 200)
        throw new Error(`GET /jobs/${id} answered ${res.status}: ${problem(res.json)}`);
      const job = res.json as JobStatus;
      if (job.status === 'SUCCEEDED' || job.status === 'FAILED') {
        if (job.status === 'SUCCEEDED') succeeded++;
        else {
          failed++;
          const code = job.error?.code ?? 'unknown';
          failedCodes[code] = (failedCodes[code] ?? 0) + 1;
        }
        lastUpdate = Math.max(lastUpdate, Date.parse(job.updated_at));
      } else {
        running++;
        still.push(id);
      }
    }
    pending.splice(0, pending.length, ...still);
    const now = performance.now();
    if (pending.length === 0) {
      // The jobs' own completion time, on this clock.
      const completedAt = Math.min(now, now - (Date.now() - lastUpdate));
      return { completedAt, succeeded, failed, failedCodes };
    }
    if (now > deadline) throw new Error(`${pending.length} jobs still running at the time limit`);
    if (now - lastReport > 10_000) {
      lastReport = now;
      api.log(`  waiting: ${pending.length} of ${jobIds.length} jobs not finished`);
    }
    await sleep(POLL_MS * 4);
  }
}

/** The results of the SUCCEEDED ones of `jobIds` (`inFlight` requests at a time). */
async function jobResults(
  api: Api,
  jobIds: readonly string[],
  inFlight: number,
  counters: { retries: number },
): Promise<JobResultFields[]> {
  const out: JobResultFields[] = [];
  let next = 0;
  const reader = async () => {
    for (let i = next++; i < jobIds.length; i = next++) {
      const id = jobIds[i] as string;
      const res = await call(api, 'GET', `/jobs/${id}`, undefined, counters, `job ${id}`);
      if (res.status !== 200)
        throw new Error(`GET /jobs/${id} answered ${res.status}: ${problem(res.json)}`);
      const job = res.json as JobStatus;
      if (job.status === 'SUCCEEDED' && job.result) out.push(job.result);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, inFlight) }, () => reader()));
  return out;
}

/** A POST /vectors/search body (the fields the evaluations send). */
export interface SearchBody {
  query_text: string;
  limit: number;
  asset_id: string;
  mode: SearchMode;
  /** Hybrid only; absent: the API's defaults. */
  fusion?: { k?: number; weight?: number };
}

/** A search result's payload fields the evaluations read (chunk_*: where its best chunk is). */
export interface HitPayload {
  segment_id: string;
  chunk_index?: number;
  chunk_count?: number;
  chunk_start?: number;
  chunk_end?: number;
}

export interface SearchAnswer {
  results: { score: number; payload: HitPayload }[];
  mode?: string;
}

/** One search (retried as `call` retries), with its latency; throws unless it answers 200. */
export async function searchOnce(
  api: Api,
  body: SearchBody,
  label: string,
  counters: { retries: number } = { retries: 0 },
): Promise<{ answer: SearchAnswer; ms: number }> {
  const t0 = performance.now();
  const res = await call(api, 'POST', '/vectors/search', JSON.stringify(body), counters, label);
  const ms = performance.now() - t0;
  if (res.status !== 200) {
    throw new Error(`POST /vectors/search (${label}) answered ${res.status}: ${problem(res.json)}`);
  }
  return { answer: res.json as SearchAnswer, ms };
}

/** Runs every query (sequentially: the latencies are those of one client). */
export async function searchAll(
  api: Api,
  queries: readonly Query[],
  opts: {
    assetId: string;
    limit: number;
    mode: SearchMode;
    /** Hybrid requests' `fusion` (only the fields given; none when empty or absent). */
    fusion?: { k?: number; weight?: number };
    docIds: ReadonlySet<string>;
  },
): Promise<SearchRunResult> {
  const counters = { retries: 0 };
  const run = new Map<string, Map<string, number>>();
  const apiScores = new Map<string, Map<string, number>>();
  const latencies: number[] = [];
  let unknownResults = 0;
  let modeReported: string | null = null;
  let modeMismatches = 0;
  const fusion = opts.fusion && Object.keys(opts.fusion).length > 0 ? opts.fusion : undefined;
  const body = (q: Query): SearchBody => ({
    query_text: q.text,
    limit: opts.limit,
    asset_id: opts.assetId,
    mode: opts.mode,
    ...(fusion === undefined ? {} : { fusion }),
  });
  // Warm-up (not timed): the first searches load code paths and caches.
  for (const q of queries.slice(0, 3)) {
    await call(api, 'POST', '/vectors/search', JSON.stringify(body(q)), counters, 'warm-up');
  }
  for (const [i, q] of queries.entries()) {
    const { answer, ms } = await searchOnce(api, body(q), `query ${q.id}`, counters);
    latencies.push(ms);
    if (typeof answer.mode === 'string') modeReported = answer.mode;
    if (answer.mode !== opts.mode) modeMismatches++;
    // The run holds the API's order, not its scores: fused (hybrid) scores tie often (with equal
    // weights, ranks 2 and 5 tie with ranks 5 and 2), and trec_eval would re-break such ties by
    // document id; what a user gets is the order. Score = results left, so best first is largest.
    const order = new Map<string, number>();
    const scores = new Map<string, number>();
    answer.results.forEach((r, index) => {
      const doc = r.payload.segment_id;
      if (!opts.docIds.has(doc)) unknownResults++;
      // One result per segment (the API's default grouping); should a segment answer twice,
      // its first (best) result counts.
      if (!order.has(doc)) {
        order.set(doc, answer.results.length - index);
        scores.set(doc, r.score);
      }
    });
    run.set(q.id, order);
    apiScores.set(q.id, scores);
    if ((i + 1) % 200 === 0) api.log(`  ${i + 1}/${queries.length} queries (${opts.mode})`);
  }
  return {
    run,
    scores: apiScores,
    latencyMs: summarize(latencies),
    queries: queries.length,
    unknownResults,
    modeReported,
    modeMismatches,
  };
}
