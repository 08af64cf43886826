/** The evaluation's JSON document and its Markdown rendering (ids and numbers only). */
import type { SearchMode } from '../../contract/internal.js';
import type { SettingRecord } from './chunking.js';
import type { RunEnvelope } from '../../bench/lib/envelope.js';
import type { Summary } from '../../bench/lib/stats.js';
import { HYBRID_GAIN, chunkingChecks, computeChecks, metricDelta } from './checks.js';
import type { Agreement, Check, ChunkingCheck, MetricDelta } from './checks.js';
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
}

/** A pass against a reference: its metrics minus the reference's, and how the rankings agree. */
export interface VersusReference {
  delta: MetricDelta;
  agreement: Agreement;
}

/** One chunking setting: the corpus ingested into an organisation of its own, then every pass. */
export interface SettingRun {
  chunking: SettingRecord;
  org: string;
  ingest: IngestResult;
  /** One pass per `--modes` entry, in that order. */
  modes: ModeRun[];
  /** `--sweep-fusion`: hybrid over the grid; null when not asked. */
  sweep: ModeRun[] | null;
  /** The sweep's best nDCG@10 (the first of equals). */
  sweepBest: { k: number; weight: number; ndcgAt10: number } | null;
  /** The dense pass against sentence-transformers, when both ran. */
  vsReference: VersusReference | null;
  /** The keyword pass against the reference BM25, when it ran. */
  vsBm25: VersusReference | null;
  checks: Check[];
}

/** A pass of one setting beside the first setting's pass of the same label. */
export interface ComparisonRow {
  chunking: string;
  mode: string;
  metrics: MetricSummary;
  /** This pass − the first setting's; null for the first setting itself or where it has none. */
  delta: MetricDelta | null;
}

export interface EvalResult extends RunEnvelope {
  schema: 'heimdex-eval/3';
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
  /** One per `--chunking` setting, in that order (the first is the comparison's baseline). */
  heimdex: SettingRun[];
  /** With more than one setting: every pass against the first setting's, and the targets. */
  chunking: { rows: ComparisonRow[]; checks: ChunkingCheck[] } | null;
  /** sentence-transformers (eval/reference.py): dense mode's reference. */
  reference: ReferenceResult | null;
  bm25: Bm25Result;
  warnings: string[];
}

/** With more than one setting: every pass against the first setting's, and the targets. */
export function compareChunking(runs: readonly SettingRun[]): EvalResult['chunking'] {
  if (runs.length < 2) return null;
  return {
    rows: compareSettings(runs),
    checks: chunkingChecks(
      runs.map((run) => ({
        label: run.chunking.label,
        truncates: run.chunking.request === 'truncate',
        modes: run.modes,
      })),
    ),
  };
}

