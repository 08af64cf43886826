/**
 * `npm run bench [-- options]`: Heimdex's benchmark suite. Prints a Markdown report on stdout
 * (progress on stderr) and writes the full results as JSON to bench/results/<date>-<machine>.json.
 * See bench/PERFORMANCE.md for what each section measures and `--help` for the options.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadCorpus } from '../eval/lib/dataset.js';
import { DEFAULT_DATASET } from '../eval/lib/options.js';
import { invalidFiles, modelCacheDir, readLock } from '../scripts/models/cache.js';
import { PASSED_ENV } from './lib/embedder.js';
import { commandOptions, endRun, finishedEnvelope, shellQuote, startRun } from './lib/envelope.js';
import type { RunStart } from './lib/envelope.js';
import { machineInfo, machineSlug } from './lib/machine.js';
import { measureMatmulPeak } from './lib/matmul.js';
import type { MatmulPeak } from './lib/matmul.js';
import { REPO_ROOT, RESULTS_DIR } from './lib/paths.js';
import { measurePeer } from './lib/peer.js';
import { progress } from './lib/progress.js';
import { renderReport } from './lib/report.js';
import type { BenchResult } from './lib/report.js';
import { runSoak } from './lib/soak.js';
import { maxBy } from './lib/stats.js';
import { measureStack } from './lib/stack-bench.js';
import { measureChunkingCost } from './lib/chunking-bench.js';
import { describeRerank, measureRerank } from './lib/rerank-bench.js';
import { measureKeywordCost } from './lib/keywords-bench.js';
import { measureStores } from './lib/store-bench.js';
import { SCALE_STORES, measureScale } from './lib/scale-bench.js';
import type { ScaleStore } from './lib/scale-bench.js';
import { loadScaleBases } from './lib/scale-data.js';
import { plotFromResults, scaleTitle, writeScalePlot } from './lib/scale-plot.js';
import { best, evaluateTargets } from './lib/targets.js';
import { LENGTH_CLASSES } from './lib/texts.js';
import type { LengthClass } from './lib/texts.js';
import { measureVariant } from './lib/throughput.js';
import { MINILM, VARIANT_IDS, variant } from './lib/variants.js';
import type { VariantId } from './lib/variants.js';

const SECTIONS = [
  'peak',
  'throughput',
  'stack',
  'store',
  'scale',
  'keywords',
  'chunking',
  'rerank',
  'soak',
  'peer',
] as const;
type Section = (typeof SECTIONS)[number];
const FULL_SOAK_MINUTES = 10;

const USAGE = `npm run bench [-- options]

  --sections LIST        ${SECTIONS.join(',')} (default: all)
  --models LIST          ${VARIANT_IDS.join(',')} (default: all)
  --caps LIST            batch caps, EMBEDDER_MAX_BATCH_ITEMS (default 1,8,32,128)
  --lengths LIST         short,medium,long (16/64/256 tokens; default all)
  --request-items N      items per /internal/embed request (default 32: the queue consumer's calls, EMBEDDER_CALL_ITEMS)
  --max-batch-tokens N   EMBEDDER_MAX_BATCH_TOKENS for every cap (default 65536, so the item cap binds)
  --seconds S            minimum measurement window per throughput cell (default 3)
  --max-seconds S        hard limit per cell (default 240)
  --rounds N             interleaved rounds over the throughput cells, best round kept (default 1)
  --ingest-texts N       texts through the Worker API (default 1000)
  --ingest-length L      their length class (default medium)
  --ingest-chars N       instead, real passages of N characters (SciFact abstracts run together,
                         ../shared/eval/scifact): long texts the embedder chunks; the result adds
                         chunks and chunks/s
  --ingest-only          the stack section measures the ingest only (no search latency)
  --search-queries N     queries per concurrency level (default 200)
  --store-sizes LIST     vectors in the store benchmark (default 10000,100000)
  --scale-sizes LIST     scale section: points in one organisation (default 10000,100000,1000000)
  --scale-stores LIST    scale section: embedded,qdrant (default both; Qdrant needs --qdrant-url,
                         else it is skipped with a note)
  --scale-orgs N         scale section: organisations of the many-organisations cell (default 1000; 0 skips it)
  --scale-org-points N   scale section: points per organisation there (default 1000)
  --scale-queries N      scale section: queries per cell and mode (default 200)
  --qdrant-pid PID       scale section: the Qdrant server's pid, for its RSS from /proc
  --qdrant-storage DIR   scale section: its storage path, for disk per point
  --plot-scale LIST      only draw the scale plot from results JSON files, their cells together
                         (PNG beside the first, named <first>-all.png)
  --soak-minutes M       ingest soak length (default 1; the RSS target is for 10)
  --soak-store S         lancedb (embedded, default) or qdrant (live, at --qdrant-url)
  --qdrant-url URL       Qdrant for --soak-store qdrant (default: QDRANT_URL; QDRANT_API_KEY read too)
  --soak-overwrite N     rewrite the same N segments again and again (default 0: ingest new ones)
  --soak-model M         ${VARIANT_IDS.join(',')} for the soak (default minilm-fp32)
  --soak-length L        short,medium,long texts for the soak (default medium)
  --peer-cap N           peer section: Heimdex's EMBEDDER_MAX_BATCH_ITEMS (default: the embedder's default)
  --out FILE             results JSON (default bench/results/<date>-<machine>.json)
  --work-dir DIR         scratch folder (default .data/bench/run-<time>, deleted unless --keep)
  --keep                 keep the scratch folder (embedder logs, stores, profiles)
  --cpu-prof             run each embedder with --cpu-prof (profiles under the work dir; implies --keep)
  --help
`;

function list(value: string, name: string): string[] {
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new Error(`--${name} needs at least one value`);
  return items;
}

function positive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`);
  return n;
}

function positiveInt(value: string, name: string): number {
  const n = positive(value, name);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be a whole number`);
  return n;
}

function nonNegativeInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number >= 0`);
  return n;
}

function oneOf<T extends string>(values: string[], allowed: readonly T[], name: string): T[] {
  const bad = values.filter((v) => !allowed.includes(v as T));
  if (bad.length > 0)
    throw new Error(`--${name}: unknown ${bad.join(', ')} (use ${allowed.join(', ')})`);
  return values as T[];
}

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      sections: { type: 'string', default: SECTIONS.join(',') },
      models: { type: 'string', default: VARIANT_IDS.join(',') },
      caps: { type: 'string', default: '1,8,32,128' },
      lengths: { type: 'string', default: LENGTH_CLASSES.join(',') },
      'request-items': { type: 'string', default: '32' },
      'max-batch-tokens': { type: 'string', default: '65536' },
      seconds: { type: 'string', default: '3' },
      'max-seconds': { type: 'string', default: '240' },
      rounds: { type: 'string', default: '1' },
      'ingest-texts': { type: 'string', default: '1000' },
      'ingest-length': { type: 'string', default: 'medium' },
      'ingest-chars': { type: 'string' },
      'ingest-only': { type: 'boolean', default: false },
      'search-queries': { type: 'string', default: '200' },
      'store-sizes': { type: 'string', default: '10000,100000' },
      'scale-sizes': { type: 'string', default: '10000,100000,1000000' },
      'scale-stores': { type: 'string', default: SCALE_STORES.join(',') },
      'scale-orgs': { type: 'string', default: '1000' },
      'scale-org-points': { type: 'string', default: '1000' },
      'scale-queries': { type: 'string', default: '200' },
      'qdrant-pid': { type: 'string' },
      'qdrant-storage': { type: 'string' },
      'plot-scale': { type: 'string' },
      'soak-minutes': { type: 'string', default: '1' },
      'soak-store': { type: 'string', default: 'lancedb' },
      'qdrant-url': { type: 'string' },
      'soak-overwrite': { type: 'string', default: '0' },
      'soak-model': { type: 'string', default: 'minilm-fp32' },
      'soak-length': { type: 'string', default: 'medium' },
      'peer-cap': { type: 'string' },
      out: { type: 'string' },
      'work-dir': { type: 'string' },
      keep: { type: 'boolean', default: false },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const caps = list(values.caps, 'caps').map((c) => positiveInt(c, 'caps'));
  const lengths = oneOf(list(values.lengths, 'lengths'), LENGTH_CLASSES, 'lengths');
  const requestItems = positiveInt(values['request-items'], 'request-items');
  if (requestItems > 512)
    throw new Error('--request-items must be at most 512 (the embedder limit)');
  const maxBatchTokens = positiveInt(values['max-batch-tokens'], 'max-batch-tokens');
  const needed = Math.max(...caps) * 258;
  if (maxBatchTokens < needed) {
    throw new Error(
      `--max-batch-tokens ${maxBatchTokens} would cut batches below the largest cap; use at least ${needed}`,
    );
  }
  return {
    help: values.help,
    sections: new Set(oneOf(list(values.sections, 'sections'), SECTIONS, 'sections')),
    models: oneOf(list(values.models, 'models'), VARIANT_IDS, 'models'),
    caps,
    lengths,
    requestItems,
    maxBatchTokens,
    seconds: positive(values.seconds, 'seconds'),
    maxSeconds: positive(values['max-seconds'], 'max-seconds'),
    rounds: positiveInt(values.rounds, 'rounds'),
    ingestTexts: positiveInt(values['ingest-texts'], 'ingest-texts'),
    ingestLength: oneOf(
      [values['ingest-length']],
      LENGTH_CLASSES,
      'ingest-length',
    )[0] as LengthClass,
    ingestChars:
      values['ingest-chars'] === undefined
        ? null
        : positiveInt(values['ingest-chars'], 'ingest-chars'),
    ingestOnly: values['ingest-only'] === true,
    searchQueries: positiveInt(values['search-queries'], 'search-queries'),
    storeSizes: list(values['store-sizes'], 'store-sizes').map((s) =>
      positiveInt(s, 'store-sizes'),
    ),
    soakMinutes: positive(values['soak-minutes'], 'soak-minutes'),
    scaleSizes: list(values['scale-sizes'], 'scale-sizes').map((s) =>
      positiveInt(s, 'scale-sizes'),
    ),
    scaleStores: oneOf(list(values['scale-stores'], 'scale-stores'), SCALE_STORES, 'scale-stores'),
    scaleOrgs: nonNegativeInt(values['scale-orgs'], 'scale-orgs'),
    scaleOrgPoints: positiveInt(values['scale-org-points'], 'scale-org-points'),
    scaleQueries: positiveInt(values['scale-queries'], 'scale-queries'),
    qdrantPid:
      values['qdrant-pid'] === undefined ? null : positiveInt(values['qdrant-pid'], 'qdrant-pid'),
    qdrantStorage: values['qdrant-storage'] ?? null,
    plotScale: values['plot-scale'] ?? null,
    soakStore: oneOf([values['soak-store']], ['lancedb', 'qdrant'] as const, 'soak-store')[0] as
      'lancedb' | 'qdrant',
    qdrantUrl: values['qdrant-url'] ?? process.env.QDRANT_URL ?? null,
    soakOverwrite:
      values['soak-overwrite'] === '0'
        ? 0
        : positiveInt(values['soak-overwrite'], 'soak-overwrite'),
    soakModel: oneOf([values['soak-model']], VARIANT_IDS, 'soak-model')[0] as VariantId,
    soakLength: oneOf([values['soak-length']], LENGTH_CLASSES, 'soak-length')[0] as LengthClass,
    peerCap:
      values['peer-cap'] === undefined ? undefined : positiveInt(values['peer-cap'], 'peer-cap'),
    out: values.out,
    workDir: values['work-dir'],
    keep: values.keep || values['cpu-prof'],
    cpuProf: values['cpu-prof'],
  };
}

/**
 * Environment variables that change what the bench's embedders do, recorded with the command:
 * those its own embedders take, and EMBEDDING_CPU_SPINNING, which the stack's embedder takes.
 */
