/**
 * (c) End-to-end ingest through the Worker API (POST /vectors/embed/batch → outbox → local Queue →
 * consumer → embedder → store) until every job is SUCCEEDED, against the same embedder's raw
 * throughput measured just before; (d) search latency through the Worker at several
 * concurrencies, with the embedder-only and store-only shares. The whole local stack runs as
 * `npm run dev` runs it (scripts/lib/stack.ts).
 */
import path from 'node:path';
import pg from 'pg';
import { localStackEnv } from '../../scripts/lib/local-env.js';
import { startStack } from '../../scripts/lib/stack.js';
import type { Stack } from '../../scripts/lib/stack.js';
import { mintDevToken } from '../../scripts/lib/token.js';
import { LanceDbStore } from '../../embedder/src/store/lancedb.js';
import { fetchMetrics } from './embedder.js';
import { embedConcurrency, runEmbedLoad, runSearchLoad, settleEmbedder } from './load.js';
import type { SearchLoadResult } from './load.js';
import { histogram, histogramDelta } from './prom.js';
import { progress } from './progress.js';
import { round, roundSummary, summarize } from './stats.js';
import type { Summary } from './stats.js';
import { randomUnitVectors } from './store-bench.js';
import { LENGTH_TOKENS, TextSource, documentTexts } from './texts.js';
import type { LengthClass } from './texts.js';
import { machineBusy, stackProcessCpu, threadCpu } from './threads.js';
import type { StackProcess } from './threads.js';
import type { Variant } from './variants.js';

export interface StackBenchOptions {
  workDir: string;
  cap: number;
  maxBatchTokens: number;
  ingestTexts: number;
  length: LengthClass;
  /**
   * When set, the ingest's texts are real passages of this many characters (documentTexts, from
   * `corpus`) instead of `length`'s synthetic ones: long texts that the embedder chunks.
   */
  documentChars?: { chars: number; corpus: readonly string[] };
  requestItems: number;
  /** Measure the ingest only (no search latency). */
  ingestOnly?: boolean;
  minSeconds: number;
  maxSeconds: number;
  searchQueries: number;
  concurrencies: readonly number[];
}

export interface IngestResult {
  variant: string;
  texts: number;
  length: LengthClass;
  /**
   * Tokens per text, special tokens included; for documents, the texts' mean `token_count` (the
   * whole text's tokens, special tokens excluded).
   */
  tokens: number;
  /**
   * Documents (`--ingest-chars`): the characters per text, the chunks the jobs wrote (sum of
   * their results' `chunk_count`) and the chunks per second end to end; null for `length` texts.
   */
  documents?: { chars: number; chunks: number; chunksPerSecond: number } | null;
  cap: number;
  /** Seconds from the first POST until the last job completed (jobs.completed_at). */
  seconds: number;
  textsPerSecond: number;
  /**
   * The same embedder's /internal/embed throughput (same texts, cap): the better of a window just
   * before and one just after the ingest (`windows`, texts/s).
   */
  raw: {
    textsPerSecond: number;
    requestItems: number;
    concurrency: number;
    seconds: number;
    windows: [number, number];
  };
  fraction: number;
  /** Embedder forward passes during the ingest. */
  batches: { count: number; meanItems: number };
  /** Jobs read back through GET /jobs/{id} (a sample), all SUCCEEDED. */
  verifiedJobs: number;
  /**
   * POST /v1/embeddings through the Worker (the same texts, `requestItems` inputs a request, as
   * many in flight as the raw windows), against the better raw /internal/embed window; the
   * Worker's own time per request from its Server-Timing (app − embedder). Null with documents
   * (longer than the window: /v1/embeddings truncates them, the queue path chunks them).
   */
  openai?: {
    textsPerSecond: number;
    requestItems: number;
    concurrency: number;
    fractionOfRaw: number;
    latencyMs: Summary;
    workerOverheadMsP50: number;
  } | null;
  /**
   * Following the ingest while it runs, one request at a time (ms): `GET /jobs/{id}` of a random
   * submitted job, and `GET /batches/{id}` of a random batch (the whole batch's progress).
   */
  follow: { job: Summary; batch: Summary };
  /** Cores busy by process during each window: what the rest of the stack takes from the model. */
  cores: { raw: ProcessCores; e2e: ProcessCores };
}

