/** The issue's performance targets, each a ratio (or difference) of figures from one run. */
import type { ChunkingCostResult } from './chunking-bench.js';
import type { RerankBenchResult } from './rerank-bench.js';
import type { KeywordCostResult } from './keywords-bench.js';
import type { ScaleCell, ScaleResult, ScaleStore } from './scale-bench.js';
import type { StoreCell } from './store-bench.js';
import type { MatmulPeak } from './matmul.js';
import type { PeerResult } from './peer.js';
import type { SoakResult } from './soak.js';
import { maxBy } from './stats.js';
import type { IngestResult, SearchResult } from './stack-bench.js';
import type { LengthClass } from './texts.js';
import type { NaiveCell, ThroughputCell } from './throughput.js';

export type TargetStatus = 'PASS' | 'MISS' | 'NOT MEASURED';

export interface TargetResult {
  id: string;
  target: string;
  measured: number | null;
  threshold: number;
  comparison: '>=' | '<=';
  unit: 'x' | 'ms' | 'fraction';
  status: TargetStatus;
  /** How far from the threshold a MISS is, in words; null otherwise. */
  missedBy: string | null;
  /** The figures the value was computed from. */
  basis: string;
}

export interface TargetInputs {
  naive: NaiveCell[];
  cells: ThroughputCell[];
  peak: MatmulPeak | null;
  ingest: IngestResult | null;
  search: SearchResult | null;
  soak: SoakResult | null;
  /** The soak length a full run uses (the target's 10 minutes). */
  fullSoakMinutes: number;
  /** The peer section (sentence-transformers against Heimdex, the real model), when it ran. */
  peer?: PeerResult | null;
  /** The store section's cells (dense, keyword and hybrid latency per size). */
  stores?: StoreCell[];
  /** The keywords section: ingest with and without the keyword index's term vectors. */
  keywordCost?: KeywordCostResult | null;
  chunkingCost?: ChunkingCostResult | null;
  rerank?: RerankBenchResult | null;
  /** The scale section (issue 18): the cost curve, when it ran. */
  scale?: ScaleResult | null;
}

/** Hybrid search p50 ≤ this × dense p50, embedded store, at this many points (issue 15). */
export const HYBRID_LATENCY = { points: 100_000, ratio: 1.3 } as const;
/** Ingest with term vectors ≥ this share of dense-only ingest (issue 15). */
export const KEYWORD_INGEST_SHARE = 0.95;
/** Chunked long texts keep at least this share of truncation's embedded tokens per second. */
export const CHUNKING_TOKEN_SHARE = 0.95;

/** Issue 18's targets at 1M points in one organisation (2 cores, one run). */
export const SCALE_TARGETS = {
  points: 1_000_000,
  denseP99Ms: 50,
  recall: 0.95,
  hybridOverDenseP99: 2,
  /** Many organisations' dense p50 ÷ one organisation's of the same total size. */
  manyOrgsOverOneOrg: 1,
} as const;

/** Heimdex's embedder ÷ sentence-transformers `encode`, texts/s, same model and texts. */
export const PEER_TARGETS = [
  { dtype: 'fp32', threshold: 2, label: 'fp32' },
  { dtype: 'q8', threshold: 4, label: 'int8' },
] as const;

/** The fastest cell (texts/s) of a variant and length, or null when none was measured. */
export function best(
  cells: readonly ThroughputCell[],
  variant: string,
  length: LengthClass,
): ThroughputCell | null {
  return maxBy(
    cells.filter((c) => c.variant === variant && c.length === length),
    (c) => c.textsPerSecond,
  );
}

export function fmt(value: number, unit: TargetResult['unit']): string {
  if (unit === 'ms') return `${value.toFixed(1)} ms`;
  if (unit === 'fraction') return `${(value * 100).toFixed(1)}%`;
  return `${value.toFixed(2)}x`;
}