const RECORDED_ENV = [...PASSED_ENV, 'EMBEDDING_CPU_SPINNING'];

function commandLine(argv: string[]): string {
  const quoted = argv.map(shellQuote);
  const env = RECORDED_ENV.filter((k) => process.env[k] !== undefined).map(
    (k) => `${k}=${shellQuote(process.env[k] ?? '')}`,
  );
  const prefix = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'tsx bench/run.ts';
  const command =
    quoted.length > 0 && prefix.startsWith('npm')
      ? `${prefix} -- ${quoted.join(' ')}`
      : [prefix, ...quoted].join(' ');
  return [...env, command].join(' ');
}

/** Search concurrency levels of the stack section (the targets read 1 and 8). */
const SEARCH_CONCURRENCY = [1, 8, 32] as const;

type Options = ReturnType<typeof parseOptions>;

/**
 * Parses the options, checks the model cache, runs the chosen sections in order (each fills its
 * part of the result), evaluates the targets, and writes the JSON and Markdown results.
 */
async function main(): Promise<void> {
  const command = commandOptions(parseOptions, USAGE);
  if (!command) return;
  const { argv, o } = command;
  if (o.plotScale) {
    const files = list(o.plotScale, 'plot-scale');
    const png = (files[0] as string).replace(/\.json$/, '-all.png');
    await plotFromResults(files, png);
    progress(`plot: ${path.relative(REPO_ROOT, png)}`);
    return;
  }
  const run = startRun(o.workDir, '.data/bench');
  const machine = machineInfo();
  const outFile = path.resolve(
    REPO_ROOT,
    o.out ??
      path.join(
        RESULTS_DIR,
        `${run.startedAt.toISOString().slice(0, 10)}-${machineSlug(machine)}.json`,
      ),
  );
  progress(`work dir ${run.workDir}`);
  const result = newResult(o, argv, run, machine);
  if (usesMinilm(o)) await checkModelCache();
  await runSections(o, result, run.workDir, async (partial) => {
    finishResult(partial, run);
    await writeResults(partial, outFile, true);
  });
  finishResult(result, run);
  await writeResults(result, outFile);
  endRun(run.workDir, o.keep, progress);
}

