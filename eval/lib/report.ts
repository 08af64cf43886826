/** The evaluation's JSON document and its Markdown rendering (ids and numbers only). */
import type { SearchMode } from '../../contract/internal.js';
import type { RunEnvelope } from '../../bench/lib/envelope.js';
import type { Summary } from '../../bench/lib/stats.js';
import { HYBRID_GAIN, computeChecks } from './checks.js';
import type { Agreement, Check, MetricDelta } from './checks.js';
import type { IngestResult } from './heimdex.js';
import type { MetricSummary } from './metrics.js';
import type { FusionSettings } from './options.js';

export { NDCG_TOLERANCE } from './checks.js';
export type { Agreement } from './checks.js';

export interface ReferenceResult {
  metrics: MetricSummary;
  /** eval/lib/metrics.ts applied to the reference's run: must equal pytrec_eval's figures. */
  metricsByThisCode: MetricSummary;
  /** Largest |this code − pytrec_eval| over the three metrics. */
  metricCodeMaxDiff: number;
  model: Record<string, unknown>;
  seconds: Record<string, number>;
  docsPerSecond: number;
  /** Wall time of the whole reference process, as this runner saw it. */
  wallSeconds: number;
  settings: Record<string, unknown>;
  versions: Record<string, string>;
}

/** One pass of the split's queries through POST /vectors/search in one mode. */
export interface ModeRun {
  /** "dense", "keyword", "hybrid", or "hybrid k=10 weight=0.3" in the fusion sweep. */
  label: string;
  mode: SearchMode;
  /** Hybrid: the fusion options the requests carried ({}: none, the API's defaults). */
  fusionSent: Partial<FusionSettings> | null;
  /** Hybrid: the fusion in effect (what was sent, the API's defaults for the rest). */
  fusion: FusionSettings | null;
  metrics: MetricSummary;
  search: {
    queries: number;
    limit: number;
    latencyMs: Summary;
    unknownResults: number;
    /** The mode the API said it used (the last answer's). */
    modeReported: string | null;
  };
  /** A sweep entry equal to a pass already made reuses that pass's figures: its label. */
  sameAs?: string;
}

/** The in-process BM25 over the same terms as the keyword index (eval/lib/bm25.ts). */
export interface Bm25Result {
  metrics: MetricSummary;
  seconds: number;
  settings: Record<string, unknown>;
  /** Keyword mode − this, when keyword mode ran. */
  delta: MetricDelta | null;
  /** Keyword mode against this, when keyword mode ran. */
  agreement: Agreement | null;
}

export interface EvalResult extends RunEnvelope {
  schema: 'heimdex-eval/2';
  dataset: {
    name: string;
    split: string;
    docs: number;
    blankDocs: number;
    queries: number;
    files: Record<string, { bytes: number; sha256: string }>;
  };
  model: {
    name: string;
    dir: string;
    dtype: string;
    files: Record<string, { bytes: number; sha256: string }>;
  };
  settings: Record<string, unknown>;
  heimdex: {
    ingest: IngestResult;
    /** One pass per `--modes` entry, in that order. */
    modes: ModeRun[];
    /** `--sweep-fusion`: hybrid over the grid; null when not asked. */
    sweep: ModeRun[] | null;
    /** The sweep's best nDCG@10 (the first of equals). */
    sweepBest: { k: number; weight: number; ndcgAt10: number } | null;
  };
  /** sentence-transformers (eval/reference.py): dense mode's reference. */
  reference: ReferenceResult | null;
  /** Dense mode − the reference. */
  delta: MetricDelta | null;
  /** Dense mode against the reference. */
  agreement: Agreement | null;
  bm25: Bm25Result;
  checks: Check[];
  warnings: string[];
}

