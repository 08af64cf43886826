/**
 * `npm run eval [-- options]`: retrieval quality through Heimdex's public API, side by side with the
 * same model through sentence-transformers (eval/reference.py).
 *
 * Starts the local stack (scripts/lib/stack.ts: embedded PostgreSQL, the embedder, wrangler dev),
 * ingests a BEIR-format dataset once through POST /vectors/embed/batch and the queue, then runs the
 * split's queries through POST /vectors/search in each of `--modes` (dense, keyword, hybrid; with
 * `--sweep-fusion`, hybrid over a grid of fusion settings too), and reports per pass nDCG@10,
 * Recall@100 and MRR@10 (computed as pytrec_eval computes them) and search p50/p95, with ingest
 * texts/s, into eval/results/<date>-<dataset>-<model>.{json,md}. Two references: an in-process
 * BM25 over the same terms as the keyword index (eval/lib/bm25.ts; keyword mode's), and
 * sentence-transformers encoding the same texts and searching exactly in numpy (dense mode's). The
 * report judges issue 15's quality targets (eval/lib/checks.ts). Nothing it logs or writes holds a
 * document's or a query's text: ids and numbers only.
 */
import { createHash } from 'node:crypto';
import { cpSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import {
  commandOptions,
  endRun,
  finishedEnvelope,
  shellQuote,
  startRun,
} from '../bench/lib/envelope.js';
import { machineInfo } from '../bench/lib/machine.js';
import { round, roundSummary } from '../bench/lib/stats.js';
import type { SearchMode } from '../contract/internal.js';
import { BM25_B, BM25_K1 } from '../embedder/src/core/keywords.js';
import { modelSpec } from '../embedder/src/core/registry.js';
import { localStackEnv } from '../scripts/lib/local-env.js';
import { startStack } from '../scripts/lib/stack.js';
import { mintDevToken } from '../scripts/lib/token.js';
import { derivedWranglerConfig } from '../test/helpers/stack.js';
import { loadDataset } from './lib/dataset.js';
import type { Dataset } from './lib/dataset.js';
import { ingest, searchAll } from './lib/heimdex.js';
import type { Api } from './lib/heimdex.js';
import { Bm25Index } from './lib/bm25.js';
import { agreement, computeChecks, metricDelta } from './lib/checks.js';
import { summarizeRun } from './lib/metrics.js';
import type { MetricSummary, Run } from './lib/metrics.js';
import { USAGE, effectiveFusion, parseOptions, sweepGrid } from './lib/options.js';
import type { EvalOptions, FusionSettings } from './lib/options.js';
import { REPO_ROOT, ensurePython, runPython } from './lib/python.js';
import { bestOfSweep, renderEval } from './lib/report.js';
import type { EvalResult, ModeRun, ReferenceResult } from './lib/report.js';

const RESULTS_DIR = path.join(REPO_ROOT, 'eval/results');
/** Results per query (the metrics need 100). */
const LIMIT = 100;

/** Stops what is running (the stack) when the run is interrupted. */
let onSignal: (() => Promise<void>) | null = null;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`eval: ${signal}, stopping\n`);
    void (onSignal?.() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

const started = performance.now();
function log(message: string): void {
  const s = (performance.now() - started) / 1000;
  const stamp = `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
  process.stderr.write(`[eval ${stamp}] ${message}\n`);
}

function commandLine(argv: string[]): string {
  const env = ['EMBEDDING_MODEL_DIR', 'EMBEDDING_MODEL_NAME', 'EMBEDDING_DTYPE', 'QDRANT_URL']
    .filter((k) => process.env[k])
    .map((k) => `${k}=${k === 'QDRANT_URL' ? '<set>' : shellQuote(process.env[k] ?? '')}`);
  const args = argv.map(shellQuote);
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

/** One pass of the queries in one mode: its figures and its run (query → document → score). */
interface Pass {
  result: ModeRun;
  /** The API's order (what the metrics score). */
  run: Run;
  /** The API's scores (what a reference's scores are compared with). */
  scores: Run;
  modeMismatches: number;
}

async function searchPass(
  api: Api,
  ds: Dataset,
  assetId: string,
  docIds: ReadonlySet<string>,
  pass: { label: string; mode: SearchMode; fusionSent: Partial<FusionSettings> | null },
): Promise<Pass> {
  log(`${pass.label}: ${ds.queries.length} queries through POST /vectors/search (limit ${LIMIT})`);
  const s = await searchAll(api, ds.queries, {
    assetId,
    limit: LIMIT,
    mode: pass.mode,
    fusion: pass.fusionSent ?? undefined,
    docIds,
  });
  const metrics = summarizeRun(ds.qrels, s.run);
  log(
    `  nDCG@10 ${metrics.ndcgAt10.toFixed(4)}, Recall@100 ${metrics.recallAt100.toFixed(4)}, MRR@10 ${metrics.mrrAt10.toFixed(4)}; p50 ${s.latencyMs.p50.toFixed(1)} ms, p95 ${s.latencyMs.p95.toFixed(1)} ms`,
  );
  return {
    result: {
      label: pass.label,
      mode: pass.mode,
      fusionSent: pass.fusionSent,
      fusion: pass.mode === 'hybrid' ? effectiveFusion(pass.fusionSent ?? {}) : null,
      metrics,
      search: {
        queries: s.queries,
        limit: LIMIT,
        latencyMs: roundSummary(s.latencyMs),
        unknownResults: s.unknownResults,
        modeReported: s.modeReported,
      },
    },
    run: s.run,
    scores: s.scores,
    modeMismatches: s.modeMismatches,
  };
}

async function runHeimdex(o: EvalOptions, ds: Dataset, workDir: string, stamp: string) {
  const dataDir = path.join(workDir, 'stack');
  mkdirSync(dataDir, { recursive: true });
  const sourceRoot = snapshotSources(workDir);
  log(
    `starting the local stack (${o.model}, ${o.dtype}, models from ${path.relative(REPO_ROOT, o.modelDir) || '.'})`,
  );
  const stack = await startStack({
    dataDir,
    env: localStackEnv(
      { dir: o.modelDir, name: o.model, dtype: o.dtype },
      {
        NEON_WS_PROXY: '',
        VECTOR_DATA_DIR: path.join(dataDir, 'vectors'),
        WRANGLER_LOG_PATH: path.join(dataDir, 'logs'),
      },
    ),
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
    const docIds = new Set(ds.docs.map((d) => d.id));
    const modes: Pass[] = [];
    for (const mode of o.modes) {
      modes.push(
        await searchPass(api, ds, assetId, docIds, {
          label: mode,
          mode,
          fusionSent: mode === 'hybrid' ? o.fusion : null,
        }),
      );
    }
    let sweep: Pass[] | null = null;
    if (o.sweepFusion) {
      sweep = [];
      const grid = sweepGrid();
      const hybrid = modes.find((p) => p.result.mode === 'hybrid');
      for (const [i, fusion] of grid.entries()) {
        const label = `hybrid k=${fusion.k} weight=${fusion.weight}`;
        const same = hybrid?.result.fusion;
        if (hybrid && same && same.k === fusion.k && same.weight === fusion.weight) {
          log(`fusion sweep ${i + 1}/${grid.length}: ${label} is the hybrid pass's setting`);
          sweep.push({ ...hybrid, result: { ...hybrid.result, label, sameAs: 'hybrid' } });
          continue;
        }
        log(`fusion sweep ${i + 1}/${grid.length}`);
        sweep.push(
          await searchPass(api, ds, assetId, docIds, { label, mode: 'hybrid', fusionSent: fusion }),
        );
      }
    }
    return { ingest: ing, modes, sweep };
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
  o: EvalOptions,
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