/**
 * Cores busy during a window, by process: the embedder, this bench client, and the rest of the
 * machine (wrangler dev, workerd, PostgreSQL, the WS proxy, and anything else running).
 */
export interface ProcessCores {
  embedder: number;
  client: number;
  rest: number;
  machine: number;
  /** The part of `rest` that the stack's own processes used, by process. */
  stack: Record<StackProcess, number>;
}

/** Starts counting CPU by process; the returned function stops and reports cores busy. */
function coresMeter(embedderPid: number | undefined): () => ProcessCores {
  const embedderCpu = () => (embedderPid === undefined ? 0 : threadCpu(embedderPid).total);
  const before = {
    embedder: embedderCpu(),
    machine: machineBusy(),
    client: process.cpuUsage(),
    stack: stackProcessCpu(),
  };
  const started = performance.now();
  return () => {
    const stackAfter = stackProcessCpu();
    const seconds = (performance.now() - started) / 1000;
    const client = process.cpuUsage(before.client);
    const embedder = (embedderCpu() - before.embedder) / seconds;
    const clientCores = (client.user + client.system) / 1e6 / seconds;
    const machine = (machineBusy() - before.machine) / seconds;
    return {
      embedder: round(embedder, 2),
      client: round(clientCores, 2),
      rest: round(Math.max(0, machine - embedder - clientCores), 2),
      machine: round(machine, 2),
      stack: {
        workerd: round((stackAfter.workerd - before.stack.workerd) / seconds, 2),
        wrangler: round((stackAfter.wrangler - before.stack.wrangler) / seconds, 2),
        postgres: round((stackAfter.postgres - before.stack.postgres) / seconds, 2),
      },
    };
  };
}

export interface LatencySet {
  concurrency: number;
  worker: Summary;
  /**
   * The Worker's own handling time (its Server-Timing `app`, embedder call included): the client's
   * latency less this is wrangler dev's local proxy chain and the client's side of the socket.
   */
  workerApp: Summary | null;
  embedderOnly: Summary;
  /** From the embedder's timing headers: x-total-time − tokenization − queue − inference. */
  embedderStoreAndHttp: Summary;
  embedderInference: Summary;
  embedderQueue: Summary;
  workerQps: number;
  /**
   * Cores busy during the run through the Worker, by process: the embedder, this bench client,
   * and the rest of the machine (wrangler dev and workerd: search does not touch Postgres).
   * `machine` is the sum, out of the machine's cores.
   */
  workerRunCores: {
    embedder: number;
    client: number;
    workerAndRest: number;
    machine: number;
    /** The part of `workerAndRest` that the stack's own processes used, by process. */
    stack: Record<StackProcess, number>;
  };
}

export interface SearchResult {
  variant: string;
  points: number;
  limit: number;
  queryTokens: number;
  levels: LatencySet[];
  /** The store alone (LanceDbStore.search in this process on the embedder's table), sequential. */
  storeOnly: Summary;
  /**
   * Round trips that do no work, sequential: GET /healthz through wrangler dev (its local proxy
   * and workerd) and on the embedder. The floor under every request's latency on this machine.
   */
  floors: { worker: Summary; embedder: Summary };
  shares: { embedderOfWorkerP50: number; storeOfWorkerP50: number };
}

const ORG_INGEST = 'bench-ingest';
const ORG_RAW = 'bench-raw';
const SEGMENTS_PER_CALL = 256;

export async function measureStack(
  v: Variant,
  o: StackBenchOptions,
): Promise<{ ingest: IngestResult; search: SearchResult | null }> {
  const dataDir = path.join(o.workDir, 'stack');
  const vectorDir = path.join(dataDir, 'vectors');
  progress(`starting the local stack (PostgreSQL, WS proxy, embedder ${v.label}, wrangler dev)`);
  const stack = await startStack({
    dataDir,
    env: localStackEnv(
      { dir: v.modelDir, name: v.modelName, dtype: v.dtype },
      { QDRANT_URL: '', VECTOR_STORE: 'lancedb', VECTOR_DATA_DIR: vectorDir },
    ),
    embedderEnv: {
      EMBEDDER_MAX_BATCH_ITEMS: String(o.cap),
      EMBEDDER_MAX_BATCH_TOKENS: String(o.maxBatchTokens),
    },
    cronIntervalMs: 0,
    onStatus: (m) => progress(`  ${m}`),
  });
  try {
    const jwt = await mintDevToken({
      secret: stack.devJwtSecret,
      org: ORG_INGEST,
      ttlSeconds: 7200,
      tenantClaim: process.env.AUTH_TENANT_CLAIM,
    });
    const ingest = await measureIngest(stack, v, o, jwt);
    const search = o.ingestOnly ? null : await measureSearch(stack, v, o, vectorDir, jwt);
    return { ingest, search };
  } finally {
    progress('stopping the local stack');
    await stack.stop();
  }
}