/** The result document before any section has run: the command, machine, settings and models. */
function newResult(
  o: Options,
  argv: string[],
  run: RunStart,
  machine: ReturnType<typeof machineInfo>,
): BenchResult {
  return {
    schema: 'heimdex-bench/1',
    command: commandLine(argv),
    startedAt: run.startedAt.toISOString(),
    finishedAt: '',
    durationSeconds: 0,
    machine,
    loadAverage: { start: run.loadAtStart, end: [] },
    settings: {
      sections: [...o.sections],
      models: o.models,
      caps: o.caps,
      lengths: o.lengths,
      requestItems: o.requestItems,
      maxBatchTokens: o.maxBatchTokens,
      minSecondsPerCell: o.seconds,
      maxSecondsPerCell: o.maxSeconds,
      rounds: o.rounds,
      ingestTexts: o.ingestTexts,
      ingestLength: o.ingestLength,
      ingestChars: o.ingestChars,
      searchQueries: o.searchQueries,
      searchConcurrency: [...SEARCH_CONCURRENCY],
      storeSizes: o.storeSizes,
      ...(o.sections.has('scale')
        ? {
            scale: {
              sizes: o.scaleSizes,
              stores: o.scaleStores,
              orgs: o.scaleOrgs,
              orgPoints: o.scaleOrgPoints,
              queries: o.scaleQueries,
              qdrant: o.qdrantUrl ? 'live (--qdrant-url)' : 'none given',
            },
          }
        : {}),
      soakMinutes: o.soakMinutes,
      soak: {
        store: o.soakStore,
        overwriteSegments: o.soakOverwrite,
        model: o.soakModel,
        length: o.soakLength,
      },
      peerCap: o.peerCap ?? 'embedder default',
      qdrant: process.env.QDRANT_URL ? 'QDRANT_URL set' : 'not set (LanceDB only)',
    },
    models: o.models.map((id) => {
      const v = variant(id);
      return {
        id,
        label: v.label,
        name: v.modelName,
        dtype: v.dtype,
        dir: path.relative(REPO_ROOT, path.join(v.modelDir, v.modelName)),
        encoderMatmulParams: v.matmulParams,
      };
    }),
    benchModel: null,
    matmulPeak: { used: null, runs: [] },
    naive: [],
    throughput: [],
    singleItemRequests: [],
    ingest: null,
    search: null,
    stores: [],
    keywordCost: null,
    chunkingCost: null,
    rerank: null,
    soak: null,
    scale: null,
    peer: null,
    targets: [],
    warnings: [],
    notes: [
      'Targets are ratios of figures from this one run; other work on the machine shows up as "other load" per cell and in the load averages.',
      'FLOPs per text = tokens × (2 × 10,616,832 encoder MatMul parameters + 6 layers × 4 × tokens × 384 for QKᵀ and A·V); texts have exact token counts, so nothing is padded.',
    ],
  };
}

