/** The evaluation's JSON document and its Markdown rendering (ids and numbers only). */
import type { MachineInfo } from '../../bench/lib/machine.js';
import type { Summary } from '../../bench/lib/stats.js';
import type { IngestResult } from './heimdex.js';
import type { MetricSummary } from './metrics.js';

/** Heimdex's nDCG@10 must be within this of the reference's. */
export const NDCG_TOLERANCE = 0.005;

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

export interface Agreement {
  /** Mean over queries of |top 10 ∩ reference top 10| / 10. */
  top10Overlap: number;
  /** Queries whose first result is the reference's first result. */
  top1Same: number;
  /** |Heimdex score − reference score| over documents in both top 100s. */
  scoreAbsDiff: { mean: number; max: number; pairs: number };
}

export interface EvalResult {
  schema: 'heimdex-eval/1';
  command: string;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  /** Machine load averages (1, 5, 15 min) at the start and end: other work slows the figures. */
  loadAverage: { start: number[]; end: number[] };
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
    metrics: MetricSummary;
    ingest: IngestResult;
    search: {
      queries: number;
      limit: number;
      latencyMs: Summary;
      unknownResults: number;
      mode: string | null;
      modeReported: string | null;
    };
  };
  reference: ReferenceResult | null;
  delta: { ndcgAt10: number; recallAt100: number; mrrAt10: number } | null;
  agreement: Agreement | null;
  target: {
    target: string;
    status: 'PASS' | 'MISS' | 'NOT MEASURED';
    measured: number | null;
  };
  warnings: string[];
}

const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '–');
const signed = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(4)}` : '–');
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');

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
  out.push(
    `Dataset: ${r.dataset.docs} documents (title + " " + text)${r.dataset.blankDocs ? `, ${r.dataset.blankDocs} blank left out` : ''}, ` +
      `${r.dataset.queries} queries of the ${r.dataset.split} split, ${h.metrics.queries} evaluated` +
      (h.metrics.skippedNoRelevant
        ? ` (${h.metrics.skippedNoRelevant} without a relevant document skipped)`
        : '') +
      '.',
  );
  out.push('');
  out.push('## Retrieval quality\n');
  const rows: string[][] = [
    [
      'Heimdex (public API)',
      f4(h.metrics.ndcgAt10),
      f4(h.metrics.recallAt100),
      f4(h.metrics.mrrAt10),
    ],
  ];
  if (r.reference) {
    const m = r.reference.metrics;
    rows.push([
      `sentence-transformers ${r.reference.versions['sentence-transformers'] ?? ''}, exact cosine`,
      f4(m.ndcgAt10),
      f4(m.recallAt100),
      f4(m.mrrAt10),
    ]);
  }
  if (r.delta) {
    rows.push([
      'delta (Heimdex − reference)',
      signed(r.delta.ndcgAt10),
      signed(r.delta.recallAt100),
      signed(r.delta.mrrAt10),
    ]);
  }
  out.push(table(['system', 'nDCG@10', 'Recall@100', 'MRR@10'], rows));
  out.push('');
  out.push(
    `Target: ${r.target.target}: **${r.target.status}**` +
      (r.target.measured === null ? '' : ` (|delta| ${r.target.measured.toFixed(4)})`) +
      '.',
  );
  if (r.agreement) {
    const a = r.agreement;
    out.push('');
    out.push(
      `Agreement with the reference: top-10 overlap ${(a.top10Overlap * 100).toFixed(1)}%, same first result for ${a.top1Same} of ${h.metrics.queries} queries; ` +
        `|score difference| on the ${a.scoreAbsDiff.pairs} documents in both top 100s: mean ${a.scoreAbsDiff.mean.toExponential(2)}, max ${a.scoreAbsDiff.max.toExponential(2)}.`,
    );
  }
  if (r.reference) {
    out.push('');
    out.push(
      `Metric code check: eval/lib/metrics.ts on the reference's run differs from pytrec_eval by at most ${r.reference.metricCodeMaxDiff.toExponential(2)}.`,
    );
  }
  out.push('');
  out.push('## Speed\n');
  const i = h.ingest;
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
        [
          `search through the Worker, one client, limit ${h.search.limit}`,
          `p50 ${ms(h.search.latencyMs.p50)} ms, p95 ${ms(h.search.latencyMs.p95)} ms, p99 ${ms(h.search.latencyMs.p99)} ms (${h.search.queries} queries)`,
        ],
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
