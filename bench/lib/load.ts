/**
 * Load generators. Embedding load is closed-loop: a fixed number of requests in flight, each
 * replaced as soon as it completes, so the embedder's queue never runs dry and its dynamic
 * batcher can merge concurrent requests. Search load is closed-loop per client.
 */
import { randomUUID } from 'node:crypto';
import { median, summarize } from './stats.js';
import type { Summary } from './stats.js';

export interface EmbedLoadOptions {
  url: string;
  token: string;
  /** The model name every item carries (the embedder's EMBEDDING_MODEL_NAME). */
  model: string;
  org: string;
  /** Texts to cycle through. */
  texts: readonly string[];
  requestItems: number;
  /** Requests in flight. */
  concurrency: number;
  /** The measurement window (after the first completion) lasts at least this long… */
  minSeconds: number;
  /** …and covers at least this many items. */
  minItems: number;
  /** Hard limit for the whole run (an error if fewer than 3 completions by then). */
  maxSeconds: number;
  /**
   * `internal` (default): POST /internal/embed on the embedder at `url` (embed and store, the
   * queue consumer's call); `openai`: POST /v1/embeddings on the Worker at `url` with a tenant
   * JWT as `token` (embed only, base64 vectors back, as the openai client asks by default).
   */
  endpoint?: 'internal' | 'openai';
  /**
   * The /internal/embed body of `n` items starting at text `start` (default: embedBody, new
   * segments each time); the soak's overwrite stream rewrites a fixed set of segments.
   */
  body?: (start: number, n: number) => string;
  /**
   * Send a request that got 503 (the store unavailable: e.g. a Qdrant write timed out on a
   * loaded machine) again after a second, as the queue consumer's retry would, instead of failing
   * the run; counted in `unavailable503`.
   */
  retryUnavailable?: boolean;
}

export interface EmbedLoadResult {
  /** Steady-state items per second: least-squares slope of items completed over time. */
  itemsPerSecond: number;
  /** Items completed after the first completion. */
  items: number;
  seconds: number;
  latencyMs: Summary;
  /** CPU seconds this (client) process used during the run. */
  clientCpuSeconds: number;
  rejected429: number;
  /** Requests answered 503 and sent again (only with `retryUnavailable`). */
  unavailable503: number;
  /** Requests that got no answer (the connection failed) and were sent again. */
  networkErrors: number;
  /** Medians of the embedder's timing headers per request (ms); `other` = total − the rest. */
  serverMs: ServerMs;
}

/** Per-request medians of the embedder's timing headers (ms). */
export interface ServerMs {
  tokenization: number;
  queue: number;
  inference: number;
  other: number;
  total: number;
}

let seq = 1;

/** A fresh /internal/embed body of `n` items (new job and segment ids each time). */
export function embedBody(
  texts: readonly string[],
  start: number,
  n: number,
  model: string,
  org: string,
): string {
  const items = Array.from({ length: n }, (_, i) => ({
    job_id: randomUUID(),
    seq: seq++,
    org_id: org,
    asset_id: 'bench-asset',
    segment_id: `seg-${seq}`,
    text: texts[(start + i) % texts.length] as string,
    model,
    model_ver: '1',
  }));
  return JSON.stringify({ items });
}

/** A POST /v1/embeddings body of `n` of the texts (base64 vectors, as the openai client asks). */
function openAiBody(texts: readonly string[], start: number, n: number, model: string): string {
  const input = Array.from({ length: n }, (_, i) => texts[(start + i) % texts.length] as string);
  return JSON.stringify({ input, model, encoding_format: 'base64' });
}

function assertOpenAiResponse(status: number, text: string, n: number): void {
  if (status !== 200) {
    throw new Error(`POST /v1/embeddings answered ${status}: ${text.slice(0, 400)}`);
  }
  const body = JSON.parse(text) as { data?: { embedding?: unknown }[] };
  if (body.data?.length !== n || body.data.some((d) => typeof d.embedding !== 'string')) {
    throw new Error(`POST /v1/embeddings returned ${body.data?.length} vectors for ${n} inputs`);
  }
}

