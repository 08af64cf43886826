/**
 * `heimdex ingest <file|folder>…`: read the files into segments, submit them through
 * `POST /vectors/embed/batch` in chunks (a few requests in flight, retried on 429/5xx), then follow
 * each batch with `GET /batches/{batch_id}` (one request per unfinished batch per round, never one
 * per job) until all its jobs are SUCCEEDED or FAILED, and print a summary. Resubmitting the same
 * files is safe: identical segments map to their existing jobs (after a delete, the server makes
 * new ones). The CLI keeps no local state: what to embed is the server's decision every time.
 */
import type { IngestArgs } from './args.js';
import type { ApiClient } from './client.js';
import { ApiError, CliError } from './errors.js';
import type { Io } from './io.js';
import { Progress, formatDuration, formatRate } from './progress.js';
import { chunkSegments, readCorpus } from './segments.js';
import type { Segment } from './segments.js';

/** Stay well under the Worker's 1 MiB body limit. */
export const MAX_CHUNK_BYTES = 768 * 1024;
/** Batch status requests in flight at once. */
const POLL_CONCURRENCY = 4;

export interface IngestOptions extends IngestArgs {
  /** Delay between polling rounds (tests shorten it). */
  pollIntervalMs?: number;
}

interface JobRef {
  job_id: string;
  asset_id: string;
  segment_id: string;
  existing: boolean;
}

interface BatchAnswer {
  batch_id?: string;
  jobs: JobRef[];
}

/** `GET /batches/{batch_id}`. */
export interface BatchView {
  batch_id: string;
  total: number;
  counts: { queued: number; processing: number; succeeded: number; failed: number };
  done: boolean;
  failed_jobs: Array<{
    job_id: string;
    asset_id: string;
    segment_id: string;
    error: { code: string; message: string } | null;
  }>;
  created_at: string;
}

export const batchPath = (id: string) => `/batches/${encodeURIComponent(id)}`;
export const describeJobError = (e: { code: string; message: string } | null) =>
  e ? `${e.code}: ${e.message}` : 'failed';

export interface IngestSummary {
  files: number;
  segments: number;
  requests: number;
  /** created: new jobs; existing: the same text was already submitted (its job is reused). */
  jobs: { total: number; created: number; existing: number };
  /** The batch handles (`heimdex batch <id>` follows one). */
  batch_ids: string[];
  succeeded: number;
  failed: number;
  /** Not terminal when waiting stopped (timeout), or not waited for (--no-wait). */
  pending: number;
  /** Segments the API refused (4xx on their chunk). */
  rejected: number;
  failures: Array<{ job_id: string; asset_id: string; segment_id: string; error: string }>;
  rejections: Array<{ from: string; segments: number; error: string }>;
  retries: number;
  waited: boolean;
  timed_out: boolean;
  elapsed_ms: number;
}

