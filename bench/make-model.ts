/**
 * `npm run bench:model [-- --force] [-- --verify] [-- --cross-encoder]`: builds the MiniLM-shaped bench model under
 * .data/bench-models/minilm-l6-shaped: a BERT encoder with all-MiniLM-L6-v2's exact shapes and
 * seeded random weights, in fp32 (onnx/model.onnx) and int8 dynamic quantisation
 * (onnx/model_quantized.onnx), with a WordPiece tokenizer derived from potion-base-2M's
 * vocabulary. It loads through transformers.js exactly like a Hub model. Never downloads.
 * `--cross-encoder` builds the ms-marco-MiniLM-shaped reranker instead
 * (.data/bench-models/ms-marco-minilm-l6-shaped, bench/lib/cross-encoder-model.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MINILM_L6_SHAPE, buildBertModel, randomBertWeights } from './lib/bert.js';
import type { BertShape } from './lib/bert.js';
import { cosine } from '../embedder/src/core/vector.js';
import { ensureCrossEncoderShaped } from './lib/cross-encoder-model.js';
import { encodeModel } from './lib/onnx.js';
import { BENCH_MODELS_DIR, MINILM_SHAPED, POTION, SHARED_MODELS_DIR } from './lib/paths.js';

/** Bump when the generated files change, so stale builds are rebuilt. */
const GENERATOR_VERSION = 3;
const SEED = 20240607;
const META_FILE = 'bench-model.json';

export interface BenchModelInfo {
  name: string;
  dir: string;
  shape: BertShape;
  seed: number;
  generatorVersion: number;
  perChannel: boolean;
  files: Record<string, { bytes: number; sha256: string }>;
}

/** Builds the model unless an up-to-date build is already there; returns its description. */
export async function ensureMinilmShaped(
  options: { force?: boolean; log?: (msg: string) => void } = {},
): Promise<BenchModelInfo> {
  // Where the MiniLM-shaped model lives (EMBEDDING_MODEL_DIR is its parent).
  const dir = path.join(BENCH_MODELS_DIR, MINILM_SHAPED);
  const log = options.log ?? (() => undefined);
  const meta = path.join(dir, META_FILE);
  if (!options.force && existsSync(meta)) {
    const info = JSON.parse(readFileSync(meta, 'utf8')) as BenchModelInfo;
    const complete = Object.keys(info.files).every((f) => existsSync(path.join(dir, f)));
    if (info.generatorVersion === GENERATOR_VERSION && complete) return { ...info, dir };
  }
  log(`building the MiniLM-shaped bench model in ${dir}`);
  const started = Date.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'onnx'), { recursive: true });

  const shape = MINILM_L6_SHAPE;
  const files: BenchModelInfo['files'] = {};
  const write = (rel: string, data: string | Uint8Array) => {
    writeFileSync(path.join(tmp, rel), data);
    files[rel] = {
      bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength,
      sha256: createHash('sha256').update(data).digest('hex'),
    };
  };
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

  write('config.json', json(bertConfig(shape)));
  write('tokenizer.json', json(bertTokenizer(shape.vocab)));
  write('tokenizer_config.json', json(tokenizerConfig()));
  write(
    'special_tokens_map.json',
    json({
      cls_token: '[CLS]',
      mask_token: '[MASK]',
      pad_token: '[PAD]',
      sep_token: '[SEP]',
      unk_token: '[UNK]',
    }),
  );

  const weights = randomBertWeights(shape, SEED);
  log('  writing onnx/model.onnx (fp32)');
  write('onnx/model.onnx', encodeModel(buildBertModel(weights, 'fp32')));
  log('  writing onnx/model_quantized.onnx (int8, per-channel weights)');
  write(
    'onnx/model_quantized.onnx',
    encodeModel(buildBertModel(weights, 'q8', { perChannel: true })),
  );

  const info: BenchModelInfo = {
    name: MINILM_SHAPED,
    dir,
    shape,
    seed: SEED,
    generatorVersion: GENERATOR_VERSION,
    perChannel: true,
    files,
  };
  writeFileSync(path.join(tmp, META_FILE), json({ ...info, dir: undefined }));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  renameSync(tmp, dir);
  log(`  built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return info;
}

/** config.json as a Hub BERT export has it (transformers.js reads model_type and the sizes). */
function bertConfig(shape: BertShape): Record<string, unknown> {
  return {
    _note:
      'Benchmark model: all-MiniLM-L6-v2 shapes with seeded random weights (heimdex bench/make-model.ts). Not a trained model.',
    architectures: ['BertModel'],
    model_type: 'bert',
    attention_probs_dropout_prob: 0.1,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    hidden_size: shape.hidden,
    initializer_range: 0.02,
    intermediate_size: shape.ffn,
    layer_norm_eps: shape.layerNormEps,
    max_position_embeddings: shape.positions,
    num_attention_heads: shape.heads,
    num_hidden_layers: shape.layers,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    type_vocab_size: shape.typeVocab,
    vocab_size: shape.vocab,
  };
}

function tokenizerConfig(): Record<string, unknown> {
  return {
    clean_up_tokenization_spaces: true,
    cls_token: '[CLS]',
    do_basic_tokenize: true,
    do_lower_case: true,
    mask_token: '[MASK]',
    model_max_length: 512,
    never_split: null,
    pad_token: '[PAD]',
    sep_token: '[SEP]',
    strip_accents: null,
    tokenize_chinese_chars: true,
    tokenizer_class: 'BertTokenizer',
    unk_token: '[UNK]',
  };
}

interface TokenizerJson {
  added_tokens: unknown[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  decoder: unknown;
  model: { type: string; vocab: Record<string, number>; [k: string]: unknown };
  [k: string]: unknown;
}

/**
 * potion-base-2M's WordPiece tokenizer (uncased BERT vocabulary), padded with `[unusedN]` entries
 * to `vocabSize`, with BERT's [CLS] … [SEP] template as post-processor.
 */
function bertTokenizer(vocabSize: number): TokenizerJson {
  const source = JSON.parse(
    readFileSync(path.join(SHARED_MODELS_DIR, POTION, 'tokenizer.json'), 'utf8'),
  ) as TokenizerJson;
  if (source.model.type !== 'WordPiece') {
    throw new Error(`expected a WordPiece tokenizer in ${POTION}, found ${source.model.type}`);
  }
  const vocab: Record<string, number> = { ...source.model.vocab };
  const ids = new Set(Object.values(vocab));
  if (ids.size !== Object.keys(vocab).length || Math.max(...ids) !== ids.size - 1) {
    throw new Error(`${POTION}'s vocabulary ids are not 0..n-1`);
  }
  for (let id = ids.size, n = 0; id < vocabSize; id++, n++) vocab[`[unused${n}]`] = id;
  const cls = vocab['[CLS]'];
  const sep = vocab['[SEP]'];
  if (cls === undefined || sep === undefined) throw new Error(`${POTION} has no [CLS]/[SEP]`);
  return {
    ...source,
    truncation: null,
    padding: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [cls], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [sep], tokens: ['[SEP]'] },
      },
    },
    model: { ...source.model, vocab },
  };
}

