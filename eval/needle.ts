/**
 * `npx tsx eval/needle.ts [options]`: does chunking find what lies past the model's window?
 *
 * Builds 100 long texts from the dataset's abstracts (eval/lib/needle.ts: 600+ tokens each, one
 * made-up needle sentence inserted at a sentence boundary after 400+ tokens, well past the
 * 254-token window of all-MiniLM-L6-v2), starts the local stack as `npm run eval` does, ingests
 * the texts twice, into two organisations: with `chunking: "truncate"` and with the server's
 * default chunking. Then it runs one paraphrase query per needle in each of `--modes` (dense and
 * hybrid) against each, and reports per organisation and mode how often the needle's text comes
 * first (and the rank distribution), and whether the first result's chunk (`chunk_start`,
 * `chunk_end`) holds the needle. The acceptance: first every time with chunking, not without it.
 * Results in eval/results/<date>-needle.{json,md}; logs and results hold ids and numbers, the
 * made-up needles and queries, never a corpus text.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { endRun, startRun } from '../bench/lib/envelope.js';
import { roundSummary, summarize } from '../bench/lib/stats.js';
import type { SearchMode } from '../contract/internal.js';
import { modelSpec } from '../embedder/src/core/registry.js';
import { parseChunking, settingRecord } from './lib/chunking.js';
import { loadCorpus } from './lib/dataset.js';
import { ingest, searchOnce } from './lib/heimdex.js';
import type { Api } from './lib/heimdex.js';
import {
  MAX_NEEDLES,
  MIN_TEXT_TOKENS,
  NEEDLE_AFTER_TOKENS,
  buildNeedleTexts,
} from './lib/needle.js';
import { needleOutcome, summarizeNeedles } from './lib/needle.js';
import type { NeedleOutcome, NeedleText } from './lib/needle.js';
import { needleChecks, renderNeedle } from './lib/needle-report.js';
import type { NeedleResult, NeedleRun } from './lib/needle-report.js';
import {
  COMMON_USAGE,
  commonOptions,
  commonValues,
  parseModes,
  positiveInt,
} from './lib/options.js';
import { REPO_ROOT } from './lib/python.js';
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

const USAGE = `npx tsx eval/needle.ts [options]

  --texts N              long texts, one needle and one query each (1-${MAX_NEEDLES}; default ${MAX_NEEDLES})
  --modes LIST           search modes, comma-separated (default dense,hybrid)
  --out FILE             results JSON (default eval/results/<date>-needle.json)
${COMMON_USAGE}`;

/** Without chunking, then with the server's default. */
const SETTINGS = [parseChunking('truncate'), parseChunking('default')];
const ASSET = 'needle';

const log = createLog('needle');

function parseNeedleOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...commonOptions(process.env),
      texts: { type: 'string', default: String(MAX_NEEDLES) },
      modes: { type: 'string', default: 'dense,hybrid' },
    },
  });
  const texts = positiveInt(values.texts, 'texts') ?? MAX_NEEDLES;
  if (texts > MAX_NEEDLES) throw new Error(`--texts must be at most ${MAX_NEEDLES}`);
  return { ...commonValues(values), texts, modes: parseModes(values.modes) };
}