/** Every setting's passes beside the first setting's (its own rows carry no delta). */
function compareSettings(runs: readonly SettingRun[]): ComparisonRow[] {
  const base = runs[0];
  return runs.flatMap((run) =>
    run.modes.map((m) => {
      const b = run === base ? undefined : base?.modes.find((x) => x.label === m.label);
      return {
        chunking: run.chunking.label,
        mode: m.label,
        metrics: m.metrics,
        delta: b ? metricDelta(m.metrics, b.metrics) : null,
      };
    }),
  );
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

export const f4 = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '–');
export const signed = (x: number) =>
  Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(4)}` : '–';
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');
export const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
export const statusText = (s: Check['status']) => (s === 'not measured' ? s : `**${s}**`);

/** A Markdown table, its columns padded as Prettier pads them. */
export function table(headers: string[], rows: string[][]): string {
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

/** "hybrid (DBSF, weight 0.5, the API's defaults)", "hybrid (RRF k 60, weight 0.5)" and the like. */
export function describeRun(run: ModeRun): string {
  if (run.mode !== 'hybrid' || !run.fusion) return run.label;
  const sent = run.fusionSent ?? {};
  const given = [sent.method, sent.k, sent.weight].filter((v) => v !== undefined).length;
  const defaults =
    given === 0 ? ", the API's defaults" : given < 3 ? ", the rest the API's defaults" : '';
  const f = run.fusion;
  // Results from before DBSF have no method: they were RRF.
  const settings =
    (f.method ?? 'rrf') === 'rrf' ? `RRF k ${f.k}, weight ${f.weight}` : `DBSF, weight ${f.weight}`;
  return `${run.label} (${settings}${defaults})`;
}

const byMode = (run: SettingRun, mode: SearchMode) => run.modes.find((m) => m.mode === mode);
/** The metrics every table shows, in order: their headers and their fields. */
const METRICS = [
  ['nDCG@10', 'ndcgAt10'],
  ['Recall@100', 'recallAt100'],
  ['MRR@10', 'mrrAt10'],
] as const;
const metricCells = (m: MetricDelta) => METRICS.map(([, key]) => f4(m[key]));
const deltaCells = (d: MetricDelta) => METRICS.map(([, key]) => signed(d[key]));
const agreementText = (what: string, a: Agreement, queries: number) =>
  `${what}: top-10 overlap ${(a.top10Overlap * 100).toFixed(1)}%, same first result for ${a.top1Same} of ${queries} queries; ` +
  `|score difference| on the ${a.scoreAbsDiff.pairs} documents in both top 100s: mean ${a.scoreAbsDiff.mean.toExponential(2)}, max ${a.scoreAbsDiff.max.toExponential(2)}.`;
const perSecond = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');

/** "Run <start> (<minutes> min); <machine>, load average …; commit …." */
export function runLine(r: RunEnvelope): string {
  return (
    `Run ${r.startedAt} (${(r.durationSeconds / 60).toFixed(1)} min); ${r.machine.cpuModel}, ${r.machine.cores} cores, Node ${r.machine.node}` +
    `, load average ${r.loadAverage.start.join(' ')} at start, ${r.loadAverage.end.join(' ')} at end` +
    (r.machine.git
      ? `; commit ${r.machine.git.commit.slice(0, 12)}${r.machine.git.dirty ? ' (dirty)' : ''}`
      : '') +
    '.'
  );
}

/**
 * Each chunking setting's corpus as its jobs' results describe it, and its ingest speed; then
 * what each setting is.
 */
export function corpusTable(
  runs: readonly { chunking: SettingRun['chunking']; ingest: IngestResult }[],
): string[] {
  const window = runs[0]?.ingest.chunks.window ?? null;
  return [
    table(
      [
        'chunking',
        'texts',
        `over the window (${window ?? '?'} tokens)`,
        'truncated',
        'of > 1 chunk',
        'chunks',
        'chunks/text (mean, max)',
        'tokens/text (p50, max)',
        'texts/s',
        'chunks/s',
      ],
      runs.map((run) => {
        const c = run.ingest.chunks;
        return [
          run.chunking.label,
          String(c.texts),
          c.overWindow === null ? '–' : String(c.overWindow),
          String(c.truncated),
          String(c.multiChunk),
          `${c.chunks}${c.chunkCountMissing ? ` (${c.chunkCountMissing} results without chunk_count)` : ''}`,
          `${f2(c.chunksPerText.mean)}, ${c.chunksPerText.max}`,
          `${c.tokens.p50}, ${c.tokens.max}`,
          perSecond(run.ingest.textsPerSecond),
          perSecond(run.ingest.chunksPerSecond),
        ];
      }),
    ),
    '',
    `Settings: ${runs.map((run) => `${run.chunking.label}: ${run.chunking.description}`).join('; ')}. ` +
      "Figures from the jobs' results (GET /jobs/{job_id}): `token_count`, `truncated`, `chunk_count`.",
  ];
}

export function renderEval(r: EvalResult): string {
  const out: string[] = [];
  const runs = r.heimdex;
  // With one setting the report reads as before chunking; with several each row names its setting.
  const multi = runs.length > 1;
  const tag = (run: SettingRun) => (multi ? `, chunking ${run.chunking.label}` : '');
  /** The same inside a sentence. */
  const which = (run: SettingRun) => (multi ? ` (chunking ${run.chunking.label})` : '');
  const heading = (title: string, run: SettingRun) =>
    `## ${title}${multi ? ` — chunking ${run.chunking.label}` : ''}\n`;
  out.push(
    `# Heimdex eval — ${r.dataset.name} ${r.dataset.split}, ${r.model.name} (${r.model.dtype})`,
  );
  out.push('');
  out.push(`Command: \`${r.command}\``);
  out.push(runLine(r));
  const evaluated = r.bm25.metrics;
  const ingested = multi
    ? `Ingested once per chunking setting (${runs.map((run) => run.chunking.label).join(', ')}), each into an organisation of its own`
    : `Ingested once (chunking: ${runs[0]?.chunking.description ?? '–'})`;
  out.push(
    `Dataset: ${r.dataset.docs} documents (title + " " + text)${r.dataset.blankDocs ? `, ${r.dataset.blankDocs} blank left out` : ''}, ` +
      `${r.dataset.queries} queries of the ${r.dataset.split} split, ${evaluated.queries} evaluated` +
      (evaluated.skippedNoRelevant
        ? ` (${evaluated.skippedNoRelevant} without a relevant document skipped)`
        : '') +
      `. ${ingested}; each mode is one pass of the queries through POST /vectors/search (limit ${String(r.settings.limit ?? 100)}, one result per document).`,
  );
  out.push('');
  out.push('## Retrieval quality\n');
  const bm = r.bm25;
  const rows: string[][] = [
    ...runs.flatMap((run) =>
      run.modes.map((m) => [
        `Heimdex ${describeRun(m)}${tag(run)}`,
        ...metricCells(m.metrics),
        ms(m.search.latencyMs.p50),
        ms(m.search.latencyMs.p95),
      ]),
    ),
    [
      `reference BM25 (eval/lib/bm25.ts, k1 ${String(bm.settings.k1)}, b ${String(bm.settings.b)}, same terms)`,
      ...metricCells(bm.metrics),
      '',
      '',
    ],
    ...runs.flatMap((run) =>
      run.vsBm25
        ? [[`delta (keyword − reference BM25)${tag(run)}`, ...deltaCells(run.vsBm25.delta), '', '']]
        : [],
    ),
    ...(r.reference
      ? [
          [
            `sentence-transformers ${r.reference.versions['sentence-transformers'] ?? ''}, exact cosine`,
            ...metricCells(r.reference.metrics),
            '',
            '',
          ],
        ]
      : []),
    ...runs.flatMap((run) =>
      run.vsReference
        ? [
            [
              `delta (dense − sentence-transformers)${tag(run)}`,
              ...deltaCells(run.vsReference.delta),
              '',
              '',
            ],
          ]
        : [],
    ),
  ];
  out.push(
    table(['system', ...METRICS.map(([name]) => name), 'search p50 ms', 'search p95 ms'], rows),
  );
  out.push('');
  out.push(...renderChunking(r));
  out.push('## Checks\n');
  out.push(
    table(
      [...(multi ? ['chunking'] : []), 'target', 'figures', 'status'],
      runs.flatMap((run) =>
        run.checks.map((c) => [
          ...(multi ? [run.chunking.label] : []),
          c.target,
          c.figures,
          statusText(c.status),
        ]),
      ),
    ),
  );
  const notes: string[] = [];
  if (runs.some((run) => run.chunking.request !== 'truncate')) {
    notes.push(
      'With chunking, a pass differs from the references by design: sentence-transformers embeds ' +
        "each text's first window (as chunking truncate does) and the reference BM25 scores whole " +
        'texts, while a chunked text is found by its best chunk.',
    );
  }
  for (const run of runs) {
    if (run.vsReference)
      notes.push(
        agreementText(
          `Dense mode${which(run)} against sentence-transformers`,
          run.vsReference.agreement,
          r.dataset.queries,
        ),
      );
    if (run.vsBm25)
      notes.push(
        agreementText(
          `Keyword mode${which(run)} against the reference BM25`,
          run.vsBm25.agreement,
          r.dataset.queries,
        ),
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
  for (const run of runs) {
    if (!run.sweep) continue;
    out.push('');
    out.push(heading('Fusion sweep (hybrid)', run));
    out.push(...renderSweep(run, run.sweep));
  }
  out.push('');
  out.push('## Speed\n');
  out.push(
    table(
      ['measure', 'value'],
      [...runs.flatMap((run) => speedRows(run, tag(run))), ...referenceSpeedRows(r)],
    ),
  );
  out.push('');
  out.push(`Reference: ${String(r.settings.referenceRan ?? '')}.`);
  for (const run of runs) {
    const i = run.ingest;
    out.push('');
    out.push(
      `Jobs${which(run)} followed with ${i.waitedWith === 'batches' ? 'GET /batches/{batch_id}' : 'GET /jobs/{job_id}'}; ${i.retries} retried requests.`,
    );
  }
  if (r.warnings.length > 0) {
    out.push('');
    out.push('Warnings:');
    for (const w of r.warnings) out.push(`- ${w}`);
  }
  return out.join('\n');
}

/** The chunking section: the settings × modes comparison and its targets, and each corpus. */
function renderChunking(r: EvalResult): string[] {
  const out: string[] = ['## Chunking\n'];
  const runs = r.heimdex;
  const base = runs[0];
  if (r.chunking && base) {
    out.push(`Each setting's passes against the first setting's (${base.chunking.label}):\n`);
    out.push(
      table(
        ['chunking', 'mode', ...METRICS.flatMap(([name]) => [name, `Δ ${name}`])],
        r.chunking.rows.map((row) => [
          row.chunking,
          row.mode,
          ...METRICS.flatMap(([, key]) => [
            f4(row.metrics[key]),
            row.delta ? signed(row.delta[key]) : '',
          ]),
        ]),
      ),
    );
    out.push('');
    if (r.chunking.checks.length > 0) {
      out.push(
        'Chunked against truncated, pass by pass (the target: chunked nDCG@10 ≥ truncated):\n',
      );
      out.push(
        table(
          ['target', 'figures', 'status'],
          r.chunking.checks.map((c) => [c.target, c.figures, statusText(c.status)]),
        ),
      );
      out.push('');
    }
  }
  out.push(...corpusTable(runs));
  out.push('');
  return out;
}

/** One setting's fusion sweep table and its best setting. */
function renderSweep(run: SettingRun, sweep: readonly ModeRun[]): string[] {
  const dense = byMode(run, 'dense')?.metrics.ndcgAt10 ?? null;
  const keyword = byMode(run, 'keyword')?.metrics.ndcgAt10 ?? null;
  const sweepRows = sweep.map((s) => {
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
      ...metricCells(s.metrics),
      dense === null ? '–' : signed(s.metrics.ndcgAt10 - dense),
      status('hybrid-over-dense'),
      status('hybrid-over-best-single'),
      `${ms(s.search.latencyMs.p50)}${s.sameAs ? ` (${s.sameAs} pass)` : ''}`,
    ];
  });
  const best = run.sweepBest;
  const hybrid = byMode(run, 'hybrid');
  return [
    table(
      [
        'k',
        'weight',
        ...METRICS.map(([name]) => name),
        'vs dense',
        `≥ dense + ${HYBRID_GAIN}`,
        '≥ best single',
        'p50 ms',
      ],
      sweepRows,
    ),
    '',
    best
      ? `Best nDCG@10 of the sweep: k ${best.k}, weight ${best.weight} (${f4(best.ndcgAt10)})` +
        (hybrid?.fusion
          ? `; the hybrid pass (k ${hybrid.fusion.k}, weight ${hybrid.fusion.weight}) scored ${f4(hybrid.metrics.ndcgAt10)} (${signed(hybrid.metrics.ndcgAt10 - best.ndcgAt10)}).`
          : '.')
      : 'The sweep measured nothing.',
  ];
}