/** The sections that need the real all-MiniLM-L6-v2 in the model cache (npm run models). */
function usesMinilm(o: Options): boolean {
  const has = (s: Section) => o.sections.has(s);
  return (
    (has('throughput') && o.models.some((m) => m !== 'potion-fp32')) ||
    has('stack') ||
    has('scale') ||
    has('soak') ||
    has('keywords') ||
    has('chunking')
  );
}

/** The real model, checked against the lock (npm run models builds and verifies it). */
async function checkModelCache(): Promise<void> {
  const cache = modelCacheDir();
  for (const model of readLock().models) {
    const bad = await invalidFiles(cache, model);
    if (bad.length > 0) {
      throw new Error(
        `the model cache ${cache} lacks a valid ${model.name} (${bad.join(', ')}): run npm run models`,
      );
    }
  }
}

/** Runs the chosen sections in the order of SECTIONS, each filling its part of `result`. */
async function runSections(
  o: Options,
  result: BenchResult,
  workDir: string,
  partial: (result: BenchResult) => Promise<void>,
): Promise<void> {
  const has = (s: Section) => o.sections.has(s);
  const peaks: MatmulPeak[] = [];
  if (has('peak')) peaks.push(await measurePeak());
  if (has('throughput')) await runThroughput(o, result, workDir);
  // A second peak measurement after the long throughput section: the higher of the two is used
  // (a busy machine lowers the peak, which would flatter the FLOP/s percentages).
  if (has('peak') && has('throughput')) peaks.push(await measurePeak());
  result.matmulPeak = {
    runs: peaks,
    used: maxBy(peaks, (p) => p.bestFlopsPerSecond),
  };
  if (has('stack')) await runStack(o, result, workDir);
  if (has('store')) await runStores(o, result, workDir);
  if (has('scale')) await runScale(o, result, workDir, partial);
  if (has('keywords')) {
    progress('keyword index: ingest with and without term vectors');
    result.keywordCost = await measureKeywordCost({
      workDir,
      modelDir: modelCacheDir(),
      modelName: MINILM,
      texts: 192,
      length: 'medium',
      rounds: Math.max(2, o.rounds),
    });
  }
  if (has('chunking')) {
    progress('chunking: long texts, every window against the first one');
    result.chunkingCost = await measureChunkingCost({
      workDir,
      modelDir: modelCacheDir(),
      modelName: MINILM,
      texts: 48,
      words: 640,
      rounds: Math.max(2, o.rounds),
    });
  }
  if (has('rerank')) {
    progress('rerank: 100 documents × 1 query through the Worker and the embedder');
    result.rerank = await measureRerank({ workDir, documents: 100, requests: 30, dtype: 'fp32' });
    for (const line of describeRerank(result.rerank)) progress(`  ${line}`);
  }
  if (has('soak')) await runSoakSection(o, result, workDir);
  if (has('peer')) {
    result.peer = await measurePeer({
      lengths: o.lengths,
      minSeconds: o.seconds,
      maxSeconds: o.maxSeconds,
      requestItems: o.requestItems,
      cap: o.peerCap,
      workDir,
    });
  }
}

