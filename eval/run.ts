/**
 * `npm run eval [-- options]`: retrieval quality through Heimdex's public API, side by side with the
 * same model through sentence-transformers (eval/reference.py).
 *
 * Starts the local stack (scripts/lib/stack.ts: embedded PostgreSQL, the embedder, wrangler dev),
 * ingests a BEIR-format dataset through POST /vectors/embed/batch and the queue once per
 * `--chunking` setting (default: the server's default, windows; `truncate,default` compares
 * truncation with it), each into an organisation of its own, then runs the split's queries
 * through POST /vectors/search against each in each of `--modes` (dense, keyword, hybrid; with
 * `--sweep-fusion`, hybrid over a grid of fusion settings too), and reports per setting and pass
 * nDCG@10, Recall@100 and MRR@10 (computed as pytrec_eval computes them) and search p50/p95, the
 * deltas against the first setting, with ingest texts/s and chunks/s and the corpus's texts over
 * the model's window, into eval/results/<date>-<dataset>-<model>.{json,md}. Two references: an in-process
 * BM25 over the same terms as the keyword index (eval/lib/bm25.ts; keyword mode's), and
 * sentence-transformers encoding the same texts and searching exactly in numpy (dense mode's). The
 * report judges issue 15's quality targets (eval/lib/checks.ts). Nothing it logs or writes holds a
 * document's or a query's text: ids and numbers only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { commandOptions, endRun, startRun } from '../bench/lib/envelope.js';
import { round, roundSummary } from '../bench/lib/stats.js';
import type { SearchMode } from '../contract/internal.js';
import { BM25_B, BM25_K1 } from '../embedder/src/core/keywords.js';
import type { Stack } from '../scripts/lib/stack.js';
import { settingRecord } from './lib/chunking.js';
import type { ChunkingSetting } from './lib/chunking.js';
import { loadDataset } from './lib/dataset.js';
import type { Dataset } from './lib/dataset.js';
import { ingest, searchAll } from './lib/heimdex.js';
import type { Api, IngestResult } from './lib/heimdex.js';
import { Bm25Index } from './lib/bm25.js';
import { agreement, computeChecks, metricDelta } from './lib/checks.js';
import { summarizeRun } from './lib/metrics.js';
import type { MetricSummary, Run } from './lib/metrics.js';
import { USAGE, effectiveFusion, parseOptions, sweepGrid } from './lib/options.js';
import type { EvalOptions, FusionSettings } from './lib/options.js';
import { REPO_ROOT, ensurePython, runPython } from './lib/python.js';
import { bestOfSweep, compareChunking, renderEval } from './lib/report.js';
import type { EvalResult, ModeRun, ReferenceResult, SettingRun } from './lib/report.js';
import {
  commandLine,
  createLog,
  modelFiles,
  orgApi,
  publishResults,
  runEnvelope,
  startEvalStack,
  stopEvalStack,
  textWindow,
} from './lib/runner.js';

const RESULTS_DIR = path.join(REPO_ROOT, 'eval/results');
/** Results per query (the metrics need 100). */
const LIMIT = 100;

const log = createLog('eval');

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
  /** What the log names before the pass (the chunking setting, when several run). */
  where: string,
): Promise<Pass> {
  log(
    `${where}${pass.label}: ${ds.queries.length} queries through POST /vectors/search (limit ${LIMIT})`,
  );
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

/** One chunking setting's side: its organisation's ingest and its passes. */
interface SettingPasses {
  setting: ChunkingSetting;
  org: string;
  ingest: IngestResult;
  modes: Pass[];
  sweep: Pass[] | null;
}

/** Ingests the corpus under `setting` into a fresh organisation, then runs every pass on it. */
async function runSetting(
  o: EvalOptions,
  ds: Dataset,
  stack: Stack,
  setting: ChunkingSetting,
  org: string,
): Promise<SettingPasses> {
  const api = await orgApi(stack, org, log);
  const assetId = `${ds.name}-corpus`;
  log(
    `chunking ${setting.label}: ingesting ${ds.docs.length} documents into organisation ${org} through POST /vectors/embed/batch (${o.inFlight} requests in flight)`,
  );
  const ing = await ingest(api, ds.docs, {
    assetId,
    inFlight: o.inFlight,
    timeoutSeconds: o.timeoutMinutes * 60,
    chunking: setting.request,
    window: textWindow(o.model),
  });
  const c = ing.chunks;
  log(
    `  ${ing.textsPerSecond.toFixed(1)} texts/s, ${ing.chunksPerSecond.toFixed(1)} chunks/s (${ing.seconds.toFixed(1)} s); ${ing.succeeded} succeeded, ${ing.failed} failed; ` +
      `${c.chunks} chunks, ${c.overWindow ?? '?'} texts over the window, ${c.truncated} truncated`,
  );
  const docIds = new Set(ds.docs.map((d) => d.id));
  const where = o.chunking.length > 1 ? `chunking ${setting.label}, ` : '';
  const pass = (p: Parameters<typeof searchPass>[4]) =>
    searchPass(api, ds, assetId, docIds, p, where);
  const modes: Pass[] = [];
  for (const mode of o.modes) {
    modes.push(await pass({ label: mode, mode, fusionSent: mode === 'hybrid' ? o.fusion : null }));
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
      sweep.push(await pass({ label, mode: 'hybrid', fusionSent: fusion }));
    }
  }
  return { setting, org, ingest: ing, modes, sweep };
}

