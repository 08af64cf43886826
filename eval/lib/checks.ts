/**
 * What one eval run is judged on (issue 15's quality targets and the dense reference's), and how
 * two runs agree: pure functions of the figures, ids and numbers only.
 */
import { round } from '../../bench/lib/stats.js';
import type { Run } from './metrics.js';

/** Dense mode's nDCG@10 must be within this of sentence-transformers' (same model, exact search). */
export const NDCG_TOLERANCE = 0.005;
/** Hybrid mode's nDCG@10 must exceed dense mode's by at least this. */
export const HYBRID_GAIN = 0.03;
/** Keyword mode's nDCG@10 must be within this of the reference BM25's. */
export const BM25_TOLERANCE = 0.02;
/** Comparisons allow this much floating-point noise. */
const EPS = 1e-9;

export type CheckStatus = 'met' | 'not met' | 'not measured';

export interface Check {
  id: 'dense-vs-reference' | 'hybrid-over-dense' | 'hybrid-over-best-single' | 'keyword-vs-bm25';
  target: string;
  status: CheckStatus;
  /** The figure the target is about (a difference of nDCG@10s), null when not measured. */
  measured: number | null;
  /** The figures, in words (why a check is not measured, when it is not). */
  figures: string;
}

/** The nDCG@10s the checks compare; null where that run did not happen. */
export interface CheckInputs {
  dense: number | null;
  keyword: number | null;
  hybrid: number | null;
  /** sentence-transformers, exact cosine (eval/reference.py). */
  reference: number | null;
  /** The in-process BM25 over the same terms (eval/lib/bm25.ts). */
  bm25: number | null;
}

const f4 = (x: number) => x.toFixed(4);
const signed = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`;

function missing(inputs: CheckInputs, needs: (keyof CheckInputs)[]): string | null {
  const absent = needs.filter((k) => inputs[k] === null || !Number.isFinite(inputs[k]));
  if (absent.length === 0) return null;
  return `no ${absent.join(', ')} figure (${absent.length === 1 ? 'it' : 'they'} did not run)`;
}

/** The figures of a check whose inputs were all measured: the difference judged, in words. */
interface Judgement {
  met: boolean;
  measured: number;
  figures: string;
}

/** One target: the inputs it needs, and how it judges them once they are all measured. */
interface CheckDef {
  id: Check['id'];
  target: string;
  needs: (keyof CheckInputs)[];
  judge: (x: Record<keyof CheckInputs, number>) => Judgement;
}

/**
 * "`a`'s nDCG@10 within ±tolerance of `b`'s": each side is an input and its name in the figures.
 */
function withinCheck(
  id: Check['id'],
  target: string,
  tolerance: number,
  [a, aName]: [keyof CheckInputs, string],
  [b, bName]: [keyof CheckInputs, string],
): CheckDef {
  return {
    id,
    target,
    needs: [a, b],
    judge: (x) => {
      const d = x[a] - x[b];
      return {
        met: Math.abs(d) <= tolerance + EPS,
        measured: Math.abs(d),
        figures: `${aName} ${f4(x[a])}, ${bName} ${f4(x[b])}: ${signed(d)}`,
      };
    },
  };
}

const CHECKS: CheckDef[] = [
  withinCheck(
    'dense-vs-reference',
    `dense nDCG@10 within ±${NDCG_TOLERANCE} of sentence-transformers' (exact cosine)`,
    NDCG_TOLERANCE,
    ['dense', 'dense'],
    ['reference', 'reference'],
  ),
  {
    id: 'hybrid-over-dense',
    target: `hybrid nDCG@10 ≥ dense + ${HYBRID_GAIN}`,
    needs: ['hybrid', 'dense'],
    judge: (x) => {
      const d = x.hybrid - x.dense;
      return {
        met: d >= HYBRID_GAIN - EPS,
        measured: d,
        figures: `hybrid ${f4(x.hybrid)}, dense ${f4(x.dense)}: ${signed(d)} (needs ≥ +${HYBRID_GAIN.toFixed(4)})`,
      };
    },
  },
  {
    id: 'hybrid-over-best-single',
    target: 'hybrid nDCG@10 ≥ max(dense, keyword)',
    needs: ['hybrid', 'dense', 'keyword'],
    judge: (x) => {
      const best = Math.max(x.dense, x.keyword);
      const which = x.dense >= x.keyword ? 'dense' : 'keyword';
      const d = x.hybrid - best;
      return {
        met: d >= -EPS,
        measured: d,
        figures: `hybrid ${f4(x.hybrid)}, best single mode ${which} ${f4(best)}: ${signed(d)}`,
      };
    },
  },
  withinCheck(
    'keyword-vs-bm25',
    `keyword nDCG@10 within ±${BM25_TOLERANCE} of the reference BM25's (same terms)`,
    BM25_TOLERANCE,
    ['keyword', 'keyword'],
    ['bm25', 'BM25'],
  ),
];