function assertEmbedResponse(status: number, text: string, n: number): void {
  if (status !== 200) {
    throw new Error(`POST /internal/embed answered ${status}: ${text.slice(0, 400)}`);
  }
  const body = JSON.parse(text) as { results?: { status?: string; code?: string }[] };
  const results = body.results ?? [];
  const bad = results.filter((r) => r.status !== 'ok');
  if (results.length !== n || bad.length > 0) {
    throw new Error(
      `POST /internal/embed returned ${results.length} results for ${n} items, ${bad.length} not ok (${[...new Set(bad.map((b) => b.code))].join(', ')})`,
    );
  }
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    sxy += dx * ((ys[i] as number) - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : NaN;
}

export async function runEmbedLoad(o: EmbedLoadOptions): Promise<EmbedLoadResult> {
  const controller = new AbortController();
  const headers = { authorization: `Bearer ${o.token}`, 'content-type': 'application/json' };
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  let next = 0;
  let stop = false;
  let rejected429 = 0;
  let unavailable503 = 0;
  let networkErrors = 0;
  let firstAt: number | null = null;
  let itemsAfterFirst = 0;
  const eventTimes: number[] = [];
  const eventItems: number[] = [];
  const latencies: number[] = [];
  const timing = {
    tokenization: [] as number[],
    queue: [] as number[],
    inference: [] as number[],
    other: [] as number[],
    total: [] as number[],
  };

  const openai = o.endpoint === 'openai';
  const client = async (): Promise<void> => {
    while (!stop) {
      const body = openai
        ? openAiBody(o.texts, next, o.requestItems, o.model)
        : o.body
          ? o.body(next, o.requestItems)
          : embedBody(o.texts, next, o.requestItems, o.model, o.org);
      next += o.requestItems;
      const t0 = performance.now();
      let status: number;
      let text: string;
      let resHeaders: Headers | null = null;
      try {
        const res = await fetch(`${o.url}${openai ? '/v1/embeddings' : '/internal/embed'}`, {
          method: 'POST',
          headers,
          body,
          signal: controller.signal,
        });
        status = res.status;
        resHeaders = res.headers;
        text = await res.text();
        if (status === 429) {
          rejected429++;
          const wait = Number(res.headers.get('retry-after') ?? '1');
          await new Promise((r) => setTimeout(r, Math.min(1000, wait * 1000)));
          continue;
        }
        if (status === 503 && o.retryUnavailable) {
          unavailable503++;
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
      } catch (err) {
        if (stop) return;
        // A keep-alive connection the server closed just as a request went out ("fetch failed",
        // no answer at all): counted and sent again on a new connection, a few times at most.
        if (err instanceof TypeError && err.message === 'fetch failed' && networkErrors < 3) {
          networkErrors++;
          continue;
        }
        throw err;
      }
      if (stop) return;
      if (openai) assertOpenAiResponse(status, text, o.requestItems);
      else assertEmbedResponse(status, text, o.requestItems);
      const t1 = performance.now();
      latencies.push(t1 - t0);
      if (openai) {
        // The Worker's Server-Timing: its whole handling (app) and the embedder call within it.
        const app = serverTimingDuration(resHeaders?.get('server-timing') ?? null, 'app');
        const embedder = serverTimingDuration(resHeaders?.get('server-timing') ?? null, 'embedder');
        if (Number.isFinite(app) && Number.isFinite(embedder)) {
          timing.total.push(app);
          timing.other.push(app - embedder);
        }
      }
      const server = openai ? null : embedderTiming(resHeaders);
      if (server) {
        timing.total.push(server.total);
        timing.tokenization.push(server.tokenization);
        timing.queue.push(server.queue);
        timing.inference.push(server.inference);
        timing.other.push(server.other);
      }
      if (firstAt === null) {
        firstAt = t1;
      } else {
        itemsAfterFirst += o.requestItems;
      }
      eventTimes.push((t1 - started) / 1000);
      eventItems.push(itemsAfterFirst);
      const windowS = (t1 - firstAt) / 1000;
      if (
        (windowS >= o.minSeconds && itemsAfterFirst >= o.minItems) ||
        (t1 - started) / 1000 > o.maxSeconds
      ) {
        stop = true;
        controller.abort();
      }
    }
  };

  const clients = Array.from({ length: o.concurrency }, () => client());
  const settled = await Promise.allSettled(clients);
  stop = true;
  controller.abort();
  const failure = settled.find((s) => s.status === 'rejected');
  if (failure) throw (failure as PromiseRejectedResult).reason;
  const cpu = process.cpuUsage(cpu0);
  if (eventTimes.length < 3) {
    throw new Error(
      `only ${eventTimes.length} requests completed within ${o.maxSeconds} s: raise the time limit`,
    );
  }
  const seconds = (eventTimes.at(-1) as number) - (eventTimes[0] as number);
  return {
    itemsPerSecond: slope(eventTimes, eventItems),
    items: itemsAfterFirst,
    seconds,
    latencyMs: summarize(latencies),
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    rejected429,
    unavailable503,
    networkErrors,
    serverMs: {
      tokenization: median(timing.tokenization),
      queue: median(timing.queue),
      inference: median(timing.inference),
      other: median(timing.other),
      total: median(timing.total),
    },
  };
}

/** Waits until the embedder has finished what it was doing (one small request goes through). */
export async function settleEmbedder(url: string, token: string, model: string): Promise<void> {
  const res = await fetch(`${url}/internal/embed`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: embedBody(['settle'], 0, 1, model, 'bench-settle'),
  });
  assertEmbedResponse(res.status, await res.text(), 1);
}

export interface SearchLoadOptions {
  /** Full URL of the search route. */
  url: string;
  headers: Record<string, string>;
  /** The JSON body of query number `i`. */
  body: (i: number) => unknown;
  concurrency: number;
  queries: number;
}

export interface SearchLoadResult {
  concurrency: number;
  latencyMs: Summary;
  /**
   * Per query, from the embedder's timing headers when present (milliseconds): queue, inference,
   * and the rest of its time (store search, HTTP, JSON).
   */
  serverTiming: {
    queueMs: number[];
    inferenceMs: number[];
    otherMs: number[];
    /** The Worker's Server-Timing `app` (its own handling time, embedder call included). */
    workerAppMs: number[];
  };
  queriesPerSecond: number;
}

/**
 * The embedder's TEI-style timing headers of one response (`x-total-time` and its parts), with the
 * time outside them (`other`: store, HTTP, JSON); null when the response has none.
 */
function embedderTiming(headers: Headers | null) {
  const h = (name: string) => Number(headers?.get(name) ?? NaN);
  const total = h('x-total-time');
  if (!Number.isFinite(total)) return null;
  const tokenization = h('x-tokenization-time');
  const queue = h('x-queue-time');
  const inference = h('x-inference-time');
  return { total, tokenization, queue, inference, other: total - tokenization - queue - inference };
}

/**
 * Requests kept in flight for an embedding load at batch cap `cap`: enough for two full passes'
 * worth of items, and never fewer than two (so one request's I/O overlaps another's inference).
 */
export function embedConcurrency(cap: number, requestItems: number): number {
  return Math.max(2, Math.ceil((2 * cap) / requestItems));
}

/** The `dur` of one metric in a Server-Timing header (`app;dur=7, embedder;dur=5`), or NaN. */
export function serverTimingDuration(header: string | null, metric: string): number {
  for (const entry of (header ?? '').split(',')) {
    const [name, ...params] = entry.trim().split(';');
    if (name !== metric) continue;
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith('dur='));
    return dur === undefined ? NaN : Number(dur.slice(4));
  }
  return NaN;
}