/** The tokenizer the embedder loads for `model`, from `modelDir`: counts text tokens. */
async function tokenCounter(modelDir: string, model: string): Promise<(text: string) => number> {
  env.allowRemoteModels = false;
  env.localModelPath = `${modelDir}/`;
  const tokenizer = await AutoTokenizer.from_pretrained(modelSpec(model).hubId ?? model);
  return (text) => tokenizer.encode(text, { add_special_tokens: false }).length;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o = parseNeedleOptions(argv);
  if (o.help) {
    process.stdout.write(USAGE);
    return;
  }
  const { startedAt, loadAtStart, stamp, workDir } = startRun(o.workDir, '.data/eval');
  const corpus = loadCorpus(o.dataset);
  const dataset = path.basename(o.dataset);
  const window = textWindow(o.model);
  const texts: NeedleText[] = buildNeedleTexts(
    corpus.docs,
    await tokenCounter(o.modelDir, o.model),
    { count: o.texts },
  );
  log(
    `${texts.length} texts from ${dataset}: needles after ${Math.min(...texts.map((t) => t.tokensBefore))}+ tokens (window ${window ?? '?'}), texts of ${Math.min(...texts.map((t) => t.tokens))}+ tokens`,
  );
  const warnings: string[] = [];
  if (window !== null && NEEDLE_AFTER_TOKENS <= window)
    warnings.push(
      `the needles come after ${NEEDLE_AFTER_TOKENS} tokens, within the ${window}-token window`,
    );

  const stack = await startEvalStack('needle', o, workDir, log);
  const runs: NeedleRun[] = [];
  try {
    for (const setting of SETTINGS) {
      const org = `needle-${stamp.slice(0, 19)}-${setting.slug}`;
      const api = await orgApi(stack, org, log);
      log(`chunking ${setting.label}: ingesting ${texts.length} texts into organisation ${org}`);
      const ing = await ingest(
        api,
        texts.map((t) => ({ id: t.id, text: t.text })),
        {
          assetId: ASSET,
          inFlight: o.inFlight,
          timeoutSeconds: o.timeoutMinutes * 60,
          chunking: setting.request,
          window,
        },
      );
      if (ing.failed > 0)
        warnings.push(`chunking ${setting.label}: ${ing.failed} ingest jobs FAILED`);
      const modes: NeedleRun['modes'] = [];
      for (const mode of o.modes) modes.push(await searchNeedles(api, texts, mode, setting.label));
      runs.push({
        chunking: settingRecord(setting),
        org,
        ingest: ing,
        modes,
      });
    }
  } finally {
    await stopEvalStack(stack, log);
  }

  const checks = needleChecks(runs);
  for (const c of checks) log(`check: ${c.target}: ${c.status} (${c.figures})`);
  const model = modelFiles(o.modelDir, o.model, o.dtype);
  const result: NeedleResult = {
    ...runEnvelope(commandLine('npx tsx eval/needle.ts', argv), startedAt, loadAtStart),
    schema: 'heimdex-needle/1',
    dataset: { name: dataset, corpus: corpus.file },
    model: {
      name: o.model,
      dir: path.relative(REPO_ROOT, model.folder),
      dtype: o.dtype,
      files: model.files,
    },
    settings: {
      texts: texts.length,
      needleAfterTokens: NEEDLE_AFTER_TOKENS,
      minTextTokens: MIN_TEXT_TOKENS,
      window,
      limit: texts.length,
      modes: o.modes,
    },
    texts: texts.map(({ text, ...t }) => ({ ...t, chars: text.length })),
    runs,
    checks,
    warnings,
  };
  const outFile = path.resolve(
    REPO_ROOT,
    o.out ??
      path.join(REPO_ROOT, 'eval/results', `${startedAt.toISOString().slice(0, 10)}-needle.json`),
  );
  await publishResults(outFile, result, renderNeedle(result), log);
  endRun(workDir, o.keep, log);
  if (warnings.length > 0 || checks.some((c) => c.status !== 'met')) process.exitCode = 1;
}

/** Every needle's query in `mode`: where its text ranks among all the texts, and its first chunk. */
async function searchNeedles(
  api: Api,
  texts: readonly NeedleText[],
  mode: SearchMode,
  label: string,
): Promise<NeedleRun['modes'][number]> {
  log(`chunking ${label}, ${mode}: ${texts.length} queries through POST /vectors/search`);
  const outcomes: NeedleOutcome[] = [];
  const latencies: number[] = [];
  for (const t of texts) {
    const { answer, ms } = await searchOnce(
      api,
      { query_text: t.query, limit: texts.length, asset_id: ASSET, mode },
      `${t.id} ${mode}`,
    );
    latencies.push(ms);
    outcomes.push(needleOutcome(t, answer.results));
  }
  const summary = summarizeNeedles(outcomes);
  log(
    `  rank 1: ${summary.rank1}/${summary.queries}, MRR ${summary.mrr.toFixed(4)}; rank-1 chunks holding the needle whole: ${summary.coverage.whole}`,
  );
  return { mode, summary, latencyMs: roundSummary(summarize(latencies)), outcomes };
}

main().catch((err: unknown) => {
  process.stderr.write(
    `needle failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