function judge(
  base: Omit<TargetResult, 'status' | 'missedBy' | 'measured' | 'basis'>,
  measured: number | null,
  basis: string,
): TargetResult {
  if (measured === null || !Number.isFinite(measured)) {
    return { ...base, measured: null, status: 'NOT MEASURED', missedBy: null, basis };
  }
  const ok = base.comparison === '>=' ? measured >= base.threshold : measured <= base.threshold;
  let missedBy: string | null = null;
  if (!ok) {
    const gap = Math.abs(measured - base.threshold);
    const relative = base.threshold !== 0 ? Math.abs(measured / base.threshold - 1) : Infinity;
    missedBy =
      base.comparison === '>='
        ? `${fmt(gap, base.unit)} short of ${fmt(base.threshold, base.unit)} (${(relative * 100).toFixed(0)}% below)`
        : `${fmt(gap, base.unit)} over ${fmt(base.threshold, base.unit)} (${(relative * 100).toFixed(0)}% above)`;
  }
  return { ...base, measured, status: ok ? 'PASS' : 'MISS', missedBy, basis };
}

const perSecond = (n: number) => `${n} texts/s`;

export function evaluateTargets(t: TargetInputs): TargetResult[] {
  const out: TargetResult[] = [];
  const naive = (variant: string, length: LengthClass) =>
    t.naive.find((n) => n.variant === variant && n.length === length) ?? null;

  for (const [variant, threshold, label] of [
    ['minilm-fp32', 2, 'all-MiniLM-L6-v2 fp32'],
    ['potion-fp32', 5, 'potion-base-2M'],
  ] as const) {
    const b = best(t.cells, variant, 'short');
    const n = naive(variant, 'short');
    out.push(
      judge(
        {
          id: `batching-${variant}`,
          target: `${label}, short texts: dynamic batching >= ${threshold}x the naive baseline (texts/s, per job: one extractor call + one store upsert per text)`,
          threshold,
          comparison: '>=',
          unit: 'x',
        },
        b && n ? b.textsPerSecond / n.textsPerSecond : null,
        b && n
          ? `embedder at its best cap (${b.cap}): ${perSecond(b.textsPerSecond)}; naive per job: ${perSecond(n.textsPerSecond)}; ` +
              `naive inference only: ${perSecond(n.inferenceOnlyTextsPerSecond)} (${(b.textsPerSecond / n.inferenceOnlyTextsPerSecond).toFixed(2)}x)`
          : 'not measured',
      ),
    );
  }

  const fp32Cells = t.cells.filter((c) => c.variant === 'minilm-fp32' && c.flopsPerSecond !== null);
  const top = maxBy(fp32Cells, (c) => c.flopsPerSecond ?? 0);
  out.push(
    judge(
      {
        id: 'flops-minilm-fp32',
        target: 'all-MiniLM-L6-v2 fp32: achieved FLOP/s >= 40% of the measured fp32 MatMul peak',
        threshold: 0.4,
        comparison: '>=',
        unit: 'fraction',
      },
      top && t.peak ? (top.flopsPerSecond ?? 0) / t.peak.bestFlopsPerSecond : null,
      top && t.peak
        ? `best cell (${top.length}, cap ${top.cap}): ${((top.flopsPerSecond ?? 0) / 1e9).toFixed(1)} GFLOP/s end to end ` +
            `(${((top.inferenceFlopsPerSecond ?? 0) / 1e9).toFixed(1)} GFLOP/s of forward-pass time); peak ${(t.peak.bestFlopsPerSecond / 1e9).toFixed(1)} GFLOP/s (fastest MatMul run)`
        : 'not measured',
    ),
  );

  const q8 = best(t.cells, 'minilm-q8', 'medium');
  const f32 = best(t.cells, 'minilm-fp32', 'medium');
  out.push(
    judge(
      {
        id: 'int8-speedup',
        target: 'all-MiniLM-L6-v2 int8 >= 1.8x fp32 texts/s (medium texts, each at its best cap)',
        threshold: 1.8,
        comparison: '>=',
        unit: 'x',
      },
      q8 && f32 ? q8.textsPerSecond / f32.textsPerSecond : null,
      q8 && f32
        ? `int8 ${perSecond(q8.textsPerSecond)} (cap ${q8.cap}); fp32 ${perSecond(f32.textsPerSecond)} (cap ${f32.cap})`
        : 'not measured',
    ),
  );

  out.push(
    judge(
      {
        id: 'ingest-fraction',
        target: 'End-to-end ingest (all-MiniLM-L6-v2) >= 80% of the embedder raw throughput',
        threshold: 0.8,
        comparison: '>=',
        unit: 'fraction',
      },
      t.ingest ? t.ingest.fraction : null,
      t.ingest
        ? `${t.ingest.texts} ${t.ingest.documents ? `${t.ingest.documents.chars}-character` : t.ingest.length} texts: ${perSecond(t.ingest.textsPerSecond)} through the Worker; raw ${perSecond(t.ingest.raw.textsPerSecond)}`
        : 'not measured',
    ),
  );

  const v1 = t.ingest?.openai ?? null;
  out.push(
    judge(
      {
        id: 'openai-embeddings',
        target: `POST /v1/embeddings (${v1?.requestItems ?? 32} inputs a request) >= 90% of the embedder's raw /internal/embed texts/s`,
        threshold: 0.9,
        comparison: '>=',
        unit: 'fraction',
      },
      v1 ? v1.fractionOfRaw : null,
      v1 && t.ingest
        ? `${perSecond(v1.textsPerSecond)} through the Worker; raw ${perSecond(t.ingest.raw.textsPerSecond)}; the Worker's own time p50 ${v1.workerOverheadMsP50.toFixed(2)} ms`
        : 'not measured',
    ),
  );

  const level = (c: number) => t.search?.levels.find((l) => l.concurrency === c) ?? null;
  const c1 = level(1);
  const c8 = level(8);
  out.push(
    judge(
      {
        id: 'search-c1-overhead',
        target: 'Search through the Worker, concurrency 1: p50 <= embedder-only p50 + 10 ms',
        threshold: 10,
        comparison: '<=',
        unit: 'ms',
      },
      c1 ? c1.worker.p50 - c1.embedderOnly.p50 : null,
      c1
        ? `Worker p50 ${c1.worker.p50} ms; embedder-only p50 ${c1.embedderOnly.p50} ms` +
            (c1.workerApp
              ? `; the Worker's own time (Server-Timing app) p50 ${c1.workerApp.p50} ms`
              : '')
        : 'not measured',
    ),
  );
  out.push(
    judge(
      {
        id: 'search-c8-tail',
        target: 'Search through the Worker, concurrency 8: p99 <= 3x the concurrency-1 p50',
        threshold: 3,
        comparison: '<=',
        unit: 'x',
      },
      c1 && c8 ? c8.worker.p99 / c1.worker.p50 : null,
      c1 && c8 ? `c8 p99 ${c8.worker.p99} ms; c1 p50 ${c1.worker.p50} ms` : 'not measured',
    ),
  );

  out.push(...soakTargets(t));
  out.push(...keywordTargets(t));
  out.push(chunkingTarget(t));
  out.push(rerankTarget(t));
  for (const { dtype, threshold, label } of PEER_TARGETS) {
    const lengths = t.peer ? [...new Set(t.peer.ratios.map((r) => r.length))] : ['medium' as const];
    for (const length of lengths) {
      const h = t.peer?.heimdex.find((c) => c.dtype === dtype && c.length === length) ?? null;
      const s = t.peer?.sentenceTransformers.cells.find((c) => c.length === length) ?? null;
      out.push(
        judge(
          {
            id: `peer-${label}-${length}`,
            target: `all-MiniLM-L6-v2 ${label}, ${length} texts: Heimdex's embedder (HTTP, dynamic batching) >= ${threshold}x sentence-transformers encode texts/s (PyTorch CPU, batch 32, all cores)`,
            threshold,
            comparison: '>=',
            unit: 'x',
          },
          h && s ? h.textsPerSecond / s.textsPerSecond : null,
          h && s
            ? `Heimdex ${label} ${perSecond(h.textsPerSecond)} (cap ${h.cap}); sentence-transformers ${perSecond(s.textsPerSecond)} (${s.tokensPerText} tokens per text)`
            : 'not measured',
        ),
      );
    }
  }

  if (t.scale) out.push(...scaleTargets(t.scale));

  return out;
}

