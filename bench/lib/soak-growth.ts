/**
 * The soak's pure arithmetic (tested in bench/bench.test.ts): a series sampled over time, its
 * post-warm-up baseline and end, and its growth per million writes; and the overwrite stream's
 * request bodies.
 */
import { randomUUID } from 'node:crypto';
import { slope } from './load.js';
import { median, round } from './stats.js';

/** One sample: seconds since the start, writes (items sent) so far, the value. */
export type GrowthSample = [seconds: number, writes: number, value: number];

export interface Growth {
  /** Median of the first fifth of the post-warm-up samples. */
  baseline: number;
  /** Median of the last fifth. */
  end: number;
  min: number;
  max: number;
  /** end / baseline − 1. */
  drift: number;
  /** Largest |sample / baseline − 1| after the warm-up. */
  maxDeviation: number;
  /**
   * Largest sample of the second half after the warm-up over the largest of the first half, − 1:
   * for a series that saw-tooths (disk between compactions), whether its peaks still rise.
   */
  peakGrowth: number;
  /**
   * Least-squares slope of the value over writes after the warm-up, × 1,000,000: what a million
   * more writes would add at the rate measured (the value's unit per million writes).
   */
  perMillionWrites: number;
}

/** The growth of a series after `warmupSeconds` (null when fewer than 10 samples remain). */
export function growthOf(samples: readonly GrowthSample[], warmupSeconds: number): Growth | null {
  const after = samples.filter(([t]) => t >= warmupSeconds);
  if (after.length < 10) return null;
  const values = after.map(([, , v]) => v);
  const fifth = Math.max(3, Math.floor(values.length / 5));
  const baseline = median(values.slice(0, fifth));
  const end = median(values.slice(-fifth));
  const perWrite = slope(
    after.map(([, w]) => w),
    values,
  );
  return {
    baseline: round(baseline),
    end: round(end),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
    drift: round(end / baseline - 1, 3),
    maxDeviation: round(Math.max(...values.map((v) => Math.abs(v / baseline - 1))), 3),
    peakGrowth: round(
      Math.max(...values.slice(Math.floor(values.length / 2))) /
        Math.max(...values.slice(0, Math.floor(values.length / 2))) -
        1,
      3,
    ),
    perMillionWrites: Number.isFinite(perWrite) ? round(perWrite * 1e6) : 0,
  };
}

/** Every `step`-th sample, rounded for the JSON (at most ~`max` samples). */
export function thinSamples(
  samples: readonly GrowthSample[],
  max = 120,
): [number, number, number][] {
  const step = Math.max(1, Math.floor(samples.length / max));
  return samples
    .filter((_, i) => i % step === 0)
    .map(([t, w, v]) => [Math.round(t), w, round(v)] as [number, number, number]);
}

/**
 * The overwrite stream: request bodies that rewrite the same `segments` segments in turn, each
 * time with another text and a higher seq, as the queue consumer would deliver a user's
 * re-submissions (every item an overwrite once the first round has been written).
 */
export class OverwriteStream {
  private seq = 1;
  private cursor = 0;
  /** Items handed out so far. */
  written = 0;

  constructor(
    private readonly texts: readonly string[],
    readonly segments: number,
    private readonly model: string,
    private readonly org: string,
  ) {
    if (segments < 1) throw new Error('the overwrite stream needs at least one segment');
  }

  /** Round of the next item (0 = the first write of each segment). */
  get round(): number {
    return Math.floor(this.cursor / this.segments);
  }

  body(n: number): string {
    const items = Array.from({ length: n }, () => {
      const k = this.cursor % this.segments;
      const round = Math.floor(this.cursor / this.segments);
      this.cursor++;
      return {
        job_id: randomUUID(),
        seq: this.seq++,
        org_id: this.org,
        asset_id: `soak-asset-${Math.floor(k / 100)}`,
        segment_id: `seg-${k}`,
        // Another text each round (the texts cycle with a stride that is not the segment count).
        text: this.texts[(k * 31 + round * 977) % this.texts.length] as string,
        model: this.model,
        model_ver: '1',
      };
    });
    this.written += n;
    return JSON.stringify({ items });
  }
}