export async function runSearchLoad(o: SearchLoadOptions): Promise<SearchLoadResult> {
  let next = 0;
  const latencies: number[] = [];
  const serverTiming: SearchLoadResult['serverTiming'] = {
    queueMs: [],
    inferenceMs: [],
    otherMs: [],
    workerAppMs: [],
  };
  const started = performance.now();
  const client = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= o.queries) return;
      const t0 = performance.now();
      const res = await fetch(o.url, {
        method: 'POST',
        headers: { ...o.headers, 'content-type': 'application/json' },
        body: JSON.stringify(o.body(i)),
      });
      const text = await res.text();
      const t1 = performance.now();
      if (res.status !== 200) {
        throw new Error(
          `POST ${new URL(o.url).pathname} answered ${res.status}: ${text.slice(0, 400)}`,
        );
      }
      const parsed = JSON.parse(text) as { results?: unknown[] };
      if (!Array.isArray(parsed.results) || parsed.results.length === 0) {
        throw new Error(`POST ${new URL(o.url).pathname} returned no results`);
      }
      latencies.push(t1 - t0);
      const server = embedderTiming(res.headers);
      if (server) {
        serverTiming.queueMs.push(server.queue);
        serverTiming.inferenceMs.push(server.inference);
        serverTiming.otherMs.push(server.other);
      }
      const app = serverTimingDuration(res.headers.get('server-timing'), 'app');
      if (Number.isFinite(app)) serverTiming.workerAppMs.push(app);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, () => client()));
  const seconds = (performance.now() - started) / 1000;
  return {
    concurrency: o.concurrency,
    latencyMs: summarize(latencies),
    serverTiming,
    queriesPerSecond: latencies.length / seconds,
  };
}