/** Issue 18: per store, latency, recall and hybrid cost at 1M points; tenants' cost and scope. */
export function scaleTargets(scale: ScaleResult): TargetResult[] {
  const out: TargetResult[] = [];
  const stores = [...new Set(scale.cells.map((c) => c.store))] as ScaleStore[];
  const label = (s: ScaleStore) => (s === 'embedded' ? 'embedded store (LanceDB)' : 'Qdrant');
  const T = SCALE_TARGETS;
  for (const store of stores) {
    const one = scale.cells.filter((c) => c.store === store && c.scenario === 'one org');
    const big = one.find((c) => c.points >= T.points) ?? null;
    const largest = maxBy(one, (c) => c.points);
    const missing = `not measured at ${T.points.toLocaleString('en')} points${largest ? ` (largest: ${largest.points.toLocaleString('en')}, dense p99 ${largest.dense.p99} ms, recall@10 ${largest.recallDense})` : ''}`;
    const at = (c: ScaleCell) =>
      `${c.points.toLocaleString('en')} points, ${c.index}; ${scale.queries} queries`;
    out.push(
      judge(
        {
          id: `scale-dense-p99-${store}`,
          target: `${label(store)}: dense search p99 <= ${T.denseP99Ms} ms at ${T.points.toLocaleString('en')} points in one organisation`,
          threshold: T.denseP99Ms,
          comparison: '<=',
          unit: 'ms',
        },
        big ? big.dense.p99 : null,
        big ? `${at(big)}; p50 ${big.dense.p50} ms` : missing,
      ),
      judge(
        {
          id: `scale-recall-${store}`,
          target: `${label(store)}: dense recall@10 >= ${T.recall} against exact search at ${T.points.toLocaleString('en')} points`,
          threshold: T.recall,
          comparison: '>=',
          unit: 'fraction',
        },
        big ? big.recallDense : null,
        big ? at(big) : missing,
      ),
      judge(
        {
          id: `scale-hybrid-p99-${store}`,
          target: `${label(store)}: hybrid p99 <= ${T.hybridOverDenseP99}x dense p99 at ${T.points.toLocaleString('en')} points`,
          threshold: T.hybridOverDenseP99,
          comparison: '<=',
          unit: 'x',
        },
        big?.hybrid ? big.hybrid.p99 / big.dense.p99 : null,
        big?.hybrid
          ? `hybrid p99 ${big.hybrid.p99} ms (recall@10 ${big.recallHybrid}), dense p99 ${big.dense.p99} ms`
          : missing,
      ),
    );
    const many = scale.cells.find((c) => c.store === store && c.scenario === 'many orgs') ?? null;
    const same = many ? (one.find((c) => c.points === many.points) ?? null) : null;
    const small = many ? (one.find((c) => c.points === many.orgPoints) ?? null) : null;
    out.push(
      judge(
        {
          id: `scale-many-orgs-${store}`,
          target: `${label(store)}: a query of one of many organisations costs no more than one organisation of the same total size (dense p50 ratio <= ${T.manyOrgsOverOneOrg})`,
          threshold: T.manyOrgsOverOneOrg,
          comparison: '<=',
          unit: 'x',
        },
        many && same ? many.dense.p50 / same.dense.p50 : null,
        many && same
          ? `${many.orgs.toLocaleString('en')} orgs × ${many.orgPoints.toLocaleString('en')}: p50 ${many.dense.p50} / p99 ${many.dense.p99} ms, recall@10 ${many.recallDense}; one org of ${same.points.toLocaleString('en')}: p50 ${same.dense.p50} / p99 ${same.dense.p99} ms` +
              (small
                ? `; one org of ${small.points.toLocaleString('en')} alone: p50 ${small.dense.p50} / p99 ${small.dense.p99} ms`
                : '')
          : 'not measured (needs --scale-orgs and the same total in --scale-sizes)',
      ),
      judge(
        {
          id: `scale-isolation-${store}`,
          target: `${label(store)}: a tenant's query scans none of another tenant's points (the store's own plan/telemetry, many organisations)`,
          threshold: 1,
          comparison: '>=',
          unit: 'fraction',
        },
        many?.isolation ? (many.isolation.scopedToTenant ? 1 : 0) : null,
        many?.isolation
          ? Object.entries(many.isolation.evidence)
              .map(([k, v]) => `${k} ${String(v)}`)
              .join(', ')
          : 'not measured',
      ),
    );
  }
  return out;
}