async function measureIngest(
  stack: Stack,
  v: Variant,
  o: StackBenchOptions,
  api: string,
): Promise<IngestResult> {
  const texts = o.documentChars
    ? documentTexts(o.documentChars.corpus, o.ingestTexts, o.documentChars.chars)
    : new TextSource(LENGTH_TOKENS[o.length], 77).take(o.ingestTexts);
  const label = o.documentChars ? `${o.documentChars.chars}-character` : o.length;
  const concurrency = embedConcurrency(o.cap, o.requestItems);

  // The raw rate is measured before and after the ingest, and the better window is the one the
  // ingest is held to: one window slowed by other work on the machine must not flatter the ratio.
  const measureRaw = async (when: string) => {
    progress(`raw embedder throughput ${when} (${label} texts, cap ${o.cap})`);
    await settleEmbedder(stack.embedderUrl, stack.embedderToken, v.modelName);
    const meter = coresMeter(stack.embedderPid());
    const run = await runEmbedLoad({
      url: stack.embedderUrl,
      token: stack.embedderToken,
      model: v.modelName,
      org: ORG_RAW,
      texts,
      requestItems: o.requestItems,
      concurrency,
      minSeconds: o.minSeconds,
      // As many texts as the ingest: both windows are ~10 s, so one noisy second weighs the same.
      minItems: Math.max(o.ingestTexts, 2 * o.requestItems),
      maxSeconds: o.maxSeconds,
    });
    const cores = meter();
    await settleEmbedder(stack.embedderUrl, stack.embedderToken, v.modelName);
    progress(
      `  raw: ${run.itemsPerSecond.toFixed(1)} texts/s` +
        (run.networkErrors > 0
          ? ` (${run.networkErrors} requests resent after a failed connection)`
          : ''),
    );
    return { run, cores };
  };
  const rawBefore = await measureRaw('before the ingest');

  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  try {
    const metricsBefore = await fetchMetrics(stack.embedderUrl, stack.embedderToken);
    progress(
      `end-to-end ingest: ${o.ingestTexts} ${label} texts through POST /vectors/embed/batch`,
    );
    const started = Date.now();
    const e2eMeter = coresMeter(stack.embedderPid());
    const jobIds: string[] = [];
    const batchIds: string[] = [];
    const follower = followIngest(stack.apiUrl, api, jobIds, batchIds);
    for (let start = 0; start < texts.length; start += SEGMENTS_PER_CALL) {
      const segments = texts.slice(start, start + SEGMENTS_PER_CALL).map((text, i) => ({
        segment_id: `seg-${start + i}`,
        text,
      }));
      const request = () =>
        fetch(`${stack.apiUrl}/vectors/embed/batch`, {
          method: 'POST',
          headers: { authorization: `Bearer ${api}`, 'content-type': 'application/json' },
          body: JSON.stringify({ asset_id: 'bench-asset', segments }),
        });
      // A connection wrangler dev closed as the request went out is sent again: the same
      // segments and texts are the same jobs (idempotent), so nothing is counted twice.
      const res = await request().catch((err: unknown) => {
        if (err instanceof TypeError && err.message === 'fetch failed') return request();
        throw err;
      });
      const body = (await res.json()) as { batch_id?: string; jobs?: { job_id: string }[] };
      if (res.status !== 202 || !body.jobs || !body.batch_id) {
        throw new Error(
          `POST /vectors/embed/batch answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`,
        );
      }
      jobIds.push(...body.jobs.map((j) => j.job_id));
      batchIds.push(body.batch_id);
    }
    // Long texts: a queue batch of 100 is ~450 windows, minutes on 2 busy cores before its first
    // job completes; the stall check waits that long.
    const completedAt = await waitForJobs(
      db,
      stack,
      o.ingestTexts,
      o.documentChars ? 240_000 : 30_000,
    );
    const follow = await follower.stop();
    progress(
      `  following it: GET /jobs/{id} p50 ${follow.job.p50.toFixed(1)} ms (n=${follow.job.n}), ` +
        `GET /batches/{id} p50 ${follow.batch.p50.toFixed(1)} ms (n=${follow.batch.n}, ${SEGMENTS_PER_CALL} jobs each)`,
    );
    const e2eCores = e2eMeter();
    const seconds = (completedAt - started) / 1000;
    const metricsAfter = await fetchMetrics(stack.embedderUrl, stack.embedderToken);
    const batches = histogramDelta(
      histogram(metricsAfter, 'heimdex_batch_size', { model: v.modelName }),
      histogram(metricsBefore, 'heimdex_batch_size', { model: v.modelName }),
    );
    const verifiedJobs = await verifyJobs(stack.apiUrl, api, jobIds);
    const textsPerSecond = o.ingestTexts / seconds;
    const written = await jobTotals(db);
    const documents = o.documentChars
      ? {
          chars: o.documentChars.chars,
          chunks: written.chunks,
          chunksPerSecond: round(written.chunks / seconds),
        }
      : null;
    progress(
      `  end to end: ${textsPerSecond.toFixed(1)} texts/s` +
        (documents
          ? `, ${documents.chunksPerSecond.toFixed(1)} chunks/s (${documents.chunks} chunks)`
          : ''),
    );
    const rawAfter = await measureRaw('after the ingest');
    const best = rawAfter.run.itemsPerSecond > rawBefore.run.itemsPerSecond ? rawAfter : rawBefore;
    const openai = o.documentChars
      ? null
      : await measureOpenAi(stack, v, o, api, texts, concurrency);
    const raw = best.run;
    const rawCores = best.cores;
    progress(
      `  end to end / raw: ${((100 * textsPerSecond) / raw.itemsPerSecond).toFixed(0)}% (raw: the better window, ${raw.itemsPerSecond.toFixed(1)} texts/s)`,
    );
    return {
      variant: v.id,
      texts: o.ingestTexts,
      length: o.length,
      tokens: o.documentChars
        ? round(written.tokens / o.ingestTexts, 1)
        : LENGTH_TOKENS[o.length] + v.specialTokens,
      documents,
      cap: o.cap,
      seconds: round(seconds),
      textsPerSecond: round(textsPerSecond),
      raw: {
        textsPerSecond: round(raw.itemsPerSecond),
        requestItems: o.requestItems,
        concurrency,
        seconds: round(raw.seconds),
        windows: [round(rawBefore.run.itemsPerSecond), round(rawAfter.run.itemsPerSecond)],
      },
      fraction: round(textsPerSecond / raw.itemsPerSecond, 3),
      batches: {
        count: batches.count,
        meanItems: round(batches.count > 0 ? batches.sum / batches.count : 0, 3),
      },
      verifiedJobs,
      openai: openai && {
        textsPerSecond: round(openai.itemsPerSecond),
        requestItems: o.requestItems,
        concurrency,
        fractionOfRaw: round(openai.itemsPerSecond / raw.itemsPerSecond, 3),
        latencyMs: roundSummary(openai.latencyMs),
        workerOverheadMsP50: round(openai.serverMs.other, 2),
      },
      follow: { job: roundSummary(follow.job), batch: roundSummary(follow.batch) },
      cores: { raw: rawCores, e2e: e2eCores },
    };
  } finally {
    await db.end();
  }
}