/** The sweep entry with the best nDCG@10 (the first of equals), null for none. */
export function bestOfSweep(
  sweep: readonly ModeRun[] | null,
): { k: number; weight: number; ndcgAt10: number } | null {
  let best: ModeRun | null = null;
  for (const run of sweep ?? []) {
    if (!run.fusion || !Number.isFinite(run.metrics.ndcgAt10)) continue;
    if (best === null || run.metrics.ndcgAt10 > best.metrics.ndcgAt10) best = run;
  }
  return best?.fusion
    ? { k: best.fusion.k, weight: best.fusion.weight, ndcgAt10: best.metrics.ndcgAt10 }
    : null;
}

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '–');
const signed = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(4)}` : '–');
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const statusText = (s: Check['status']) => (s === 'not measured' ? s : `**${s}**`);

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) =>
    Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)),
  );
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [
    line(headers),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...rows.map(line),
  ].join('\n');
}

/** "hybrid (k 60, weight 0.5, the API's defaults)" and the like. */
export function describeRun(run: ModeRun): string {
  if (run.mode !== 'hybrid' || !run.fusion) return run.label;
  const sent = run.fusionSent ?? {};
  const defaults =
    sent.k === undefined && sent.weight === undefined
      ? ", the API's defaults"
      : sent.k === undefined || sent.weight === undefined
        ? ", the rest the API's defaults"
        : '';
  return `${run.label} (RRF k ${run.fusion.k}, weight ${run.fusion.weight}${defaults})`;
}

const byMode = (r: EvalResult, mode: SearchMode) => r.heimdex.modes.find((m) => m.mode === mode);

export function renderEval(r: EvalResult): string {
  const out: string[] = [];
  const h = r.heimdex;
  out.push(
    `# Heimdex eval — ${r.dataset.name} ${r.dataset.split}, ${r.model.name} (${r.model.dtype})`,
  );
  out.push('');
  out.push(`Command: \`${r.command}\``);
  out.push(
    `Run ${r.startedAt} (${(r.durationSeconds / 60).toFixed(1)} min); ${r.machine.cpuModel}, ${r.machine.cores} cores, Node ${r.machine.node}` +
      `, load average ${r.loadAverage.start.join(' ')} at start, ${r.loadAverage.end.join(' ')} at end` +
      (r.machine.git
        ? `; commit ${r.machine.git.commit.slice(0, 12)}${r.machine.git.dirty ? ' (dirty)' : ''}`
        : '') +
      '.',
  );
  const evaluated = r.bm25.metrics;
  out.push(
    `Dataset: ${r.dataset.docs} documents (title + " " + text)${r.dataset.blankDocs ? `, ${r.dataset.blankDocs} blank left out` : ''}, ` +
      `${r.dataset.queries} queries of the ${r.dataset.split} split, ${evaluated.queries} evaluated` +
      (evaluated.skippedNoRelevant
        ? ` (${evaluated.skippedNoRelevant} without a relevant document skipped)`
        : '') +
      `. Ingested once; each mode is one pass of the queries through POST /vectors/search (limit ${String(r.settings.limit ?? 100)}).`,
  );
  out.push('');
  out.push('## Retrieval quality\n');
  /** A row of the quality table: the system, its three metrics, and its search latencies. */
  const qualityRow = (
    system: string,
    m: MetricDelta,
    format: (x: number) => string,
    latency = ['', ''],
  ) => [system, format(m.ndcgAt10), format(m.recallAt100), format(m.mrrAt10), ...latency];
  const rows: string[][] = h.modes.map((m) =>
    qualityRow(`Heimdex ${describeRun(m)}`, m.metrics, f4, [
      ms(m.search.latencyMs.p50),
      ms(m.search.latencyMs.p95),
    ]),
  );
  const bm = r.bm25;
  const bmSettings = `k1 ${String(bm.settings.k1)}, b ${String(bm.settings.b)}`;
  rows.push(
    qualityRow(`reference BM25 (eval/lib/bm25.ts, ${bmSettings}, same terms)`, bm.metrics, f4),
  );
  if (bm.delta) rows.push(qualityRow('delta (keyword − reference BM25)', bm.delta, signed));
  if (r.reference) {
    const st = `sentence-transformers ${r.reference.versions['sentence-transformers'] ?? ''}`;
    rows.push(qualityRow(`${st}, exact cosine`, r.reference.metrics, f4));
  }
  if (r.delta) rows.push(qualityRow('delta (dense − sentence-transformers)', r.delta, signed));
  out.push(
    table(['system', 'nDCG@10', 'Recall@100', 'MRR@10', 'search p50 ms', 'search p95 ms'], rows),
  );
  out.push('');
  out.push('## Checks\n');
  out.push(
    table(
      ['target', 'figures', 'status'],
      r.checks.map((c) => [c.target, c.figures, statusText(c.status)]),
    ),
  );
  const notes: string[] = [];
  if (r.agreement) {
    const a = r.agreement;
    notes.push(
      `Dense mode against sentence-transformers: top-10 overlap ${(a.top10Overlap * 100).toFixed(1)}%, same first result for ${a.top1Same} of ${r.dataset.queries} queries; ` +
        `|score difference| on the ${a.scoreAbsDiff.pairs} documents in both top 100s: mean ${a.scoreAbsDiff.mean.toExponential(2)}, max ${a.scoreAbsDiff.max.toExponential(2)}.`,
    );
  }
  if (bm.agreement) {
    const a = bm.agreement;
    notes.push(
      `Keyword mode against the reference BM25: top-10 overlap ${(a.top10Overlap * 100).toFixed(1)}%, same first result for ${a.top1Same} of ${r.dataset.queries} queries; ` +
        `|score difference| on the ${a.scoreAbsDiff.pairs} documents in both top 100s: mean ${a.scoreAbsDiff.mean.toExponential(2)}, max ${a.scoreAbsDiff.max.toExponential(2)}.`,
    );
  }
  if (r.reference) {
    notes.push(
      `Metric code check: eval/lib/metrics.ts on the reference's run differs from pytrec_eval by at most ${r.reference.metricCodeMaxDiff.toExponential(2)}.`,
    );
  }
  for (const n of notes) {
    out.push('');
    out.push(n);
  }
  if (h.sweep) {
    out.push('');
    out.push('## Fusion sweep (hybrid)\n');
    const dense = byMode(r, 'dense')?.metrics.ndcgAt10 ?? null;
    const keyword = byMode(r, 'keyword')?.metrics.ndcgAt10 ?? null;
    const sweepRows = h.sweep.map((s) => {
      const checks = computeChecks({
        dense,
        keyword,
        hybrid: s.metrics.ndcgAt10,
        reference: null,
        bm25: null,
      });
      const status = (id: Check['id']) => checks.find((c) => c.id === id)?.status ?? 'not measured';
      return [
        String(s.fusion?.k ?? ''),
        String(s.fusion?.weight ?? ''),
        f4(s.metrics.ndcgAt10),
        f4(s.metrics.recallAt100),
        f4(s.metrics.mrrAt10),
        dense === null ? '–' : signed(s.metrics.ndcgAt10 - dense),
        status('hybrid-over-dense'),
        status('hybrid-over-best-single'),
        `${ms(s.search.latencyMs.p50)}${s.sameAs ? ` (${s.sameAs} pass)` : ''}`,
      ];
    });
    out.push(
      table(
        [
          'k',
          'weight',
          'nDCG@10',
          'Recall@100',
          'MRR@10',
          'vs dense',
          `≥ dense + ${HYBRID_GAIN}`,
          '≥ best single',
          'p50 ms',
        ],
        sweepRows,
      ),
    );
    out.push('');
    const best = h.sweepBest;
    const hybrid = byMode(r, 'hybrid');
    out.push(
      best
        ? `Best nDCG@10 of the sweep: k ${best.k}, weight ${best.weight} (${f4(best.ndcgAt10)})` +
            (hybrid?.fusion
              ? `; the hybrid pass (k ${hybrid.fusion.k}, weight ${hybrid.fusion.weight}) scored ${f4(hybrid.metrics.ndcgAt10)} (${signed(hybrid.metrics.ndcgAt10 - best.ndcgAt10)}).`
              : '.')
        : 'The sweep measured nothing.',
    );
  }
  out.push('');
  out.push('## Speed\n');
  const i = h.ingest;
  const dense = byMode(r, 'dense');
  const hybrid = byMode(r, 'hybrid');
  out.push(
    table(
      ['measure', 'value'],
      [
        [
          'ingest (POST /vectors/embed/batch → queue → embedder → store, until every job is done)',
          `${i.textsPerSecond.toFixed(1)} texts/s (${i.docs} in ${i.seconds.toFixed(1)} s, ${i.requests} requests)`,
        ],
        ['of which posting (the API accepting the batches)', `${i.submitSeconds.toFixed(1)} s`],
        [
          'jobs succeeded / failed',
          `${i.succeeded} / ${i.failed}${
            i.failed
              ? ` (${Object.entries(i.failedCodes)
                  .map(([c, n]) => `${c} ×${n}`)
                  .join(', ')})`
              : ''
          }`,
        ],
        ...h.modes.map((m) => [
          `search, ${m.label}, through the Worker, one client, limit ${m.search.limit}`,
          `p50 ${ms(m.search.latencyMs.p50)} ms, p95 ${ms(m.search.latencyMs.p95)} ms, p99 ${ms(m.search.latencyMs.p99)} ms (${m.search.queries} queries)`,
        ]),
        ...(dense && hybrid
          ? [
              [
                'hybrid p50 / dense p50',
                `${(hybrid.search.latencyMs.p50 / dense.search.latencyMs.p50).toFixed(2)}×`,
              ],
            ]
          : []),
        ['reference BM25 (index + every query, in process)', `${r.bm25.seconds.toFixed(1)} s`],
        ...(r.reference
          ? [
              [
                'reference encode (sentence-transformers, corpus)',
                `${r.reference.docsPerSecond.toFixed(1)} texts/s; reference wall time ${r.reference.wallSeconds.toFixed(0)} s`,
              ],
            ]
          : []),
      ],
    ),
  );
  out.push('');
  out.push(`Reference: ${String(r.settings.referenceRan ?? '')}.`);
  out.push('');
  out.push(
    `Jobs followed with ${i.waitedWith === 'batches' ? 'GET /batches/{batch_id}' : 'GET /jobs/{job_id}'}; ${i.retries} retried requests.`,
  );
  if (r.warnings.length > 0) {
    out.push('');
    out.push('Warnings:');
    for (const w of r.warnings) out.push(`- ${w}`);
  }
  return out.join('\n');
}