/** The Worker's own time per /v1/rerank request (its Server-Timing: app − embedder). */
function rerankTarget(t: TargetInputs): TargetResult {
  const r = t.rerank ?? null;
  return judge(
    {
      id: 'rerank-worker-overhead',
      target:
        "POST /v1/rerank (100 documents): the Worker's own time p50 <= 3 ms (Server-Timing app − embedder)",
      threshold: 3,
      comparison: '<=',
      unit: 'ms',
    },
    r ? r.workerOverhead.serverTimingMs.p50 : null,
    r
      ? `${r.reranker} (${r.dtype}): through the Worker p50 ${r.worker.latencyMs.p50} ms, ${r.worker.textsPerSecond} texts/s; the embedder alone p50 ${r.embedder.latencyMs.p50} ms, ${r.embedder.textsPerSecond} texts/s`
      : 'not measured (section rerank)',
  );
}

/** Chunking's overhead: the embedder's token rate on long texts, chunked against truncated. */
function chunkingTarget(t: TargetInputs): TargetResult {
  const c = t.chunkingCost ?? null;
  return judge(
    {
      id: 'chunking-token-rate',
      target: `Embedder tokens/s with chunking >= ${CHUNKING_TOKEN_SHARE * 100}% of truncation's on long texts (same service, texts and store)`,
      threshold: CHUNKING_TOKEN_SHARE,
      comparison: '>=',
      unit: 'fraction',
    },
    c ? c.tokenRateRatio : null,
    c
      ? `${c.chunked.tokensPerSecond} tokens/s chunked (${c.chunked.chunksPerText} chunks per text), ${c.truncated.tokensPerSecond} truncated (${c.model}, ${c.texts} texts of ~${c.charsPerText} characters, best of ${c.rounds} rounds)`
      : 'not measured (section chunking)',
  );
}