/**
 * What a client following an ingest does, while it runs: alternately reads one random job and one
 * random batch, one request at a time, and times each. Stops when asked; returns the latencies.
 */
function followIngest(
  apiUrl: string,
  token: string,
  jobIds: readonly string[],
  batchIds: readonly string[],
): { stop(): Promise<{ job: Summary; batch: Summary }> } {
  const job: number[] = [];
  const batch: number[] = [];
  let running = true;
  const pick = (ids: readonly string[]) => ids[Math.floor(Math.random() * ids.length)];
  const timed = async (path: string, into: number[]) => {
    const t0 = performance.now();
    let res: Response;
    try {
      res = await fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${token}` } });
    } catch (err) {
      // wrangler dev closed a pooled connection as the request went out: skip this sample.
      if (err instanceof TypeError && err.message === 'fetch failed') return;
      throw err;
    }
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
    into.push(performance.now() - t0);
  };
  const loop = (async () => {
    while (running) {
      const j = pick(jobIds);
      const b = pick(batchIds);
      if (j === undefined || b === undefined) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      await timed(`/jobs/${j}`, job);
      await timed(`/batches/${b}`, batch);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { job: summarize(job), batch: summarize(batch) };
    },
  };
}

/** POST /v1/embeddings through the Worker at the raw windows' shape. */
async function measureOpenAi(
  stack: Stack,
  v: Variant,
  o: StackBenchOptions,
  jwt: string,
  texts: readonly string[],
  concurrency: number,
) {
  progress(`POST /v1/embeddings through the Worker (${o.requestItems} inputs a request)`);
  await settleEmbedder(stack.embedderUrl, stack.embedderToken, v.modelName);
  const run = await runEmbedLoad({
    url: stack.apiUrl,
    token: jwt,
    model: v.modelName,
    org: ORG_INGEST,
    texts,
    requestItems: o.requestItems,
    concurrency,
    minSeconds: o.minSeconds,
    minItems: Math.max(o.ingestTexts, 2 * o.requestItems),
    maxSeconds: o.maxSeconds,
    endpoint: 'openai',
  });
  progress(
    `  /v1/embeddings: ${run.itemsPerSecond.toFixed(1)} texts/s, the Worker's own time p50 ${run.serverMs.other.toFixed(2)} ms`,
  );
  return run;
}

/**
 * What the ingest's jobs wrote, from their results: chunks (`chunk_count`, 1 where absent) and
 * the texts' tokens (`token_count`: the whole text's, special tokens excluded).
 */
async function jobTotals(db: pg.Client): Promise<{ chunks: number; tokens: number }> {
  const { rows } = await db.query<{ chunks: number; tokens: number }>(
    `SELECT coalesce(sum(coalesce((result->>'chunk_count')::int, 1)), 0)::int AS chunks,
            coalesce(sum((result->>'token_count')::int), 0)::int AS tokens
       FROM jobs WHERE org_id = $1 AND status = 'SUCCEEDED'`,
    [ORG_INGEST],
  );
  return rows[0] ?? { chunks: 0, tokens: 0 };
}

/**
 * Polls the jobs table until `n` jobs of the org succeeded; returns the last completion time.
 * When none completes for `stallMs`, fires the cron sweep once; for `stallMs` more, fails.
 */
async function waitForJobs(
  db: pg.Client,
  stack: Stack,
  n: number,
  stallMs: number,
): Promise<number> {
  let lastProgress = Date.now();
  let lastDone = -1;
  let cronFired = false;
  for (;;) {
    const { rows } = await db.query<{ status: string; n: number; last: Date | null }>(
      `SELECT status::text AS status, count(*)::int AS n, max(completed_at) AS last
         FROM jobs WHERE org_id = $1 GROUP BY status`,
      [ORG_INGEST],
    );
    const by = new Map(rows.map((r) => [r.status, r]));
    const failed = by.get('FAILED')?.n ?? 0;
    if (failed > 0)
      throw new Error(`${failed} ingest jobs FAILED (see the stack logs under the bench work dir)`);
    const done = by.get('SUCCEEDED');
    if (done && done.n >= n && done.last) return done.last.getTime();
    const count = done?.n ?? 0;
    if (count !== lastDone) {
      lastDone = count;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > stallMs) {
      if (cronFired) {
        throw new Error(
          `ingest stalled at ${count}/${n} SUCCEEDED jobs for ${(2 * stallMs) / 1000} s`,
        );
      }
      // The outbox sweep re-sends anything the relay left behind.
      await stack.triggerCron();
      cronFired = true;
      lastProgress = Date.now();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function verifyJobs(apiUrl: string, token: string, ids: string[]): Promise<number> {
  const sample = [ids[0], ids[Math.floor(ids.length / 2)], ids.at(-1)].filter(
    (id): id is string => id !== undefined,
  );
  for (const id of sample) {
    const res = await fetch(`${apiUrl}/jobs/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const job = (await res.json()) as { status?: string; result?: { point_id?: string } | null };
    if (res.status !== 200 || job.status !== 'SUCCEEDED' || !job.result?.point_id) {
      throw new Error(`GET /jobs/${id} answered ${res.status} with status ${job.status}`);
    }
  }
  return sample.length;
}

async function measureSearch(
  stack: Stack,
  v: Variant,
  o: StackBenchOptions,
  vectorDir: string,
  jwt: string,
): Promise<SearchResult> {
  const queryTokens = 8;
  const queries = new TextSource(queryTokens, 4242).take(512);
  const limit = 10;
  const worker = (c: number, n: number) =>
    runSearchLoad({
      url: `${stack.apiUrl}/vectors/search`,
      headers: { authorization: `Bearer ${jwt}` },
      body: (i) => ({ query_text: queries[i % queries.length], limit }),
      concurrency: c,
      queries: n,
    });
  const direct = (c: number, n: number) =>
    runSearchLoad({
      url: `${stack.embedderUrl}/internal/search`,
      headers: { authorization: `Bearer ${stack.embedderToken}` },
      body: (i) => ({ org_id: ORG_INGEST, query_text: queries[(i + 256) % queries.length], limit }),
      concurrency: c,
      queries: n,
    });

  progress('search latency: warm-up');
  await worker(1, 10);
  await direct(1, 10);
  const levels: LatencySet[] = [];
  for (const c of o.concurrencies) {
    const n = Math.max(o.searchQueries, 4 * c);
    progress(`  concurrency ${c}: ${n} queries to the embedder, then ${n} through the Worker`);
    const e: SearchLoadResult = await direct(c, n);
    const meter = coresMeter(stack.embedderPid());
    const w: SearchLoadResult = await worker(c, n);
    const cores = meter();
    const t = e.serverTiming;
    levels.push({
      concurrency: c,
      worker: roundSummary(w.latencyMs),
      workerApp:
        w.serverTiming.workerAppMs.length > 0
          ? roundSummary(summarize(w.serverTiming.workerAppMs))
          : null,
      embedderOnly: roundSummary(e.latencyMs),
      embedderStoreAndHttp: roundSummary(summarize(t.otherMs)),
      embedderInference: roundSummary(summarize(t.inferenceMs)),
      embedderQueue: roundSummary(summarize(t.queueMs)),
      workerQps: round(w.queriesPerSecond),
      workerRunCores: {
        embedder: cores.embedder,
        client: cores.client,
        workerAndRest: cores.rest,
        machine: cores.machine,
        stack: cores.stack,
      },
    });
    progress(
      `    worker p50 ${w.latencyMs.p50.toFixed(1)} ms, p99 ${w.latencyMs.p99.toFixed(1)} ms; embedder p50 ${e.latencyMs.p50.toFixed(1)} ms`,
    );
  }

  const floor = async (url: string) => {
    const times: number[] = [];
    for (let i = 0; i < 105; i++) {
      const t0 = performance.now();
      const res = await fetch(url);
      await res.text();
      if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
      if (i >= 5) times.push(performance.now() - t0);
    }
    return roundSummary(summarize(times));
  };
  const floors = {
    worker: await floor(`${stack.apiUrl}/healthz`),
    embedder: await floor(`${stack.embedderUrl}/healthz`),
  };
  progress(
    `  GET /healthz p50: Worker ${floors.worker.p50} ms, embedder ${floors.embedder.p50} ms`,
  );

  progress('store-only search latency (LanceDB table of the stack, in this process)');
  const storeOnly = await storeOnlySearch(vectorDir, v.modelName, o.searchQueries);
  const c1 = levels.find((l) => l.concurrency === 1) ?? levels[0];
  const points = o.ingestTexts;
  return {
    variant: v.id,
    points,
    limit,
    queryTokens,
    levels,
    storeOnly,
    floors,
    shares: c1
      ? {
          embedderOfWorkerP50: round(c1.embedderOnly.p50 / c1.worker.p50, 3),
          storeOfWorkerP50: round(storeOnly.p50 / c1.worker.p50, 3),
        }
      : { embedderOfWorkerP50: NaN, storeOfWorkerP50: NaN },
  };
}

async function storeOnlySearch(dir: string, model: string, queries: number): Promise<Summary> {
  const store = new LanceDbStore({ dataDir: dir });
  const { dim } = await store.init(0);
  try {
    const vectors = randomUnitVectors(queries + 5, dim, 99);
    const times: number[] = [];
    for (const [i, vector] of vectors.entries()) {
      const t0 = performance.now();
      const hits = await store.search({
        vector,
        orgId: ORG_INGEST,
        model,
        modelVer: '1',
        limit: 10,
      });
      if (i >= 5) times.push(performance.now() - t0);
      if (hits.length === 0) throw new Error('the store-only search found nothing');
    }
    return roundSummary(summarize(times));
  } finally {
    await store.close();
  }
}