/** Runs `fn` over `items` with at most `limit` in flight; the first error stops new work. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function ingest(
  io: Io,
  api: ApiClient,
  opts: IngestOptions,
  retries: { count: number },
): Promise<IngestSummary> {
  const started = Date.now();
  const corpus = await readCorpus(opts.paths, opts.asset, io.cwd);
  const chunks = chunkSegments(corpus.segments, {
    maxItems: opts.batchSize,
    maxBytes: MAX_CHUNK_BYTES,
  });
  const show = !io.quiet;
  const jobs: JobRef[] = [];
  /** Each accepted chunk's batch handle. */
  const batches: Array<{ id: string }> = [];
  let unfollowable = 0;
  const summary: IngestSummary = {
    files: corpus.files,
    segments: corpus.segments.length,
    requests: chunks.length,
    jobs: { total: 0, created: 0, existing: 0 },
    batch_ids: [],
    succeeded: 0,
    failed: 0,
    pending: 0,
    rejected: 0,
    failures: [],
    rejections: [],
    retries: 0,
    waited: opts.wait,
    timed_out: false,
    elapsed_ms: 0,
  };
  const note = () => (retries.count > 0 ? `${retries.count} retries` : '');

  // 1. Submit.
  const submit = new Progress(io.progress, 'submitting', corpus.segments.length, 'seg', show);
  let sent = 0;
  await eachLimited(chunks, opts.concurrency, async (chunk: Segment[]) => {
    try {
      const { body } = await api.request<BatchAnswer>('POST', '/vectors/embed/batch', {
        ...(opts.chunking !== undefined ? { chunking: opts.chunking } : {}),
        segments: chunk.map((s) => ({
          asset_id: s.asset_id,
          segment_id: s.segment_id,
          text: s.text,
        })),
      });
      jobs.push(...body.jobs);
      if (body.batch_id) batches.push({ id: body.batch_id });
      else unfollowable += body.jobs.length;
    } catch (err) {
      // The API refused this chunk (4xx, or 5xx after retries): count it, go on with the rest.
      if (!(err instanceof ApiError)) throw err;
      summary.rejected += chunk.length;
      summary.rejections.push({
        from: `${chunk[0]!.source}…${chunk.at(-1)!.source}`,
        segments: chunk.length,
        error: err.message,
      });
    }
    sent += chunk.length;
    submit.set(sent, note());
  });
  submit.finish(note());
  summary.batch_ids = batches.map((b) => b.id);
  summary.jobs = {
    total: jobs.length,
    created: jobs.filter((j) => !j.existing).length,
    existing: jobs.filter((j) => j.existing).length,
  };

  // 2. Follow the batches until every job is terminal: one request per unfinished batch a round.
  if (opts.wait && unfollowable > 0) {
    throw new CliError(
      `the API at ${api.origin} answered without a batch_id, so the jobs cannot be followed (it predates GET /batches); ingest with --no-wait`,
    );
  }
  const latest = new Map<string, BatchView>();
  const settled = () => {
    let n = 0;
    for (const v of latest.values()) n += v.counts.succeeded + v.counts.failed;
    return n;
  };
  if (opts.wait && jobs.length > 0) {
    const deadline = Date.now() + opts.timeoutSeconds * 1000;
    const bar = new Progress(io.progress, 'embedding', jobs.length, 'job', show);
    let open = batches;
    for (;;) {
      await eachLimited(open, POLL_CONCURRENCY, async (batch) => {
        try {
          latest.set(batch.id, (await api.request<BatchView>('GET', batchPath(batch.id))).body);
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          throw new CliError(`cannot follow batch ${batch.id}: ${err.message}`);
        }
      });
      bar.set(settled(), note());
      open = open.filter((b) => !latest.get(b.id)?.done);
      if (open.length === 0) break;
      if (Date.now() >= deadline) {
        summary.timed_out = true;
        break;
      }
      await new Promise((r) => setTimeout(r, opts.pollIntervalMs ?? 500));
    }
    bar.finish(summary.timed_out ? `timed out, ${jobs.length - settled()} unfinished` : note());
  }
  for (const b of batches) {
    const v = latest.get(b.id);
    if (!v) continue;
    summary.succeeded += v.counts.succeeded;
    summary.failed += v.counts.failed;
    for (const f of v.failed_jobs) {
      summary.failures.push({
        job_id: f.job_id,
        asset_id: f.asset_id,
        segment_id: f.segment_id,
        error: describeJobError(f.error),
      });
    }
  }
  summary.pending = jobs.length - summary.succeeded - summary.failed;
  summary.retries = retries.count;
  summary.elapsed_ms = Date.now() - started;
  return summary;
}

export function ingestExitCode(s: IngestSummary): number {
  return s.failed > 0 || s.rejected > 0 || (s.waited && s.pending > 0) ? 1 : 0;
}

export function printSummary(io: Io, s: IngestSummary): void {
  if (io.json) {
    io.out(JSON.stringify(s));
    return;
  }
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  io.out(
    `read     ${plural(s.files, 'file')}, ${plural(s.segments, 'segment')}; sent in ${plural(s.requests, 'request')}` +
      (s.retries > 0 ? ` (${s.retries} ${s.retries === 1 ? 'retry' : 'retries'})` : ''),
  );
  io.out(
    `jobs     ${s.jobs.total} (${s.jobs.created} new, ${s.jobs.existing} already submitted with the same text)` +
      (s.rejected > 0 ? `; ${plural(s.rejected, 'segment')} rejected` : ''),
  );
  if (s.waited) {
    io.out(
      `result   ${s.succeeded} succeeded, ${s.failed} failed` +
        (s.pending > 0 ? `, ${s.pending} unfinished (timed out)` : ''),
    );
  } else {
    io.out(`result   not waited for (--no-wait): follow each batch with heimdex batch <id>`);
    for (const id of s.batch_ids) io.out(`batch    ${id}`);
  }
  const secs = s.elapsed_ms / 1000;
  io.out(
    `time     ${formatDuration(s.elapsed_ms)} (${formatRate(s.segments / Math.max(secs, 0.001))} segments/s)`,
  );
  for (const r of s.rejections)
    io.err(`rejected ${plural(r.segments, 'segment')} (${r.from}): ${r.error}`);
  for (const f of s.failures) {
    io.err(`failed   ${f.asset_id} / ${f.segment_id} (job ${f.job_id}): ${f.error}`);
  }
}