/** One stack; each chunking setting in turn, each in an organisation of its own. */
async function runHeimdex(
  o: EvalOptions,
  ds: Dataset,
  workDir: string,
  stamp: string,
): Promise<SettingPasses[]> {
  const stack = await startEvalStack('eval', o, workDir, log);
  try {
    const out: SettingPasses[] = [];
    for (const setting of o.chunking) {
      const org = `eval-${ds.name}-${stamp}-${setting.slug}`.slice(0, 128);
      out.push(await runSetting(o, ds, stack, setting, org));
    }
    return out;
  } finally {
    await stopEvalStack(stack, log);
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
  const { startedAt, loadAtStart, stamp, workDir } = startRun(o.workDir, '.data/eval');
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
  const multi = h.length > 1;
  for (const run of h) {
    const where = multi ? `chunking ${run.setting.label}, ` : '';
    if (run.ingest.failed > 0)
      warnings.push(
        `${where}${run.ingest.failed} ingest jobs FAILED: their documents are missing from Heimdex's results`,
      );
    if (run.ingest.chunks.chunkCountMissing > 0)
      warnings.push(
        `${where}${run.ingest.chunks.chunkCountMissing} job results carry no chunk_count (counted as one chunk each)`,
      );
    for (const p of [...run.modes, ...(run.sweep ?? []).filter((s) => !s.result.sameAs)]) {
      const { mode, search, metrics } = p.result;
      const label = `${where}${p.result.label}`;
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
  }

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
  const settingRuns: SettingRun[] = h.map((run) => {
    const pass = (mode: SearchMode) => run.modes.find((p) => p.result.mode === mode);
    const dense = pass('dense');
    const keyword = pass('keyword');
    const hybrid = pass('hybrid');
    const checks = computeChecks({
      dense: dense?.result.metrics.ndcgAt10 ?? null,
      keyword: keyword?.result.metrics.ndcgAt10 ?? null,
      hybrid: hybrid?.result.metrics.ndcgAt10 ?? null,
      reference: reference?.result.metrics.ndcgAt10 ?? null,
      bm25: bm25Metrics.ndcgAt10,
    });
    for (const c of checks)
      log(
        `check${multi ? ` (chunking ${run.setting.label})` : ''}: ${c.target}: ${c.status}${c.figures ? ` (${c.figures})` : ''}`,
      );
    const sweep = run.sweep?.map((p) => p.result) ?? null;
    return {
      chunking: settingRecord(run.setting),
      org: run.org,
      ingest: run.ingest,
      modes: run.modes.map((p) => p.result),
      sweep,
      sweepBest: bestOfSweep(sweep),
      vsReference:
        reference && dense
          ? {
              delta: metricDelta(dense.result.metrics, reference.result.metrics),
              agreement: agreement(dense.scores, reference.run, queryIds),
            }
          : null,
      vsBm25: keyword
        ? {
            delta: metricDelta(keyword.result.metrics, bm25Metrics),
            agreement: agreement(keyword.scores, bm25Run, queryIds),
          }
        : null,
      checks,
    };
  });
  const comparison = compareChunking(settingRuns);
  for (const c of comparison?.checks ?? []) log(`check: ${c.target}: ${c.status} (${c.figures})`);

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
    ...runEnvelope(commandLine('npm run eval', argv), startedAt, loadAtStart),
    schema: 'heimdex-eval/3',
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
      chunking: o.chunking.map((c) => c.label),
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
      mapping: `one organisation per chunking setting, one asset per dataset (${ds.name}-corpus), segment_id = document id; search results one per segment (the API's default grouping)`,
    },
    heimdex: settingRuns,
    chunking: comparison,
    reference: reference?.result ?? null,
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
    },
    warnings,
  };
  await publishResults(outFile, result, renderEval(result), log);
  endRun(workDir, o.keep, log);
  if (h.some((run) => run.ingest.failed > 0) || referenceFailed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(
    `eval failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
