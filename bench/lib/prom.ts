/** A small reader for the Prometheus text exposition format (the embedder's GET /metrics). */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1');
    }
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

/** Sum of every sample named `name` whose labels include `match`. */
export function sumOf(
  samples: readonly Sample[],
  name: string,
  match: Record<string, string> = {},
) {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

export function has(samples: readonly Sample[], name: string): boolean {
  return samples.some((s) => s.name === name);
}

/** A histogram's cumulative bucket counts (le → count), count and sum, for matching labels. */
export interface Histogram {
  buckets: Map<number, number>;
  count: number;
  sum: number;
}

export function histogram(
  samples: readonly Sample[],
  name: string,
  match: Record<string, string> = {},
): Histogram {
  const buckets = new Map<number, number>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket`) continue;
    if (!Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + s.value);
  }
  return {
    buckets,
    count: sumOf(samples, `${name}_count`, match),
    sum: sumOf(samples, `${name}_sum`, match),
  };
}

/** `after − before`, bucket by bucket. */
export function histogramDelta(after: Histogram, before: Histogram): Histogram {
  const buckets = new Map<number, number>();
  for (const [le, n] of after.buckets) buckets.set(le, n - (before.buckets.get(le) ?? 0));
  return { buckets, count: after.count - before.count, sum: after.sum - before.sum };
}

/** Observations above `bound` (cumulative count at +Inf minus at the smallest le ≥ bound). */
export function countAbove(h: Histogram, bound: number): number {
  const les = [...h.buckets.keys()].filter((le) => le >= bound).sort((a, b) => a - b);
  const at = les.length > 0 ? (h.buckets.get(les[0] as number) ?? 0) : h.count;
  return h.count - at;
}

/** The smallest bucket bound that holds every observation (an upper bound on the maximum). */
export function maxBucket(h: Histogram): number {
  const les = [...h.buckets.keys()].sort((a, b) => a - b);
  for (const le of les) if ((h.buckets.get(le) ?? 0) >= h.count) return le;
  return Infinity;
}