/** Hybrid search's cost over dense in the embedded store, and the keyword index's ingest cost. */
function keywordTargets(t: TargetInputs): TargetResult[] {
  // Judged in both states of the table: as the store's own maintenance leaves it while it is
  // written, and after a full optimize (where the ANN index serves every search).
  const hybridLatency = (state: 'as written' | 'optimized') => {
    const cell =
      t.stores?.find(
        (c) => c.store === 'lancedb' && c.state === state && c.vectors >= HYBRID_LATENCY.points,
      ) ?? null;
    const hybrid = cell?.hybridLatencyMs ?? null;
    return judge(
      {
        id: state === 'as written' ? 'hybrid-latency' : 'hybrid-latency-optimized',
        target: `Hybrid search p50 <= ${HYBRID_LATENCY.ratio}x dense p50, embedded store, ${HYBRID_LATENCY.points.toLocaleString('en')} points in one organisation (${state})`,
        threshold: HYBRID_LATENCY.ratio,
        comparison: '<=',
        unit: 'x',
      },
      cell && hybrid ? hybrid.p50 / cell.latencyMs.p50 : null,
      cell && hybrid
        ? `hybrid p50 ${hybrid.p50} ms, dense p50 ${cell.latencyMs.p50} ms, keyword p50 ${cell.keywordLatencyMs?.p50 ?? '–'} ms`
        : `not measured (needs --sections store with ${HYBRID_LATENCY.points} in --store-sizes)`,
    );
  };
  const k = t.keywordCost ?? null;
  return [
    hybridLatency('as written'),
    hybridLatency('optimized'),
    judge(
      {
        id: 'keyword-ingest',
        target: `Ingest with the keyword index's term vectors >= ${KEYWORD_INGEST_SHARE * 100}% of dense-only texts/s (same service, texts and store)`,
        threshold: KEYWORD_INGEST_SHARE,
        comparison: '>=',
        unit: 'fraction',
      },
      k ? k.ratio : null,
      k
        ? `${perSecond(k.withTermsTextsPerSecond)} with terms, ${perSecond(k.denseOnlyTextsPerSecond)} dense-only (${k.model}, ${k.texts} ${k.length} texts, best of ${k.rounds} rounds; analysis alone ${k.analysisMsPerText} ms per text)`
        : 'not measured (section keywords)',
    ),
  ];
}