export interface VerifyReport {
  dims: number[];
  fp32VsQ8Cosine: number[];
  maxPairCosineFp32: number;
  ok: boolean;
  problems: string[];
}

const VERIFY_TEXTS = [
  'A large furry dog is running in the park',
  'The quarterly report shows revenue growth in the northern region',
  'Quantum computers use qubits that can be in superposition',
  'She baked bread with rosemary and olive oil on Sunday morning',
];

/**
 * Loads the built model through transformers.js in fp32 and q8 (exactly as the embedder does)
 * and checks: [n, hidden] outputs, finite values, distinct vectors for distinct texts, and
 * fp32 vs q8 cosine > 0.9 per text.
 */
export async function verifyMinilmShaped(): Promise<VerifyReport> {
  const { env, pipeline } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${BENCH_MODELS_DIR}/`;
  const problems: string[] = [];
  const vectors: Record<'fp32' | 'q8', Float32Array[]> = { fp32: [], q8: [] };
  let dims: number[] = [];
  for (const dtype of ['fp32', 'q8'] as const) {
    const extractor = await pipeline('feature-extraction', MINILM_SHAPED, { dtype });
    const out = await extractor(VERIFY_TEXTS, { pooling: 'mean', normalize: true });
    dims = out.dims;
    const [rows, dim] = out.dims as [number, number];
    const data = out.data as Float32Array;
    if (rows !== VERIFY_TEXTS.length || dim !== MINILM_L6_SHAPE.hidden) {
      problems.push(`${dtype}: output dims [${out.dims.join(', ')}]`);
    }
    if (!data.every(Number.isFinite)) problems.push(`${dtype}: non-finite values`);
    for (let r = 0; r < rows; r++) vectors[dtype].push(data.slice(r * dim, (r + 1) * dim));
    await extractor.dispose();
  }
  let maxPair = -1;
  for (let i = 0; i < vectors.fp32.length; i++) {
    for (let j = i + 1; j < vectors.fp32.length; j++) {
      maxPair = Math.max(maxPair, cosine(vectors.fp32[i]!, vectors.fp32[j]!));
    }
  }
  if (maxPair > 0.999) problems.push(`fp32 vectors of distinct texts are identical (${maxPair})`);
  const cross = vectors.fp32.map((v, i) => cosine(v, vectors.q8[i]!));
  if (cross.some((c) => !(c > 0.9))) {
    problems.push(`fp32 vs q8 cosine below 0.9: ${cross.map((c) => c.toFixed(4)).join(', ')}`);
  }
  return {
    dims,
    fp32VsQ8Cosine: cross,
    maxPairCosineFp32: maxPair,
    ok: problems.length === 0,
    problems,
  };
}

async function main(): Promise<void> {
  const args = new Set(process.argv.slice(2));
  const known = ['--force', '--verify', '--cross-encoder'];
  const unknown = [...args].filter((a) => !known.includes(a));
  if (unknown.length > 0) {
    throw new Error(
      `unknown option(s) ${unknown.join(' ')}; usage: bench:model [--force] [--verify] [--cross-encoder]`,
    );
  }
  if (args.has('--cross-encoder')) {
    // The reranker of the real shape (bench/lib/cross-encoder-model.ts), instead of the encoder.
    const built = ensureCrossEncoderShaped({
      force: args.has('--force'),
      log: (m) => process.stderr.write(`${m}\n`),
    });
    for (const [file, f] of Object.entries(built.files)) {
      process.stderr.write(
        `  ${file}  ${(f.bytes / 1e6).toFixed(1)} MB  sha256 ${f.sha256.slice(0, 16)}…\n`,
      );
    }
    return;
  }
  const info = await ensureMinilmShaped({
    force: args.has('--force'),
    log: (m) => process.stderr.write(`${m}\n`),
  });
  for (const [file, f] of Object.entries(info.files)) {
    process.stderr.write(
      `  ${file}  ${(f.bytes / 1e6).toFixed(1)} MB  sha256 ${f.sha256.slice(0, 16)}…\n`,
    );
  }
  if (args.has('--verify')) {
    const report = await verifyMinilmShaped();
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    if (!report.ok)
      throw new Error(`bench model verification failed: ${report.problems.join('; ')}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
