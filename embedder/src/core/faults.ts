/**
 * Fault injection for the reliability suite, off unless EMBEDDER_FAULTS_FILE is set (and refused
 * with NODE_ENV=production, see config.ts). The file is JSON:
 *
 *   {"store_unavailable"?: boolean, "reject_segment_prefix"?: string, "inference_delay_ms"?: number,
 *    "kill_mid_segment_prefix"?: string}
 *
 * It is re-read at most every 200 ms, and only when its modification time or size changed, so a
 * test can flip faults on and off while the embedder runs. A missing file means no faults; a file
 * that does not parse (e.g. caught half-written) keeps the previous state and is read again at the
 * next check.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import type { Logger } from '../log.js';
import type { BatchBackend } from './batcher.js';
import { StoreError } from '../store/types.js';
import type { StoreHooks, VectorStore } from '../store/types.js';

export interface FaultState {
  /** Every store call (write, search, delete, count, health) fails as if the store were down. */
  storeUnavailable: boolean;
  /** Items whose segment_id starts with this get a retryable `injected_fault` result ('' = off). */
  rejectSegmentPrefix: string;
  /** Added to every forward pass, to act like a slower model (0 = off). */
  inferenceDelayMs: number;
  /**
   * The process SIGKILLs itself inside a segment write of a segment whose segment_id starts with
   * this, after its new points are stored and before the older ones are pruned ('' = off).
   */
  killMidSegmentPrefix: string;
}

export const NO_FAULTS: FaultState = Object.freeze({
  storeUnavailable: false,
  rejectSegmentPrefix: '',
  inferenceDelayMs: 0,
  killMidSegmentPrefix: '',
});

const FaultFile = z.strictObject({
  store_unavailable: z.boolean().optional(),
  reject_segment_prefix: z.string().optional(),
  inference_delay_ms: z.int().min(0).max(60_000).optional(),
  kill_mid_segment_prefix: z.string().optional(),
});
/** The contents of EMBEDDER_FAULTS_FILE, as test harnesses write it (snake_case, all optional). */
export type FaultFile = z.infer<typeof FaultFile>;

export class Faults {
  private state: FaultState = NO_FAULTS;
  private checkedAt = -Infinity;
  private version = '';

  constructor(
    readonly file: string,
    private readonly logger: Logger,
    private readonly intervalMs = 200,
  ) {}

  /** The current faults (re-reading the file when due). */
  current(): FaultState {
    const now = performance.now();
    if (now - this.checkedAt < this.intervalMs) return this.state;
    this.checkedAt = now;
    let version: string;
    try {
      const st = statSync(this.file);
      version = `${st.mtimeMs}:${st.size}`;
    } catch {
      version = 'missing';
    }
    if (version === this.version) return this.state;
    if (version === 'missing') {
      this.update(NO_FAULTS, version);
      return this.state;
    }
    let parsed: z.infer<typeof FaultFile>;
    try {
      const result = FaultFile.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
      if (!result.success) {
        this.logger.warn('fault injection file is invalid; keeping the previous faults', {
          file: this.file,
          problem: result.error.issues
            .map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`)
            .join('; '),
        });
        return this.state;
      }
      parsed = result.data;
    } catch {
      // Unreadable or half-written JSON: keep the previous state, look again at the next check.
      return this.state;
    }
    this.update(
      {
        storeUnavailable: parsed.store_unavailable === true,
        rejectSegmentPrefix: parsed.reject_segment_prefix ?? '',
        inferenceDelayMs: parsed.inference_delay_ms ?? 0,
        killMidSegmentPrefix: parsed.kill_mid_segment_prefix ?? '',
      },
      version,
    );
    return this.state;
  }

  private update(next: FaultState, version: string): void {
    this.version = version;
    const changed =
      next.storeUnavailable !== this.state.storeUnavailable ||
      next.rejectSegmentPrefix !== this.state.rejectSegmentPrefix ||
      next.inferenceDelayMs !== this.state.inferenceDelayMs ||
      next.killMidSegmentPrefix !== this.state.killMidSegmentPrefix;
    this.state = next;
    if (changed) {
      this.logger.warn('fault injection changed', {
        store_unavailable: next.storeUnavailable,
        reject_segment_prefix: next.rejectSegmentPrefix || null,
        inference_delay_ms: next.inferenceDelayMs,
        kill_mid_segment_prefix: next.killMidSegmentPrefix || null,
      });
    }
  }
}

/**
 * The store hooks of `kill_mid_segment_prefix`: a crash (SIGKILL, no cleanup, nothing flushed)
 * in the middle of a segment write, as a power cut or an OOM kill would leave it.
 */
export function storeHooks(faults: Faults): StoreHooks {
  return {
    afterSegmentWrite: (points) => {
      const prefix = faults.current().killMidSegmentPrefix;
      if (prefix !== '' && points.some((p) => p.payload.segment_id.startsWith(prefix))) {
        process.kill(process.pid, 'SIGKILL');
      }
    },
  };
}

/** The backend with `inference_delay_ms` applied: each forward pass waits that long first. */
export function withInferenceFaults(backend: BatchBackend, faults: Faults): BatchBackend {
  return {
    infer: async (batch) => {
      const delay = faults.current().inferenceDelayMs;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      return backend.infer(batch);
    },
  };
}

/**
 * The store with `store_unavailable` applied: while it is on, every call but init/close throws
 * a StoreError, which the service reports as `store_unavailable` (503; the Worker retries).
 */
export function withStoreFaults(store: VectorStore, faults: Faults): VectorStore {
  /** `call`, unless the fault is on: then a StoreError before the store is reached. */
  const guarded =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (faults.current().storeUnavailable) {
        throw new StoreError(
          'could not reach the vector store: fault injection (store_unavailable) is on',
        );
      }
      return call(...args);
    };
  return {
    get kind() {
      return store.kind;
    },
    get keywordIndex() {
      return store.keywordIndex;
    },
    init: (dim) => store.init(dim),
    upsert: guarded((points) => store.upsert(points)),
    writeSegments: guarded((points) => store.writeSegments(points)),
    search: guarded((params) => store.search(params)),
    delete: guarded((params) => store.delete(params)),
    count: guarded((params) => store.count(params)),
    health: guarded(() => store.health()),
    close: () => store.close(),
  };
}
