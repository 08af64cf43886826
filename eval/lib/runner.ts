/**
 * What every eval script does around its measurements (`npm run eval`, eval/needle.ts): a timed
 * log, the local stack started on a snapshot of the sources and stopped on a signal, one
 * organisation (and token) per ingest, the command line and the model files recorded, and the
 * results written as Prettier writes them.
 */
import { createHash } from 'node:crypto';
import { cpSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import { finishedEnvelope, shellQuote } from '../../bench/lib/envelope.js';
import type { RunEnvelope } from '../../bench/lib/envelope.js';
import { machineInfo } from '../../bench/lib/machine.js';
import { modelSpec } from '../../embedder/src/core/registry.js';
import { localStackEnv } from '../../scripts/lib/local-env.js';
import { startStack } from '../../scripts/lib/stack.js';
import type { Stack } from '../../scripts/lib/stack.js';
import { mintDevToken } from '../../scripts/lib/token.js';
import { derivedWranglerConfig } from '../../test/helpers/stack.js';
import type { Api } from './heimdex.js';
import type { CommonOptions } from './options.js';
import { REPO_ROOT } from './python.js';

export type Log = (message: string) => void;

/** A log to stderr, each line stamped `[name m:ss]` with the time since the script started. */
export function createLog(name: string): Log {
  const started = performance.now();
  return (message) => {
    const s = (performance.now() - started) / 1000;
    const stamp = `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
    process.stderr.write(`[${name} ${stamp}] ${message}\n`);
  };
}

/** Stops what is running (the stack) when the run is interrupted. */
let onSignal: (() => Promise<void>) | null = null;
let signalsHandled = false;

function handleSignals(name: string): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`${name}: ${signal}, stopping\n`);
      void (onSignal?.() ?? Promise.resolve()).finally(() => process.exit(130));
    });
  }
}

/** `npm run eval -- …` or `npx tsx eval/needle.ts …` as typed, with the model's environment. */
export function commandLine(script: string, argv: string[]): string {
  const quote = shellQuote;
  const env = ['EMBEDDING_MODEL_DIR', 'EMBEDDING_MODEL_NAME', 'EMBEDDING_DTYPE', 'QDRANT_URL']
    .filter((k) => process.env[k])
    .map((k) => `${k}=${k === 'QDRANT_URL' ? '<set>' : quote(process.env[k] ?? '')}`);
  const args = argv.map(quote);
  const npm = script.startsWith('npm ');
  return [...env, script, ...(npm && args.length > 0 ? ['--'] : []), ...args].join(' ');
}

/** The envelope of a run that started at `startedAt` and finishes now. */
export function runEnvelope(command: string, startedAt: Date, loadAtStart: number[]): RunEnvelope {
  return finishedEnvelope({ startedAt, loadAtStart }, command, machineInfo());
}

/** Checksums of the model files the embedder loads (config, tokenizer, the dtype's ONNX file). */
export function modelFiles(modelDir: string, name: string, dtype: string) {
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
 * Model tokens of text the model's window holds: its registry window less the two special tokens
 * every registry model adds ([CLS]/[SEP] or <s>/</s>); null for a model outside the registry.
 */
export function textWindow(model: string): number | null {
  const { maxTokens } = modelSpec(model);
  return maxTokens === null ? null : maxTokens - 2;
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

/**
 * The local stack (scripts/lib/stack.ts: embedded PostgreSQL, the embedder serving `o.model`,
 * wrangler dev on a snapshot of the sources) under `workDir`, stopped on SIGINT/SIGTERM. The
 * caller stops it (`stopEvalStack`).
 */
export async function startEvalStack(
  name: string,
  o: Pick<CommonOptions, 'model' | 'dtype' | 'modelDir'>,
  workDir: string,
  log: Log,
): Promise<Stack> {
  handleSignals(name);
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
  return stack;
}

export async function stopEvalStack(stack: Stack, log: Log): Promise<void> {
  log('stopping the local stack');
  onSignal = null;
  await stack.stop();
}

/** The API as organisation `org` (a dev token of a day), logging to `log`. */
export async function orgApi(stack: Stack, org: string, log: Log): Promise<Api> {
  const token = await mintDevToken({ secret: stack.devJwtSecret, org, ttlSeconds: 24 * 3600 });
  return { url: stack.apiUrl, token, log };
}

/**
 * Writes the result as JSON to `jsonFile` and `markdown` beside it (.md), both as Prettier writes
 * them (so that `npm run lint` passes with results committed), and prints the Markdown.
 */
export async function publishResults(
  jsonFile: string,
  result: unknown,
  markdown: string,
  log: Log,
): Promise<void> {
  mkdirSync(path.dirname(jsonFile), { recursive: true });
  const pretty = async (text: string, filepath: string) =>
    format(text, { ...(await resolveConfig(filepath)), filepath });
  writeFileSync(jsonFile, await pretty(JSON.stringify(result, null, 2), jsonFile));
  const mdFile = jsonFile.replace(/\.json$/, '.md');
  writeFileSync(mdFile, await pretty(markdown, mdFile));
  process.stdout.write(`${markdown}\n`);
  log(`results: ${path.relative(REPO_ROOT, jsonFile)} and ${path.basename(mdFile)}`);
}
