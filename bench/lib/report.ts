/** The bench's JSON document and its human-readable rendering (Markdown tables). */
import { describeRerank } from './rerank-bench.js';
import type { RerankBenchResult } from './rerank-bench.js';
import type { RunEnvelope } from './envelope.js';
import type { ChunkingCostResult } from './chunking-bench.js';
import type { KeywordCostResult } from './keywords-bench.js';
import type { VerifyReport } from '../make-model.js';
import type { MatmulPeak } from './matmul.js';
import type { PeerResult } from './peer.js';
import type { SoakResult } from './soak.js';
import { renderSoakSection } from './soak-report.js';
import type { IngestResult, ProcessCores, SearchResult } from './stack-bench.js';
import { maxBy } from './stats.js';
import type { ScaleResult } from './scale-bench.js';
import type { StoreCell } from './store-bench.js';
import { fmt } from './targets.js';
import type { TargetResult } from './targets.js';
import { LENGTH_CLASSES, LENGTH_TOKENS } from './texts.js';
import type { NaiveCell, ThroughputCell } from './throughput.js';

export interface BenchResult extends RunEnvelope {
  schema: 'heimdex-bench/1';
  settings: Record<string, unknown>;
  models: {
    id: string;
    label: string;
    name: string;
    dtype: string;
    dir: string;
    encoderMatmulParams: number | null;
  }[];
  benchModel: {
    files: Record<string, { bytes: number; sha256: string }>;
    verification: VerifyReport;
  } | null;
  matmulPeak: { used: MatmulPeak | null; runs: MatmulPeak[] };
  naive: NaiveCell[];
  throughput: ThroughputCell[];
  singleItemRequests: ThroughputCell[];
  ingest: IngestResult | null;
  search: SearchResult | null;
  stores: StoreCell[];
  /** Section `keywords`: ingest with and without the keyword index's term vectors. */
  keywordCost: KeywordCostResult | null;
  chunkingCost: ChunkingCostResult | null;
  /** Section `rerank`: /v1/rerank of 100 documents × 1 query (absent in older results). */
  rerank?: RerankBenchResult | null;
  soak: SoakResult | null;
  /** Section `scale` (issue 18): the stores' cost curve (absent in older results). */
  scale?: ScaleResult | null;
  /** sentence-transformers against Heimdex's embedder, the real model (section `peer`). */
  peer: PeerResult | null;
  targets: TargetResult[];
  warnings: string[];
  notes: string[];
}