export function computeChecks(x: CheckInputs): Check[] {
  return CHECKS.map(({ id, target, needs, judge }): Check => {
    const why = missing(x, needs);
    if (why) return { id, target, status: 'not measured', measured: null, figures: why };
    // missing() found every input it needs measured (a finite number).
    const { met, measured, figures } = judge(x as Record<keyof CheckInputs, number>);
    return { id, target, status: met ? 'met' : 'not met', measured: round(measured, 6), figures };
  });
}

export interface Agreement {
  /** Mean over queries of |top 10 ∩ the other run's top 10| / 10. */
  top10Overlap: number;
  /** Queries whose first result is the other run's first result. */
  top1Same: number;
  /** |score − the other run's score| over documents in both top 100s. */
  scoreAbsDiff: { mean: number; max: number; pairs: number };
}

/** How closely two runs agree: ranking overlap and score differences (ids and numbers only). */
export function agreement(run: Run, other: Run, queries: readonly string[]): Agreement {
  let overlap = 0;
  let top1 = 0;
  let diffSum = 0;
  let diffMax = 0;
  let pairs = 0;
  const top = (scores: ReadonlyMap<string, number> | undefined, k: number) =>
    [...(scores ?? new Map<string, number>())]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([d]) => d);
  for (const q of queries) {
    const h = run.get(q);
    const r = other.get(q);
    const h10 = top(h, 10);
    const r10 = new Set(top(r, 10));
    overlap += h10.filter((d) => r10.has(d)).length / 10;
    if (h10[0] !== undefined && h10[0] === top(r, 1)[0]) top1++;
    for (const [doc, score] of h ?? []) {
      const o = r?.get(doc);
      if (o === undefined) continue;
      const d = Math.abs(score - o);
      diffSum += d;
      diffMax = Math.max(diffMax, d);
      pairs++;
    }
  }
  return {
    top10Overlap: round(overlap / Math.max(1, queries.length)),
    top1Same: top1,
    scoreAbsDiff: { mean: pairs ? round(diffSum / pairs) : NaN, max: round(diffMax), pairs },
  };
}

export interface MetricDelta {
  ndcgAt10: number;
  recallAt100: number;
  mrrAt10: number;
}

/** `a − b` for each metric (6 significant digits). */
export function metricDelta(
  a: { ndcgAt10: number; recallAt100: number; mrrAt10: number },
  b: { ndcgAt10: number; recallAt100: number; mrrAt10: number },
): MetricDelta {
  return {
    ndcgAt10: round(a.ndcgAt10 - b.ndcgAt10, 6),
    recallAt100: round(a.recallAt100 - b.recallAt100, 6),
    mrrAt10: round(a.mrrAt10 - b.mrrAt10, 6),
  };
}

/** The chunking target for one chunked setting and mode: nDCG@10 ≥ truncate's. */
export interface ChunkingCheck {
  /** The chunked setting's label (`default`, `128:16`). */
  chunking: string;
  /** The pass's label (`dense`, `hybrid`). */
  mode: string;
  target: string;
  status: Exclude<CheckStatus, 'not measured'>;
  /** nDCG@10 of the chunked pass − truncate's. */
  measured: number;
  figures: string;
}

/** What chunkingChecks reads of a setting's run: its label, whether it truncates, its passes. */
export interface ChunkingRunFigures {
  label: string;
  truncates: boolean;
  modes: readonly { label: string; metrics: { ndcgAt10: number } }[];
}

/**
 * "Chunked nDCG@10 ≥ truncated": every pass of every chunked setting against the same pass of the
 * first truncating setting; none without a truncating setting.
 */
export function chunkingChecks(runs: readonly ChunkingRunFigures[]): ChunkingCheck[] {
  const base = runs.find((r) => r.truncates);
  if (!base) return [];
  return runs
    .filter((r) => !r.truncates)
    .flatMap((r) =>
      r.modes.flatMap((m) => {
        const t = base.modes.find((b) => b.label === m.label);
        if (!t) return [];
        const d = m.metrics.ndcgAt10 - t.metrics.ndcgAt10;
        return [
          {
            chunking: r.label,
            mode: m.label,
            target: `${m.label} nDCG@10, chunking ${r.label} ≥ ${base.label}`,
            status: d >= -EPS ? ('met' as const) : ('not met' as const),
            measured: round(d, 6),
            figures: `${r.label} ${f4(m.metrics.ndcgAt10)}, ${base.label} ${f4(t.metrics.ndcgAt10)}: ${signed(d)}`,
          },
        ];
      }),
    );
}