/**
 * Issue 18: an overwrite soak's data dir is bounded when the peaks of its second half (after the
 * warm-up) are at most this fraction above those of its first half (it saw-tooths between
 * compactions).
 */
export const OVERWRITE_DISK_PEAK_GROWTH = 0.25;

/**
 * The soak's targets: RSS within ±10% after the warm-up (an ingest into the embedded store, an
 * ingest with Qdrant as the store, or an overwrite stream), and for an overwrite stream into the
 * embedded store its data dir bounded too.
 */
function soakTargets(t: TargetInputs): TargetResult[] {
  const s = t.soak;
  const note =
    s && s.minutes < t.fullSoakMinutes
      ? ` — SHORT SOAK (${s.minutes} min; the target is ${t.fullSoakMinutes} min: npm run bench -- --soak-minutes ${t.fullSoakMinutes})`
      : '';
  const overwrite = s?.stream === 'overwrite';
  const qdrant = s?.store === 'qdrant';
  const what = overwrite
    ? `overwrite stream (the same ${s.overwriteSegments ?? '?'} segments rewritten)${qdrant ? ' into Qdrant' : ''}`
    : `ingest${qdrant ? ' with Qdrant as the store' : ''}`;
  const out = [
    judge(
      {
        id: overwrite
          ? `overwrite-rss-flat${qdrant ? '-qdrant' : ''}`
          : `rss-flat${qdrant ? '-qdrant' : ''}`,
        target: `Embedder RSS (all-MiniLM-L6-v2) stays within ±10% during a ${t.fullSoakMinutes}-minute ${what}`,
        threshold: 0.1,
        comparison: '<=',
        unit: 'fraction',
      },
      s ? s.maxDeviation : null,
      s
        ? `baseline ${s.rssMiB.baseline} MiB, end ${s.rssMiB.end} MiB, range ${s.rssMiB.min}–${s.rssMiB.max} MiB after ${s.warmupSeconds} s warm-up` +
            (s.rssGrowth ? `; ${s.rssGrowth.perMillionWrites} MiB per million writes` : '') +
            note
        : 'not measured',
    ),
  ];
  if (overwrite && !qdrant) {
    const d = s.disk ?? null;
    out.push(
      judge(
        {
          id: 'overwrite-disk-bounded',
          target: `The embedded store's data dir stays bounded during a ${t.fullSoakMinutes}-minute overwrite stream: the peaks of the second half after the warm-up ≤ ${1 + OVERWRITE_DISK_PEAK_GROWTH}× those of the first`,
          threshold: OVERWRITE_DISK_PEAK_GROWTH,
          comparison: '<=',
          unit: 'fraction',
        },
        d ? (d.mib.peakGrowth ?? null) : null,
        d
          ? `${d.mib.baseline} → ${d.mib.end} MiB (range ${d.mib.min}–${d.mib.max}), ${d.end.versions} versions at the end (at most ${d.maxVersions}); ${d.mib.perMillionWrites} MiB per million writes${note}`
          : 'not measured',
      ),
    );
  }
  return out;
}