async function main(): Promise<void> {
  const command = commandOptions(parseOptions, USAGE);
  if (!command) return;
  const { argv, o } = command;
  const run = startRun(o.workDir, '.data/eval');
  const { startedAt, stamp, workDir } = run;
  const ds = loadDataset(o.dataset, o.split, { limitQueries: o.limitQueries });
  log(
    `${ds.name} ${ds.split}: ${ds.docs.length} documents, ${ds.queries.length} judged queries; work dir ${path.relative(REPO_ROOT, workDir)}`,
  );
  const model = modelFiles(o.modelDir, o.model, o.dtype);
  const warnings: string[] = [];

  // The reference BM25 (cheap, in process): keyword mode's yardstick, over the same terms.
  log(`reference BM25 over the same terms (eval/lib/bm25.ts, k1 ${BM25_K1}, b ${BM25_B})`);
  const bm25Started = performance.now();
  const bm25Run = new Bm25Index(ds.docs).run(ds.queries, LIMIT);
  const bm25Seconds = (performance.now() - bm25Started) / 1000;
  const bm25Metrics = summarizeRun(ds.qrels, bm25Run);
  log(
    `  nDCG@10 ${bm25Metrics.ndcgAt10.toFixed(4)}, Recall@100 ${bm25Metrics.recallAt100.toFixed(4)}, MRR@10 ${bm25Metrics.mrrAt10.toFixed(4)} (${bm25Seconds.toFixed(1)} s)`,
  );

  // sentence-transformers is dense mode's reference: pointless without a dense pass.
  const referenceWanted = o.reference && o.modes.includes('dense');
  if (o.reference && !referenceWanted)
    log('dense mode is not among --modes: the sentence-transformers reference is skipped');
  // In parallel only when asked: it shares the cores with the stack and slows the ingest.
  const parallelReference =
    referenceWanted && o.referenceParallel ? runReference(o, ds, workDir) : null;
  // Settled here so that a failure surfaces after the Heimdex side, not as an unhandled rejection.
  parallelReference?.catch(() => undefined);
  const h = await runHeimdex(o, ds, workDir, stamp.slice(0, 19));
  if (h.ingest.failed > 0)
    warnings.push(
      `${h.ingest.failed} ingest jobs FAILED: their documents are missing from Heimdex's results`,
    );
  for (const p of [...h.modes, ...(h.sweep ?? []).filter((s) => !s.result.sameAs)]) {
    const { label, mode, search, metrics } = p.result;
    if (search.unknownResults > 0)
      warnings.push(
        `${label}: ${search.unknownResults} search results named a segment that is not a corpus document`,
      );
    if (metrics.emptyResults > 0)
      warnings.push(`${label}: ${metrics.emptyResults} queries got no result from Heimdex`);
    if (p.modeMismatches > 0)
      warnings.push(
        `${label}: ${p.modeMismatches} of ${search.queries} answers did not report mode ${mode} (last reported: ${search.modeReported ?? 'none'})`,
      );
  }
  const pass = (mode: SearchMode) => h.modes.find((p) => p.result.mode === mode);
  const dense = pass('dense');
  const keyword = pass('keyword');
  const hybrid = pass('hybrid');

  let reference: { result: ReferenceResult; run: Run } | null = null;
  let referenceFailed = false;
  try {
    if (parallelReference) reference = await parallelReference;
    else if (referenceWanted) reference = await runReference(o, ds, workDir);
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
  const queryIds = ds.queries.map((q) => q.id);
  const checks = computeChecks({
    dense: dense?.result.metrics.ndcgAt10 ?? null,
    keyword: keyword?.result.metrics.ndcgAt10 ?? null,
    hybrid: hybrid?.result.metrics.ndcgAt10 ?? null,
    reference: reference?.result.metrics.ndcgAt10 ?? null,
    bm25: bm25Metrics.ndcgAt10,
  });
  for (const c of checks)
    log(`check: ${c.target}: ${c.status}${c.figures ? ` (${c.figures})` : ''}`);
  const sweep = h.sweep?.map((p) => p.result) ?? null;

  const modelSlug = `${o.model.replace(/[^A-Za-z0-9._-]+/g, '_')}${o.dtype === 'fp32' ? '' : `-${o.dtype}`}`;
  const outFile = path.resolve(
    REPO_ROOT,
    o.out ??
      path.join(
        RESULTS_DIR,
        `${startedAt.toISOString().slice(0, 10)}-${ds.name}-${modelSlug}.json`,
      ),
  );
  const result: EvalResult = {
    schema: 'heimdex-eval/2',
    ...finishedEnvelope(run, commandLine(argv), machineInfo()),
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
      limit: LIMIT,
      modes: o.modes,
      fusion: o.modes.includes('hybrid') ? o.fusion : null,
      sweepFusion: o.sweepFusion ? sweepGrid() : null,
      inFlight: o.inFlight,
      referenceRan: !o.reference
        ? 'not run (--no-reference)'
        : !referenceWanted
          ? 'not run (no dense pass)'
          : o.referenceParallel
            ? 'in parallel with the Heimdex side (the ingest shared the cores with it)'
            : 'after the Heimdex side',
      limitQueries: o.limitQueries ?? null,
      vectorStore: process.env.QDRANT_URL ? 'qdrant (QDRANT_URL)' : 'lancedb (embedded)',
      documentText: 'title + " " + text, stripped (BEIR)',
      mapping: `one asset per dataset (${ds.name}-corpus), segment_id = document id`,
    },
    heimdex: {
      ingest: {
        ...h.ingest,
        seconds: round(h.ingest.seconds),
        textsPerSecond: round(h.ingest.textsPerSecond),
        submitSeconds: round(h.ingest.submitSeconds),
      },
      modes: h.modes.map((p) => p.result),
      sweep,
      sweepBest: bestOfSweep(sweep),
    },
    reference: reference?.result ?? null,
    delta: reference && dense ? metricDelta(dense.result.metrics, reference.result.metrics) : null,
    agreement: reference && dense ? agreement(dense.scores, reference.run, queryIds) : null,
    bm25: {
      metrics: bm25Metrics,
      seconds: round(bm25Seconds),
      settings: {
        k1: BM25_K1,
        b: BM25_B,
        idf: 'Lucene: ln(1 + (N − df + 0.5) / (df + 0.5))',
        analyzer:
          'embedder/src/core/keywords.ts analyze(): NFKC, case folding, Intl.Segmenter words, Lucene English stop words, Porter stemming of ASCII words',
        terms: 'plain words (the keyword index keys each term by an organisation-keyed hash)',
        limit: LIMIT,
      },
      delta: keyword ? metricDelta(keyword.result.metrics, bm25Metrics) : null,
      agreement: keyword ? agreement(keyword.scores, bm25Run, queryIds) : null,
    },
    checks,
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
  endRun(workDir, o.keep, log);
  if (h.ingest.failed > 0 || referenceFailed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `eval failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
