/**
 * Dynamic batching, in the manner of Hugging Face text-embeddings-inference: the one owner of a
 * model's queue. Work from concurrent requests (items of /internal/embed batches, search queries,
 * texts of POST /v1/embeddings) is queued per model and merged into forward passes bounded by a
 * padded-token budget and an item cap; queries go first, then embedding-API texts, then bulk
 * ingestion; similar lengths share a pass to limit padding;
 * work whose caller has gone is dropped before inference. One pass runs at a time per model (a
 * remote backend allows a few: BatchLimits.concurrency); while it runs, new work accumulates, and
 * the next pass takes what is queued then (no fixed delay).
 */
import { ServiceError } from './errors.js';
import type { Encoding } from './model.js';

/**
 * The queues of a model, highest first: `query` (one search query, a caller waiting on a single
 * vector), `api` (the texts of a POST /v1/embeddings request: a caller waits, but on up to 2,048
 * of them) and `passage` (ingestion from the queue, which nobody waits on). A pass always takes
 * the highest non-empty priority first.
 */
export const PRIORITIES = ['query', 'api', 'passage'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** One empty value per priority (a queue each, a depth each). */
function perPriority<T>(make: () => T): Record<Priority, T> {
  return Object.fromEntries(PRIORITIES.map((p) => [p, make()])) as Record<Priority, T>;
}

export interface BatchLimits {
  /** Padded tokens per pass: items × the longest item's tokens (special tokens included). */
  maxBatchTokens: number;
  /** Items per pass. */
  maxBatchItems: number;
  /**
   * Passes that may run at once (default 1: a local model runs one forward pass at a time). A
   * remote backend (core/remote-embedding.ts) runs several HTTP calls at once.
   */
  concurrency?: number;
}

/** What the batcher needs from a model: one forward pass. */
export interface BatchBackend {
  infer(batch: readonly Encoding[]): Promise<Float32Array[]>;
}

/** Hooks for metrics; every call carries counts and durations only. */
export interface BatchObserver {
  queueDepth(priority: Priority, items: number): void;
  batch(items: number, paddedTokens: number, seconds: number): void;
  cancelled(items: number): void;
}

export interface SubmitResult {
  /** Pooled, un-normalised vectors, in the order of the submitted encodings. */
  vectors: Float32Array[];
  /** Milliseconds the work waited: from submission to its last vector, minus its inference. */
  queueMs: number;
  /** Milliseconds of the forward passes that carried this work. */
  inferenceMs: number;
}

interface Job {
  vectors: Float32Array[];
  /** The admission this work holds; given back when the job settles. */
  admitted: Reservation | undefined;
  items: number;
  remaining: number;
  submittedAt: number;
  inferenceMs: number;
  settled: boolean;
  resolve(result: SubmitResult): void;
  reject(err: unknown): void;
  detach(): void;
}

interface Entry {
  job: Job;
  index: number;
  encoding: Encoding;
  /** Padded length of this item: its tokens, special tokens included. */
  tokens: number;
  arrival: number;
}

/**
 * Admission control shared by all models' batchers (TEI's `Infer` permits): at most `capacity`
 * items may be admitted and not yet embedded. A request reserves before tokenizing, so an
 * overloaded embedder answers 429 without spending work on it, and hands its reservation to
 * `Batcher.submit`, which gives the submitted items back once they leave the queue (embedded,
 * failed or dropped); the request releases what it never submitted when it ends. A request larger
 * than the whole capacity is admitted only when nothing else is held (it then runs alone) so that
 * it can never be starved.
 */
export class QueueLimiter {
  private held = 0;

  constructor(
    readonly capacity: number,
    private readonly retryAfterSeconds = 1,
  ) {}

  /** Items admitted and not yet released. */
  get size(): number {
    return this.held;
  }

  /** Reserves room for `items` or throws `overloaded` (429 + Retry-After). */
  reserve(items: number): Reservation {
    if (items > 0 && this.held > 0 && this.held + items > this.capacity) {
      throw new ServiceError(
        'overloaded',
        `the embedder is at capacity (${this.capacity} queued items); retry later`,
        { retryAfterSeconds: this.retryAfterSeconds, retryable: true },
      );
    }
    this.held += items;
    let left = items;
    return {
      release: (count = left) => {
        const n = Math.min(Math.max(0, count), left);
        left -= n;
        this.held -= n;
      },
    };
  }
}

export interface Reservation {
  /** Gives back `count` items (default: all that are left). Idempotent past zero. */
  release(count?: number): void;
}

/** The queue and forward-pass loop of one model. */
export class Batcher {
  private readonly queues: Record<Priority, Entry[]> = perPriority((): Entry[] => []);
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private arrivals = 0;
  private drained: (() => void)[] = [];

  constructor(
    private readonly backend: BatchBackend,
    private readonly limits: BatchLimits,
    private readonly observer?: BatchObserver,
  ) {}

  /** Items waiting (not yet in a pass), per priority. */
  get depth(): Record<Priority, number> {
    const depth = perPriority(() => 0);
    for (const p of PRIORITIES) depth[p] = this.queues[p].length;
    return depth;
  }

  /** True while a forward pass runs. */
  get busy(): boolean {
    return this.inFlight > 0;
  }

  /**
   * Queues `encodings` (each must have at least one token) and resolves with their vectors once
   * every one has been through a forward pass. When `signal` aborts first, the items still queued
   * are dropped (never inferred) and the promise rejects with `cancelled`. `admitted` is the
   * caller's admission: `encodings.length` of its items are released when the work settles.
   */
  submit(
    encodings: readonly Encoding[],
    priority: Priority,
    signal?: AbortSignal,
    admitted?: Reservation,
  ): Promise<SubmitResult> {
    const refusal = this.closed
      ? new ServiceError('model_not_ready', 'the embedder is shutting down', { retryable: true })
      : signal?.aborted
        ? cancelledError()
        : null;
    if (refusal || encodings.length === 0) {
      admitted?.release(encodings.length);
      if (refusal) return Promise.reject(refusal);
      return Promise.resolve({ vectors: [], queueMs: 0, inferenceMs: 0 });
    }

    return new Promise<SubmitResult>((resolve, reject) => {
      const onAbort = (): void => {
        if (job.settled) return;
        const dropped = this.drop(job);
        if (dropped > 0) this.observer?.cancelled(dropped);
        this.settle(job, cancelledError());
      };
      const job: Job = {
        vectors: new Array<Float32Array>(encodings.length),
        admitted,
        items: encodings.length,
        remaining: encodings.length,
        submittedAt: performance.now(),
        inferenceMs: 0,
        settled: false,
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const queue = this.queues[priority];
      encodings.forEach((encoding, index) => {
        queue.push({
          job,
          index,
          encoding,
          tokens: Math.max(1, encoding.tokens ?? encoding.ids.length),
          arrival: this.arrivals++,
        });
      });
      this.observer?.queueDepth(priority, queue.length);
      this.schedule();
    });
  }

  /**
   * Stops taking new work and resolves once everything already queued has been inferred and
   * the running pass (if any) has finished.
   */
  close(): Promise<void> {
    this.closed = true;
    if (this.inFlight === 0 && !this.scheduled && this.queued() === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private queued(): number {
    return PRIORITIES.reduce((n, p) => n + this.queues[p].length, 0);
  }

  private get concurrency(): number {
    return Math.max(1, this.limits.concurrency ?? 1);
  }

  private schedule(): void {
    if (this.inFlight >= this.concurrency || this.scheduled || this.queued() === 0) return;
    this.scheduled = true;
    // Yield once so that work submitted in the same turn of the event loop shares the pass.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Starts passes while there is queued work and room for one; each finished pass pumps again. */
  private pump(): void {
    while (this.inFlight < this.concurrency && this.queued() > 0) {
      const batch = this.take();
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        // The next pass takes what is queued now (no fixed delay).
        this.pump();
      });
    }
    if (this.closed && this.inFlight === 0 && !this.scheduled && this.queued() === 0) {
      for (const resolve of this.drained.splice(0)) resolve();
    }
  }

  private async run(batch: Entry[]): Promise<void> {
    const paddedTokens = batch.length * Math.max(...batch.map((e) => e.tokens));
    const started = performance.now();
    let vectors: Float32Array[];
    try {
      vectors = await this.backend.infer(batch.map((e) => e.encoding));
      if (vectors.length !== batch.length) throw new Error('embedding output does not match');
    } catch (err) {
      for (const { job } of batch) {
        if (job.settled) continue;
        this.drop(job);
        this.settle(job, err);
      }
      return;
    }
    const ms = performance.now() - started;
    this.observer?.batch(batch.length, paddedTokens, ms / 1000);
    const jobs = new Set<Job>();
    batch.forEach((entry, row) => {
      const { job } = entry;
      if (job.settled) return; // its caller has gone; the vector is discarded
      job.vectors[entry.index] = vectors[row] as Float32Array;
      job.remaining--;
      jobs.add(job);
    });
    for (const job of jobs) {
      job.inferenceMs += ms;
      if (job.remaining === 0) this.settle(job, null);
    }
  }

  /**
   * The next pass. It always holds the oldest entry of the highest non-empty priority (so no work
   * starves), then grows, over that priority's entries sorted by length, to the neighbour that adds
   * the least padding, while `items × longest ≤ maxBatchTokens` and `items ≤ maxBatchItems`. When a
   * priority fits entirely, the next one fills the remaining room the same way.
   */
  private take(): Entry[] {
    const { maxBatchTokens, maxBatchItems } = this.limits;
    const batch: Entry[] = [];
    let longest = 0;
    for (const priority of PRIORITIES) {
      const queue = this.queues[priority];
      if (queue.length === 0) continue;
      const sorted = [...queue].sort((a, b) => a.tokens - b.tokens || a.arrival - b.arrival);
      let lo: number;
      let hi: number;
      if (batch.length === 0) {
        // queue[0] is the oldest: arrival order is kept by push and filter.
        const anchor = queue[0] as Entry;
        lo = sorted.indexOf(anchor);
        hi = lo + 1;
        batch.push(anchor);
        longest = anchor.tokens;
      } else {
        lo = lowerBound(sorted, longest);
        hi = lo;
      }
      while (batch.length < maxBatchItems) {
        const n = batch.length;
        const left = lo > 0 ? sorted[lo - 1] : undefined;
        const right = hi < sorted.length ? sorted[hi] : undefined;
        const fits = (e: Entry | undefined): e is Entry =>
          e !== undefined && (n + 1) * Math.max(longest, e.tokens) <= maxBatchTokens;
        const waste = (e: Entry): number =>
          e.tokens <= longest ? longest - e.tokens : n * (e.tokens - longest);
        let pick: Entry;
        if (fits(left) && (!fits(right) || waste(left) <= waste(right))) {
          pick = left;
          lo--;
        } else if (fits(right)) {
          pick = right;
          hi++;
        } else {
          break;
        }
        batch.push(pick);
        longest = Math.max(longest, pick.tokens);
      }
      const taken = new Set(batch);
      this.queues[priority] = queue.filter((e) => !taken.has(e));
      this.observer?.queueDepth(priority, this.queues[priority].length);
      if (lo > 0 || hi < sorted.length) break; // this priority did not fit: the pass is full
    }
    return batch;
  }

  /** Removes a job's queued entries; returns how many were removed. */
  private drop(job: Job): number {
    let dropped = 0;
    for (const priority of PRIORITIES) {
      const queue = this.queues[priority];
      const kept = queue.filter((e) => e.job !== job);
      if (kept.length !== queue.length) {
        dropped += queue.length - kept.length;
        this.queues[priority] = kept;
        this.observer?.queueDepth(priority, kept.length);
      }
    }
    return dropped;
  }

  private settle(job: Job, error: unknown): void {
    if (job.settled) return;
    job.settled = true;
    job.detach();
    job.admitted?.release(job.items);
    if (error !== null) {
      job.reject(error);
      return;
    }
    const total = performance.now() - job.submittedAt;
    job.resolve({
      vectors: job.vectors,
      queueMs: Math.max(0, total - job.inferenceMs),
      inferenceMs: job.inferenceMs,
    });
  }
}

/** Index of the first entry with `tokens >= value` in a list sorted by tokens. */
function lowerBound(sorted: readonly Entry[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sorted[mid] as Entry).tokens < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function cancelledError(): ServiceError {
  return new ServiceError('cancelled', 'the request was aborted by its caller');
}