/** The Speed table's rows of one setting: its ingest and each pass's latencies. */
function speedRows(run: SettingRun, tag: string): string[][] {
  const i = run.ingest;
  const dense = byMode(run, 'dense');
  const hybrid = byMode(run, 'hybrid');
  return [
    [
      `ingest${tag} (POST /vectors/embed/batch → queue → embedder → store, until every job is done)`,
      `${i.textsPerSecond.toFixed(1)} texts/s (${i.docs} in ${i.seconds.toFixed(1)} s, ${i.requests} requests); ${perSecond(i.chunksPerSecond)} chunks/s (${i.chunks.chunks} points)`,
    ],
    [`of which posting${tag} (the API accepting the batches)`, `${i.submitSeconds.toFixed(1)} s`],
    [
      `jobs succeeded / failed${tag}`,
      `${i.succeeded} / ${i.failed}${
        i.failed
          ? ` (${Object.entries(i.failedCodes)
              .map(([c, n]) => `${c} ×${n}`)
              .join(', ')})`
          : ''
      }`,
    ],
    ...run.modes.map((m) => [
      `search, ${m.label}${tag}, through the Worker, one client, limit ${m.search.limit}`,
      `p50 ${ms(m.search.latencyMs.p50)} ms, p95 ${ms(m.search.latencyMs.p95)} ms, p99 ${ms(m.search.latencyMs.p99)} ms (${m.search.queries} queries)`,
    ]),
    ...(dense && hybrid
      ? [
          [
            `hybrid p50 / dense p50${tag}`,
            `${(hybrid.search.latencyMs.p50 / dense.search.latencyMs.p50).toFixed(2)}×`,
          ],
        ]
      : []),
  ];
}

/** The Speed table's rows of the references. */
function referenceSpeedRows(r: EvalResult): string[][] {
  return [
    ['reference BM25 (index + every query, in process)', `${r.bm25.seconds.toFixed(1)} s`],
    ...(r.reference
      ? [
          [
            'reference encode (sentence-transformers, corpus)',
            `${r.reference.docsPerSecond.toFixed(1)} texts/s; reference wall time ${r.reference.wallSeconds.toFixed(0)} s`,
          ],
        ]
      : []),
  ];
}