async function measurePeak(): Promise<MatmulPeak> {
  progress('fp32 MatMul peak through onnxruntime');
  const p = await measureMatmulPeak();
  progress(
    `  ${(p.bestFlopsPerSecond / 1e9).toFixed(1)} GFLOP/s (fastest run), ${(p.flopsPerSecond / 1e9).toFixed(1)} median`,
  );
  return p;
}

async function runThroughput(o: Options, result: BenchResult, workDir: string): Promise<void> {
  for (const id of o.models) {
    const v = variant(id);
    const t = await measureVariant(v, {
      caps: o.caps,
      lengths: o.lengths,
      requestItems: o.requestItems,
      maxBatchTokens: o.maxBatchTokens,
      minSeconds: o.seconds,
      maxSeconds: o.maxSeconds,
      rounds: o.rounds,
      singleItemCap: o.caps.includes(32) ? 32 : (o.caps[0] ?? null),
      workDir: workDir,
      nodeFlags: (label) =>
        o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.join(workDir, 'profiles', label)}`] : [],
    });
    result.naive.push(...t.naive);
    result.throughput.push(...t.cells);
    result.singleItemRequests.push(...t.singleItem);
    result.warnings.push(...t.warnings);
  }
}

async function runStack(o: Options, result: BenchResult, workDir: string): Promise<void> {
  const v = variant('minilm-fp32');
  const cap = best(result.throughput, v.id, o.ingestLength)?.cap ?? 32;
  const r = await measureStack(v, {
    workDir,
    cap,
    maxBatchTokens: o.maxBatchTokens,
    ingestTexts: o.ingestTexts,
    length: o.ingestLength,
    ...(o.ingestChars === null
      ? {}
      : {
          documentChars: {
            chars: o.ingestChars,
            corpus: loadCorpus(DEFAULT_DATASET).docs.map((d) => d.text),
          },
        }),
    ingestOnly: o.ingestOnly,
    requestItems: o.requestItems,
    minSeconds: o.seconds,
    maxSeconds: o.maxSeconds,
    searchQueries: o.searchQueries,
    concurrencies: SEARCH_CONCURRENCY,
  });
  result.ingest = r.ingest;
  result.search = r.search;
}

async function runStores(o: Options, result: BenchResult, workDir: string): Promise<void> {
  progress('vector store search latency');
  result.stores = await measureStores({
    workDir,
    dim: 384,
    sizes: o.storeSizes,
    queries: o.searchQueries,
    insertBatch: 10_000,
    qdrant: process.env.QDRANT_URL
      ? { url: process.env.QDRANT_URL, apiKey: process.env.QDRANT_API_KEY ?? null }
      : null,
  });
}

async function runScale(
  o: Options,
  result: BenchResult,
  workDir: string,
  partial: (result: BenchResult) => Promise<void>,
): Promise<void> {
  progress("scale: the stores' cost curve");
  result.scale = await measureScale({
    // The results so far are written after each cell: a long run that is stopped keeps them.
    onCell: async (scale) => {
      result.scale = scale;
      await partial(result);
    },
    workDir,
    bases: await loadScaleBases(),
    sizes: o.scaleSizes,
    stores: o.scaleStores as ScaleStore[],
    queries: o.scaleQueries,
    orgs: o.scaleOrgs,
    orgPoints: o.scaleOrgPoints,
    qdrant: o.qdrantUrl
      ? {
          url: o.qdrantUrl,
          apiKey: process.env.QDRANT_API_KEY ?? null,
          pid: o.qdrantPid,
          storage: o.qdrantStorage,
        }
      : null,
  });
}

async function runSoakSection(o: Options, result: BenchResult, workDir: string): Promise<void> {
  if (o.soakStore === 'qdrant' && !o.qdrantUrl) {
    throw new Error('--soak-store qdrant needs --qdrant-url URL (or QDRANT_URL)');
  }
  result.soak = await runSoak(variant(o.soakModel), {
    workDir,
    minutes: o.soakMinutes,
    length: o.soakLength,
    requestItems: o.requestItems,
    concurrency: 4,
    store:
      o.soakStore === 'qdrant'
        ? {
            kind: 'qdrant',
            url: o.qdrantUrl ?? '',
            apiKey: process.env.QDRANT_API_KEY ?? null,
            collection: `bench_soak_${Date.now()}`,
          }
        : { kind: 'lancedb' },
    overwriteSegments: o.soakOverwrite,
  });
  if (o.soakMinutes < FULL_SOAK_MINUTES) {
    result.notes.push(
      `The soak ran ${o.soakMinutes} min (short default); the RSS target is for ${FULL_SOAK_MINUTES} min: npm run bench -- --soak-minutes ${FULL_SOAK_MINUTES}.`,
    );
  }
}

/** The targets, from the figures of this run, and the end time and load. */
function finishResult(result: BenchResult, run: RunStart): void {
  result.targets = evaluateTargets({
    naive: result.naive,
    cells: result.throughput,
    peak: result.matmulPeak.used,
    ingest: result.ingest,
    search: result.search,
    soak: result.soak,
    fullSoakMinutes: FULL_SOAK_MINUTES,
    peer: result.peer,
    stores: result.stores,
    keywordCost: result.keywordCost,
    chunkingCost: result.chunkingCost,
    rerank: result.rerank ?? null,
    scale: result.scale ?? null,
  });
  Object.assign(result, finishedEnvelope(run, result.command, result.machine));
}

/** The JSON document, and beside it the Markdown report (also printed on stdout). */
async function writeResults(result: BenchResult, outFile: string, quiet = false): Promise<void> {
  mkdirSync(path.dirname(outFile), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
  const report = renderReport(result);
  writeFileSync(outFile.replace(/\.json$/, '.md'), `${report}\n`);
  if (!quiet) process.stdout.write(`${report}\n`);
  if (result.scale) {
    await writeScalePlot(result.scale, scaleTitle(result), outFile.replace(/\.json$/, '.png'));
  }
  progress(
    `${quiet ? 'results so far' : 'results'}: ${path.relative(REPO_ROOT, outFile)} (and .md${result.scale ? ', .png' : ''})`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
