/**
 * `heimdex ingest <file|folder>…`: read the files into segments, submit them through
 * `POST /vectors/embed/batch` in chunks (a few requests in flight, retried on 429/5xx), then poll
 * the jobs until each is SUCCEEDED or FAILED and print a summary. Resubmitting the same files is
 * safe: identical segments map to their existing jobs.
 */
import type { ApiClient } from './client.js';
import { ApiError } from './errors.js';
import type { Io } from './io.js';
import { Progress, formatDuration, formatRate } from './progress.js';
import { chunkSegments, readCorpus } from './segments.js';
import type { Segment } from './segments.js';

/** Stay well under the Worker's 1 MiB body limit. */
export const MAX_CHUNK_BYTES = 768 * 1024;
const POLL_CONCURRENCY = 8;
/**
 * Jobs polled per round, oldest first. Jobs finish roughly in submission order, so polling a
 * window from the front (and moving on at once while the whole window is done) keeps the load on
 * the API proportional to progress, not to the number of jobs.
 */
const POLL_WINDOW = 32;

export interface IngestOptions {
  paths: string[];
  asset?: string;
  batchSize: number;
  concurrency: number;
  wait: boolean;
  timeoutSeconds: number;
  /** Delay between polling rounds (tests shorten it). */
  pollIntervalMs?: number;
}

interface JobRef {
  job_id: string;
  asset_id: string;
  segment_id: string;
  existing: boolean;
}

interface JobView {
  job_id: string;
  status: 'QUEUED' | 'PROCESSING' | 'SUCCEEDED' | 'FAILED';
  error: { code: string; message: string } | null;
}

export interface IngestSummary {
  files: number;
  segments: number;
  requests: number;
  jobs: { total: number; created: number; existing: number };
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
  const corpus = await readCorpus(opts.paths, opts.asset);
  const chunks = chunkSegments(corpus.segments, {
    maxItems: opts.batchSize,
    maxBytes: MAX_CHUNK_BYTES,
  });
  const show = !io.quiet;
  const jobs: JobRef[] = [];
  const summary: IngestSummary = {
    files: corpus.files,
    segments: corpus.segments.length,
    requests: chunks.length,
    jobs: { total: 0, created: 0, existing: 0 },
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
      const { body } = await api.request<{ jobs: JobRef[] }>('POST', '/vectors/embed/batch', {
        segments: chunk.map((s) => ({
          asset_id: s.asset_id,
          segment_id: s.segment_id,
          text: s.text,
        })),
      });
      jobs.push(...body.jobs);
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
  summary.jobs = {
    total: jobs.length,
    created: jobs.filter((j) => !j.existing).length,
    existing: jobs.filter((j) => j.existing).length,
  };

  // 2. Wait for every job to finish.
  const pending = new Map(jobs.map((j) => [j.job_id, j]));
  if (opts.wait && pending.size > 0) {
    const deadline = Date.now() + opts.timeoutSeconds * 1000;
    const bar = new Progress(io.progress, 'embedding', pending.size, 'job', show);
    let done = 0;
    for (;;) {
      const window = [...pending.values()].slice(0, POLL_WINDOW);
      await eachLimited(window, POLL_CONCURRENCY, async (ref) => {
        let view: JobView;
        try {
          view = (await api.request<JobView>('GET', `/jobs/${ref.job_id}`)).body;
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          view = {
            job_id: ref.job_id,
            status: 'FAILED',
            error: { code: 'unknown', message: err.message },
          };
        }
        if (view.status !== 'SUCCEEDED' && view.status !== 'FAILED') return;
        pending.delete(ref.job_id);
        done++;
        if (view.status === 'SUCCEEDED') summary.succeeded++;
        else {
          summary.failed++;
          summary.failures.push({
            job_id: ref.job_id,
            asset_id: ref.asset_id,
            segment_id: ref.segment_id,
            error: view.error ? `${view.error.code}: ${view.error.message}` : 'failed',
          });
        }
        bar.set(done, note());
      });
      if (pending.size === 0) break;
      if (window.every((ref) => !pending.has(ref.job_id))) continue;
      if (Date.now() >= deadline) {
        summary.timed_out = true;
        break;
      }
      await new Promise((r) => setTimeout(r, opts.pollIntervalMs ?? 500));
    }
    bar.finish(summary.timed_out ? `timed out, ${pending.size} unfinished` : note());
  }
  summary.pending = pending.size;
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
    `jobs     ${s.jobs.total} (${s.jobs.created} new, ${s.jobs.existing} unchanged)` +
      (s.rejected > 0 ? `; ${plural(s.rejected, 'segment')} rejected` : ''),
  );
  if (s.waited) {
    io.out(
      `result   ${s.succeeded} succeeded, ${s.failed} failed` +
        (s.pending > 0 ? `, ${s.pending} unfinished (timed out)` : ''),
    );
  } else {
    io.out(`result   not waited for (--no-wait): check with heimdex job <id>`);
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