function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [
    line(headers),
    `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

const n1 = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : x >= 100
      ? x.toFixed(0)
      : x.toFixed(1);
const gf = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : (x / 1e9).toFixed(1);
const pct = (x: number | null | undefined) =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(x * 100).toFixed(0)}%`;

/** Cores by process, as "embedder / rest / client (machine)". */
function coresCell(c: ProcessCores): string {
  return `${c.embedder} / ${c.rest} / ${c.client} (${c.machine})`;
}

/** The Markdown report: one section per measured part, in the order the bench runs them. */
export function renderReport(r: BenchResult): string {
  return [
    renderHeader(r),
    renderPeak(r),
    renderThroughput(r),
    renderSingleItem(r),
    renderIngest(r),
    renderSearch(r),
    renderStores(r),
    renderScale(r),
    renderKeywordCost(r),
    renderChunkingCost(r),
    r.rerank ? ['## Rerank\n', ...describeRerank(r.rerank), ''] : [],
    renderSoak(r),
    renderPeer(r),
    renderTargets(r),
  ]
    .flat()
    .join('\n');
}

/** The title, the command, the machine and the load. */
function renderHeader(r: BenchResult): string[] {
  const out: string[] = [];
  const m = r.machine;
  out.push(`# Heimdex bench — ${r.startedAt.slice(0, 10)}`);
  out.push('');
  out.push(`Command: \`${r.command}\``);
  out.push(
    `Machine: ${m.cpuModel}, ${m.cores} cores (${m.cpuFlags.join(' ')}), ${m.memoryGiB} GiB, ${m.platform} ${m.kernel}; Node ${m.node}; ` +
      `onnxruntime-node ${m.packages['onnxruntime-node']}, @huggingface/transformers ${m.packages['@huggingface/transformers']}, @lancedb/lancedb ${m.packages['@lancedb/lancedb']}`,
  );
  out.push(
    `Load average at start ${r.loadAverage.start.map((x) => x.toFixed(2)).join(' ')}, at end ${r.loadAverage.end.map((x) => x.toFixed(2)).join(' ')}; run took ${(r.durationSeconds / 60).toFixed(1)} min.`,
  );
  out.push('');
  return out;
}

/** ## fp32 MatMul peak */
function renderPeak(r: BenchResult): string[] {
  const peak = r.matmulPeak.used;
  if (!peak) return [];
  return [
    `## fp32 MatMul peak\n\n[${peak.n}×${peak.k}]×[${peak.k}×${peak.m}] through onnxruntime (${peak.sessionOptions}): ` +
      `**${gf(peak.bestFlopsPerSecond)} GFLOP/s** (fastest of ${peak.runs} runs; median ${gf(peak.flopsPerSecond)}). ` +
      `Fastest run per measurement: ${r.matmulPeak.runs.map((p) => gf(p.bestFlopsPerSecond)).join(', ')} GFLOP/s; the highest is the peak that percentages below use.`,
    '',
  ];
}

/** ## Embedder throughput: the summary table and the per-cell detail */
function renderThroughput(r: BenchResult): string[] {
  if (r.throughput.length === 0 && r.naive.length === 0) return [];
  const peak = r.matmulPeak.used;
  const out: string[] = [];
  const caps = [...new Set(r.throughput.map((c) => c.cap))].sort((a, b) => a - b);
  const variants = [
    ...new Set([...r.naive.map((c) => c.variant), ...r.throughput.map((c) => c.variant)]),
  ];
  const label = (id: string) => r.models.find((x) => x.id === id)?.label ?? id;
  const reqItems = r.throughput[0]?.requestItems ?? '?';
  out.push(
    `## Embedder throughput (texts/s)\n\nPOST /internal/embed, ${reqItems}-item requests kept in flight (2 × cap items, at least 2 requests), one embedder process per batch cap ` +
      '(EMBEDDER_MAX_BATCH_ITEMS). Naive per job = per text, one `extractor(text)` call and one single-point upsert ' +
      'into the embedded store, in-process (the original per-job design; the embedder figures include their store writes too); ' +
      'naive inference only = the `extractor(text)` calls alone (no store, no HTTP). ' +
      'Tokens per text include [CLS]/[SEP] for the MiniLM shape.',
  );
  out.push('');
  const rows: (string | number)[][] = [];
  for (const v of variants) {
    for (const length of LENGTH_CLASSES) {
      const cells = r.throughput.filter((c) => c.variant === v && c.length === length);
      const naive = r.naive.find((c) => c.variant === v && c.length === length);
      if (cells.length === 0 && !naive) continue;
      const bestCell = maxBy(cells, (c) => c.textsPerSecond);
      rows.push([
        label(v),
        `${length} (${LENGTH_TOKENS[length]})`,
        n1(naive?.textsPerSecond),
        n1(naive?.inferenceOnlyTextsPerSecond),
        ...caps.map((cap) => n1(cells.find((c) => c.cap === cap)?.textsPerSecond)),
        bestCell && naive ? `${(bestCell.textsPerSecond / naive.textsPerSecond).toFixed(2)}x` : '–',
        bestCell && naive
          ? `${(bestCell.textsPerSecond / naive.inferenceOnlyTextsPerSecond).toFixed(2)}x`
          : '–',
        bestCell ? n1(bestCell.tokensPerSecond) : '–',
      ]);
    }
  }
  out.push(
    table(
      [
        'model',
        'length (tokens)',
        'naive per job',
        'naive inference only',
        ...caps.map((c) => `cap ${c}`),
        'best / naive per job',
        'best / naive inference only',
        'tokens/s at best',
      ],
      rows,
    ),
  );
  out.push('');

  // Percentages of the fp32 MatMul peak only mean something for fp32 models.
  const ofPeak = (c: ThroughputCell, flops: number) =>
    peak && r.models.find((x) => x.id === c.variant)?.dtype === 'fp32'
      ? pct(flops / peak.bestFlopsPerSecond)
      : 'int8 ops';
  const detail = r.throughput.map((c) => [
    label(c.variant),
    c.length,
    c.cap,
    n1(c.textsPerSecond),
    n1(c.meanBatchItems),
    pct(c.inferenceBusy),
    n1(c.inferenceTextsPerSecond),
    c.flopsPerSecond === null ? '–' : `${gf(c.flopsPerSecond)} (${ofPeak(c, c.flopsPerSecond)})`,
    c.inferenceFlopsPerSecond === null
      ? '–'
      : `${gf(c.inferenceFlopsPerSecond)} (${ofPeak(c, c.inferenceFlopsPerSecond)})`,
    `${n1(c.serverMs.inference)} / ${n1(c.serverMs.queue)} / ${n1(c.serverMs.other)}`,
    `${c.embedderCpuPerSecond.main} / ${c.embedderCpuPerSecond.store} / ${c.embedderCpuPerSecond.inferenceAndOther}`,
    c.otherLoadCores,
  ]);
  out.push(
    'Per cell: mean batch (items per forward pass), inference busy (share of wall time in forward passes), texts/s of forward-pass time, ' +
      'GFLOP/s end to end and during forward passes (% of the MatMul peak), per-request medians of the timing headers ' +
      "(inference / queue / other = store write + HTTP + JSON), the embedder's CPU cores by thread (JS main / LanceDB / onnxruntime + rest), " +
      'and cores used by other processes on the machine during the cell (noise).',
  );
  out.push('');
  out.push(
    table(
      [
        'model',
        'length',
        'cap',
        'texts/s',
        'mean batch',
        'infer busy',
        'infer texts/s',
        'GFLOP/s e2e',
        'GFLOP/s infer',
        'ms infer/queue/other',
        'cores main/store/ort',
        'other load',
      ],
      detail,
    ),
  );
  out.push('');
  return out;
}

/** ## Single-item requests */
function renderSingleItem(r: BenchResult): string[] {
  if (r.singleItemRequests.length === 0) return [];
  return [
    '## Single-item requests (short texts)\n',
    table(
      ['model', 'cap', 'in flight', 'texts/s', 'mean batch', 'p50 ms', 'ms infer/queue/other'],
      r.singleItemRequests.map((c) => [
        r.models.find((x) => x.id === c.variant)?.label ?? c.variant,
        c.cap,
        c.concurrency,
        n1(c.textsPerSecond),
        n1(c.meanBatchItems),
        n1(c.latencyMs.p50),
        `${n1(c.serverMs.inference)} / ${n1(c.serverMs.queue)} / ${n1(c.serverMs.other)}`,
      ]),
    ),
    '',
  ];
}

/** ## End-to-end ingest */
function renderIngest(r: BenchResult): string[] {
  if (!r.ingest) return [];
  const i = r.ingest;
  return [
    '## End-to-end ingest\n',
    table(
      [
        'texts',
        'length',
        'cap',
        'e2e texts/s',
        ...(i.documents ? ['e2e chunks/s (chunks)'] : []),
        'raw texts/s (the better window)',
        'e2e / raw',
        'seconds',
        'mean batch (e2e)',
        'cores raw: embedder / rest / client (machine)',
        'cores e2e',
      ],
      [
        [
          i.texts,
          i.documents
            ? `${i.documents.chars} characters (${n1(i.tokens)} tokens mean)`
            : `${i.length} (${LENGTH_TOKENS[i.length]})`,
          i.cap,
          n1(i.textsPerSecond),
          ...(i.documents ? [`${n1(i.documents.chunksPerSecond)} (${i.documents.chunks})`] : []),
          `${n1(i.raw.textsPerSecond)} (${n1(i.raw.windows[0])} before, ${n1(i.raw.windows[1])} after)`,
          pct(i.fraction),
          n1(i.seconds),
          n1(i.batches.meanItems),
          coresCell(i.cores.raw),
          coresCell(i.cores.e2e),
        ],
      ],
    ),
    `\nFollowing the ingest while it ran, one request at a time: \`GET /jobs/{id}\` p50 ` +
      `${n1(i.follow.job.p50)} ms, p95 ${n1(i.follow.job.p95)} ms (n=${i.follow.job.n}); ` +
      `\`GET /batches/{id}\` (a whole batch of up to 256 jobs) p50 ${n1(i.follow.batch.p50)} ms, ` +
      `p95 ${n1(i.follow.batch.p95)} ms (n=${i.follow.batch.n}).`,
    ...(i.openai
      ? [
          `\n\`POST /v1/embeddings\` through the Worker (${i.openai.requestItems} inputs a request, ` +
            `${i.openai.concurrency} in flight, base64): **${n1(i.openai.textsPerSecond)} texts/s, ` +
            `${pct(i.openai.fractionOfRaw)} of the raw \`/internal/embed\` rate** (the better window; ` +
            `target ≥ 90%); request p50 ${n1(i.openai.latencyMs.p50)} ms, p95 ${n1(i.openai.latencyMs.p95)} ms; ` +
            `the Worker's own time (Server-Timing app − embedder) p50 ${i.openai.workerOverheadMsP50.toFixed(2)} ms.`,
        ]
      : []),
    '',
  ];
}

/** ## Search latency */
function renderSearch(r: BenchResult): string[] {
  if (!r.search) return [];
  const s = r.search;
  return [
    `## Search latency (ms), ${s.points} points in the org, limit ${s.limit}, ${s.queryTokens}-token queries\n`,
    table(
      [
        'concurrency',
        'Worker p50',
        'p95',
        'p99',
        'Worker app p50 / p99',
        'embedder p50',
        'p95',
        'p99',
        'embedder infer p50',
        'embedder store+http p50',
        'Worker q/s',
        'cores: embedder / Worker+rest / client (machine)',
      ],
      s.levels.map((l) => [
        l.concurrency,
        n1(l.worker.p50),
        n1(l.worker.p95),
        n1(l.worker.p99),
        l.workerApp ? `${n1(l.workerApp.p50)} / ${n1(l.workerApp.p99)}` : '–',
        n1(l.embedderOnly.p50),
        n1(l.embedderOnly.p95),
        n1(l.embedderOnly.p99),
        n1(l.embedderInference.p50),
        n1(l.embedderStoreAndHttp.p50),
        n1(l.workerQps),
        `${l.workerRunCores.embedder} / ${l.workerRunCores.workerAndRest} / ${l.workerRunCores.client} (${l.workerRunCores.machine})`,
      ]),
    ),
    '',
    'Worker side by process (cores): ' +
      s.levels
        .map(({ concurrency, workerRunCores: { stack } }) => {
          return `c${concurrency} workerd ${stack.workerd}, wrangler ${stack.wrangler}, postgres ${stack.postgres}`;
        })
        .join('; ') +
      ' (wrangler dev runs two workerd processes: its local proxy and the Worker).',
    '',
    `Store only (LanceDB search in the bench process on the same table, sequential): p50 ${n1(s.storeOnly.p50)} ms, p95 ${n1(s.storeOnly.p95)} ms, p99 ${n1(s.storeOnly.p99)} ms. ` +
      `Shares of the Worker p50 at concurrency 1: embedder ${pct(s.shares.embedderOfWorkerP50)}, store ${pct(s.shares.storeOfWorkerP50)}. ` +
      `Round-trip floors (GET /healthz, sequential): Worker under wrangler dev ${n1(s.floors.worker.p50)} ms p50, embedder ${n1(s.floors.embedder.p50)} ms p50.`,
    '',
  ];
}

/** ## Vector store */
function renderStores(r: BenchResult): string[] {
  if (r.stores.length === 0) return [];
  return [
    `## Vector store (random unit ${r.stores[0]?.dim}-d vectors, one org holding all of them, limit 10, sequential)\n`,
    table(
      [
        'store',
        'vectors',
        'state',
        'ANN index',
        'search p50 ms',
        'p95 ms',
        'p99 ms',
        'keyword p50 ms',
        'hybrid p50 ms',
        'hybrid ÷ dense',
        '32-point write p50 ms',
        'fill points/s',
        'maintenance s',
      ],
      r.stores.map((c) => [
        c.store,
        c.vectors.toLocaleString('en'),
        c.state,
        c.annIndex === null ? '–' : c.annIndex ? 'yes' : 'no (exact)',
        n1(c.latencyMs.p50),
        n1(c.latencyMs.p95),
        n1(c.latencyMs.p99),
        n1(c.keywordLatencyMs?.p50),
        n1(c.hybridLatencyMs?.p50),
        c.hybridLatencyMs ? `${(c.hybridLatencyMs.p50 / c.latencyMs.p50).toFixed(2)}x` : '–',
        n1(c.write32Ms?.p50),
        n1(c.insertPointsPerSecond),
        n1(c.maintenanceSeconds),
      ]),
    ),
    '',
  ];
}

const mib = (b: number | null) => (b === null ? '–' : (b / 2 ** 20).toFixed(0));
const perPoint = (b: number | null, points: number) =>
  b === null || points === 0 ? '–' : (b / points).toFixed(0);

/** ## Scale: the cost curve (section scale) */
function renderScale(r: BenchResult): string[] {
  const s = r.scale;
  if (!s) return [];
  const out = [
    `## Scale: the stores' cost curve (${s.dim}-d, limit 10, sequential)\n`,
    `${s.method}\n`,
    table(
      [
        'store',
        'scenario',
        'points',
        'org points',
        'answered by',
        'dense p50 ms',
        'dense p99 ms',
        'recall@10',
        'hybrid p50 ms',
        'hybrid p99 ms',
        'hybrid recall@10',
        'fill pts/s',
        'upsert pts/s',
        'index s',
        'RSS MiB',
        'RSS Δ MiB',
        'RSS Δ B/pt',
        'disk B/pt',
        'load 1m',
      ],
      s.cells.map((c) => [
        c.store,
        c.scenario === 'many orgs' ? `${c.orgs.toLocaleString('en')} orgs` : 'one org',
        c.points.toLocaleString('en'),
        c.orgPoints.toLocaleString('en'),
        c.index,
        n1(c.dense.p50),
        n1(c.dense.p99),
        c.recallDense.toFixed(3),
        n1(c.hybrid?.p50),
        n1(c.hybrid?.p99),
        c.recallHybrid === null ? '–' : c.recallHybrid.toFixed(3),
        n1(c.fillPointsPerSecond),
        n1(c.upsertPointsPerSecond),
        n1(c.indexSeconds),
        mib(c.rssBytes),
        mib(c.rssDeltaBytes),
        perPoint(c.rssDeltaBytes, c.points),
        perPoint(c.diskBytes, c.points),
        (c.loadAverage[0] ?? NaN).toFixed(2),
      ]),
    ),
    '',
  ];
  const isolated = s.cells.filter((c) => c.isolation && c.scenario === 'many orgs');
  if (isolated.length > 0) {
    out.push('Tenant scope, from the store itself (one tenant of many):\n');
    for (const c of isolated) {
      const i = c.isolation as NonNullable<typeof c.isolation>;
      out.push(
        `- ${c.store}: ${i.scopedToTenant ? 'scoped to the tenant' : 'NOT shown scoped'} — ${Object.entries(
          i.evidence,
        )
          .map(([k, v]) => `${k} ${String(v)}`)
          .join(', ')}`,
      );
    }
    out.push('');
  }
  for (const note of s.notes) out.push(`- ${note}`);
  if (s.notes.length > 0) out.push('');
  return out;
}

/** ## Keyword index: what its term vectors cost ingest */
function renderKeywordCost(r: BenchResult): string[] {
  const k = r.keywordCost;
  if (!k) return [];
  return [
    `## Keyword index cost (${k.model}, ${k.texts} ${k.length} texts per round, EmbedderService.embed in process, best of ${k.rounds} rounds)\n`,
    table(
      ['with term vectors texts/s', 'dense-only texts/s', 'ratio', 'analysis alone ms/text'],
      [
        [
          n1(k.withTermsTextsPerSecond),
          n1(k.denseOnlyTextsPerSecond),
          pct(k.ratio),
          k.analysisMsPerText,
        ],
      ],
    ),
    '',
  ];
}

/** ## Chunking: what embedding every window of long texts costs */
function renderChunkingCost(r: BenchResult): string[] {
  const c = r.chunkingCost;
  if (!c) return [];
  const row = (name: string, v: ChunkingCostResult['chunked']) => [
    name,
    n1(v.chunksPerText),
    n1(v.tokensPerText),
    n1(v.textsPerSecond),
    n1(v.chunksPerSecond),
    n1(v.tokensPerSecond),
  ];
  return [
    `## Chunking cost (${c.model}, ${c.texts} texts of ~${c.charsPerText} characters per round, EmbedderService.embed in process, best of ${c.rounds} rounds)\n`,
    table(
      ['chunking', 'chunks/text', 'tokens/text', 'texts/s', 'chunks/s', 'tokens/s'],
      [row('windows (default)', c.chunked), row('"truncate"', c.truncated)],
    ),
    '',
    `Tokens embedded per second with chunking: ${pct(c.tokenRateRatio)} of truncation's.`,
    '',
  ];
}

/** ## Soak */
function renderSoak(r: BenchResult): string[] {
  return r.soak ? renderSoakSection(r.soak) : [];
}

/** ## Peer: sentence-transformers against Heimdex */
function renderPeer(r: BenchResult): string[] {
  if (!r.peer) return [];
  const out: string[] = [];
  const p = r.peer;
  const st = p.sentenceTransformers;
  out.push(
    `## Peer: sentence-transformers against Heimdex (${p.model.name}, texts/s)\n\n` +
      `The real all-MiniLM-L6-v2 on both sides, the same texts: sentence-transformers ${st.versions['sentence-transformers'] ?? '?'} ` +
      `\`encode\` (torch ${st.versions.torch ?? '?'} on the CPU, batch ${st.batchSize}, ${st.threads} threads; weights from ${p.model.referenceWeightsPackage}) ` +
      `against Heimdex's embedder (${p.model.dir}) over HTTP: ${p.heimdex[0]?.requestItems ?? '?'}-item POST /internal/embed requests kept in flight, ` +
      `dynamic batching at EMBEDDER_MAX_BATCH_ITEMS ${p.heimdex[0]?.cap ?? '?'}, each text also written to the embedded store. One after the other, never sharing the cores.`,
  );
  out.push('');
  const lengths = LENGTH_CLASSES.filter((l) => st.cells.some((c) => c.length === l));
  /** Both tables' last columns: Heimdex fp32's and int8's figure over sentence-transformers'. */
  const VS_ST = ['fp32 / ST', 'int8 / ST'];
  /** The cells of one length class: sentence-transformers', Heimdex fp32's and int8's. */
  const sides = (l: string) => ({
    s: st.cells.find((c) => c.length === l),
    f: p.heimdex.find((c) => c.dtype === 'fp32' && c.length === l),
    q: p.heimdex.find((c) => c.dtype === 'q8' && c.length === l),
  });
  const ratio = (dtype: 'fp32' | 'q8', l: string) => {
    const x = p.ratios.find((q) => q.dtype === dtype && q.length === l)?.ratio;
    return x === undefined ? '–' : `${x.toFixed(2)}x`;
  };
  out.push(
    table(
      [
        'length (tokens per text)',
        'sentence-transformers',
        'Heimdex fp32',
        'Heimdex int8',
        ...VS_ST,
        'other load (cores): ST / fp32 / int8',
      ],
      lengths.map((l) => {
        const { s, f, q } = sides(l);
        return [
          `${l} (${s?.tokensPerText ?? '?'})`,
          n1(s?.textsPerSecond),
          n1(f?.textsPerSecond),
          n1(q?.textsPerSecond),
          ratio('fp32', l),
          ratio('q8', l),
          `${s?.otherLoadCores ?? '–'} / ${f?.otherLoadCores ?? '–'} / ${q?.otherLoadCores ?? '–'}`,
        ];
      }),
    ),
  );
  out.push('');
  // On a busy machine the two sides may get different shares of the cores: texts per CPU-second
  // of each side's own process (Heimdex: the embedder, all threads) compares the work done.
  out.push(
    table(
      ['length', 'ST texts/CPU-s', 'fp32 texts/CPU-s', 'int8 texts/CPU-s', ...VS_ST],
      lengths.map((l) => {
        const { s, f, q } = sides(l);
        const perCpu = (tps: number | undefined, cpu: number | undefined) =>
          tps !== undefined && cpu ? tps / cpu : NaN;
        const sc = perCpu(s?.textsPerSecond, s?.cpuPerSecond);
        const [fc, qc] = [f, q].map((h) =>
          perCpu(h?.textsPerSecond, h?.embedderCpuPerSecond.total),
        );
        const rel = (x = NaN) => (Number.isFinite(x / sc) ? `${(x / sc).toFixed(2)}x` : '–');
        return [l, n1(sc), n1(fc), n1(qc), rel(fc), rel(qc)];
      }),
    ),
  );
  out.push('');
  out.push(
    'Heimdex per request (medians, ms: inference / queue / store+http), embedder CPU (cores: main / store / inference+other): ' +
      p.heimdex
        .map(
          (c) =>
            `${c.dtype} ${c.length} ${n1(c.serverMs.inference)} / ${n1(c.serverMs.queue)} / ${n1(c.serverMs.other)}, ` +
            `${c.embedderCpuPerSecond.main} / ${c.embedderCpuPerSecond.store} / ${c.embedderCpuPerSecond.inferenceAndOther}`,
        )
        .join('; ') +
      `. sentence-transformers process CPU (cores): ${st.cells.map((c) => `${c.length} ${c.cpuPerSecond}`).join(', ')}.`,
  );
  out.push('');
  return out;
}

/** ## Targets, then the warnings and notes. */
function renderTargets(r: BenchResult): string[] {
  const out: string[] = [];
  out.push('## Targets\n');
  out.push(
    table(
      ['target', 'measured', 'result', 'basis'],
      r.targets.map((t) => [
        t.target,
        t.measured === null ? '–' : fmt(t.measured, t.unit),
        t.status === 'MISS' ? `MISS: ${t.missedBy}` : t.status,
        t.basis,
      ]),
    ),
  );
  out.push('');
  if (r.warnings.length > 0) {
    out.push('Warnings:');
    for (const w of r.warnings) out.push(`- ${w}`);
    out.push('');
  }
  for (const note of r.notes) out.push(`- ${note}`);
  return out;
}
