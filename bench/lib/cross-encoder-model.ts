/**
 * A cross-encoder of the real shape, built without any download: BertForSequenceClassification
 * with cross-encoder/ms-marco-MiniLM-L-6-v2's exact shape (6 layers, hidden 384, 12 heads, FFN
 * 1536, BERT's uncased vocabulary of 30,522, 512 positions, pooler dense + tanh on [CLS],
 * classifier 384 → 1) and seeded random weights, under .data/bench-models/ms-marco-minilm-l6-shaped:
 *
 * - onnx/model.onnx (fp32) and onnx/model_quantized.onnx (int8, quantize_dynamic's form): inputs
 *   input_ids, attention_mask, token_type_ids → `logits` [batch, 1], as a Hub export for
 *   transformers.js (AutoModelForSequenceClassification) has them;
 * - model.safetensors: the same weights as a PyTorch state dict (Hugging Face's names), so that
 *   transformers' BertForSequenceClassification, and sentence-transformers' CrossEncoder on it,
 *   load exactly this model (scripts/models/rerank_reference.py: the parity reference);
 * - config.json (`architectures: ["BertForSequenceClassification"]`, one label, the CrossEncoder
 *   activation Sigmoid as the real model's config names it) and all-MiniLM-L6-v2's tokenizer
 *   (the real BERT uncased WordPiece of `npm run models`' cache, the same vocabulary as
 *   ms-marco-MiniLM's), so token counts and truncation are the real model's.
 *
 * No real cross-encoder weights can be had here (no registry package carries them), so this model
 * proves serving (the tokenization, truncation, batching and scores of the real code path, at the
 * real cost per token) and parity with sentence-transformers on the same weights; its scores mean
 * nothing about relevance. The quality claim waits for real weights.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { modelCacheDir, readLock } from '../../scripts/models/cache.js';
import { MINILM_L6_SHAPE, buildBertModel, randomBertWeights, seededNormal } from './bert.js';
import type { BertShape, BertWeights, Linear } from './bert.js';
import { encodeModel } from './onnx.js';
import { BENCH_MODELS_DIR } from './paths.js';

/** The folder name under BENCH_MODELS_DIR (= RERANK_MODEL_NAME with RERANK_MODEL_DIR there). */
export const CROSS_ENCODER_SHAPED = 'ms-marco-minilm-l6-shaped';

/** Bump when the generated files change, so stale builds are rebuilt (and the fixture re-made). */
const GENERATOR_VERSION = 1;
const SEED = 20251202;
const HEAD_SEED = 20251203;
const META_FILE = 'bench-model.json';
/** The model cache's BERT tokenizer (npm run models), by its folder there. */
const TOKENIZER_FOLDER = 'Xenova/all-MiniLM-L6-v2';
/**
 * The head's initialisation. BERT's N(0, 0.02) would give logits within ±0.05 of each other
 * (every sigmoid ≈ 0.5, a parity test that proves nothing); these spread the logits over a few
 * units, as a trained reranker's are, so that a score difference of 1e-3 is a real disagreement.
 */
const POOLER_STD = 0.1;
const CLASSIFIER_STD = 2;

export interface CrossEncoderModelInfo {
  name: string;
  dir: string;
  shape: BertShape;
  labels: number;
  seed: number;
  generatorVersion: number;
  /** Where the tokenizer came from (the model cache's folder and its tokenizer.json sha256). */
  tokenizer: { folder: string; sha256: string };
  files: Record<string, { bytes: number; sha256: string }>;
}

/** The shaped cross-encoder's folder (RERANK_MODEL_DIR is its parent). */
export function crossEncoderShapedDir(): string {
  return path.join(BENCH_MODELS_DIR, CROSS_ENCODER_SHAPED);
}

/**
 * Builds the model unless an up-to-date build is already there (synchronous: about 10 s on two
 * cores, once; test setups call it before starting an embedder). Needs the model cache's
 * tokenizer (`npm run models`).
 */
export function ensureCrossEncoderShaped(
  options: { force?: boolean; log?: (msg: string) => void } = {},
): CrossEncoderModelInfo {
  const dir = crossEncoderShapedDir();
  const log = options.log ?? (() => undefined);
  if (!options.force) {
    const built = readBuilt(dir);
    if (built) return built;
  }
  log(`building the ms-marco-MiniLM-shaped cross-encoder in ${dir}`);
  const started = Date.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(path.join(tmp, 'onnx'), { recursive: true });

  const shape = MINILM_L6_SHAPE;
  const files: CrossEncoderModelInfo['files'] = {};
  const write = (rel: string, data: string | Uint8Array) => {
    writeFileSync(path.join(tmp, rel), data);
    files[rel] = {
      bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength,
      sha256: createHash('sha256').update(data).digest('hex'),
    };
  };
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

  const tokenizer = cacheTokenizer();
  if (tokenizer.vocabSize !== shape.vocab) {
    throw new Error(`the cache's tokenizer has ${tokenizer.vocabSize} tokens, not ${shape.vocab}`);
  }
  write('config.json', json(crossEncoderConfig(shape)));
  write('tokenizer.json', json(tokenizer.json));
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

  const weights = crossEncoderWeights(shape);
  log('  writing model.safetensors (PyTorch names and layout, for the Python reference)');
  write('model.safetensors', safetensors(stateDict(weights)));
  log('  writing onnx/model.onnx (fp32)');
  write('onnx/model.onnx', encodeModel(buildBertModel(weights, 'fp32')));
  log('  writing onnx/model_quantized.onnx (int8, per-channel weights)');
  write(
    'onnx/model_quantized.onnx',
    encodeModel(buildBertModel(weights, 'q8', { perChannel: true })),
  );

  const info: CrossEncoderModelInfo = {
    name: CROSS_ENCODER_SHAPED,
    dir,
    shape,
    labels: 1,
    seed: SEED,
    generatorVersion: GENERATOR_VERSION,
    tokenizer: { folder: TOKENIZER_FOLDER, sha256: tokenizer.sha256 },
    files,
  };
  writeFileSync(path.join(tmp, META_FILE), json({ ...info, dir: undefined }));
  mkdirSync(path.dirname(dir), { recursive: true });
  try {
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    // Another process finished the same build first: keep its (identical) folder.
    rmSync(tmp, { recursive: true, force: true });
    const built = readBuilt(dir);
    if (!built) throw err;
    return built;
  }
  log(`  built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return info;
}

function readBuilt(dir: string): CrossEncoderModelInfo | null {
  const meta = path.join(dir, META_FILE);
  if (!existsSync(meta)) return null;
  const info = JSON.parse(readFileSync(meta, 'utf8')) as CrossEncoderModelInfo;
  const complete = Object.keys(info.files).every((f) => existsSync(path.join(dir, f)));
  return info.generatorVersion === GENERATOR_VERSION && complete ? { ...info, dir } : null;
}

/** The encoder of randomBertWeights and the classification head, both seeded. */
export function crossEncoderWeights(shape: BertShape = MINILM_L6_SHAPE): BertWeights {
  const normal = seededNormal(HEAD_SEED);
  const linear = (inDim: number, outDim: number, std: number): Linear => {
    const w = new Float32Array(inDim * outDim);
    for (let i = 0; i < w.length; i++) w[i] = normal(0, std);
    const b = new Float32Array(outDim);
    for (let i = 0; i < b.length; i++) b[i] = normal(0, 0.02);
    return { w, b, in: inDim, out: outDim };
  };
  return {
    ...randomBertWeights(shape, SEED),
    head: {
      pooler: linear(shape.hidden, shape.hidden, POOLER_STD),
      classifier: linear(shape.hidden, 1, CLASSIFIER_STD),
    },
  };
}

/** config.json as cross-encoder/ms-marco-MiniLM-L6-v2 has it (one label, CrossEncoder's Sigmoid). */
function crossEncoderConfig(shape: BertShape): Record<string, unknown> {
  return {
    _note:
      'Benchmark and parity model: cross-encoder/ms-marco-MiniLM-L6-v2 shapes with seeded random weights (heimdex bench/lib/cross-encoder-model.ts). Not a trained model: its scores mean nothing.',
    architectures: ['BertForSequenceClassification'],
    model_type: 'bert',
    attention_probs_dropout_prob: 0.1,
    classifier_dropout: null,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    hidden_size: shape.hidden,
    id2label: { '0': 'LABEL_0' },
    label2id: { LABEL_0: 0 },
    initializer_range: 0.02,
    intermediate_size: shape.ffn,
    layer_norm_eps: shape.layerNormEps,
    max_position_embeddings: shape.positions,
    num_attention_heads: shape.heads,
    num_hidden_layers: shape.layers,
    pad_token_id: 0,
    position_embedding_type: 'absolute',
    sentence_transformers: { activation_fn: 'torch.nn.modules.activation.Sigmoid' },
    torch_dtype: 'float32',
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

/**
 * The model cache's tokenizer.json (checked against the lock), with its fixed truncation and
 * padding removed: callers choose those per call, as ms-marco-MiniLM's own tokenizer.json has it.
 */
function cacheTokenizer(): { json: Record<string, unknown>; sha256: string; vocabSize: number } {
  const file = path.join(modelCacheDir(), TOKENIZER_FOLDER, 'tokenizer.json');
  if (!existsSync(file)) {
    throw new Error(
      `the cross-encoder's tokenizer comes from the model cache: ${file} is missing; run \`npm run models\` first`,
    );
  }
  const bytes = readFileSync(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const pinned = readLock().models.find((m) => m.folder === TOKENIZER_FOLDER)?.files[
    'tokenizer.json'
  ]?.sha256;
  if (pinned !== undefined && pinned !== sha256) {
    throw new Error(`${file} differs from scripts/models/models.lock.json; run \`npm run models\``);
  }
  const json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> & {
    model: { vocab: Record<string, number> };
  };
  return {
    json: { ...json, truncation: null, padding: null },
    sha256,
    vocabSize: Object.keys(json.model.vocab).length,
  };
}

/** A Linear as PyTorch stores it: weight [out, in] (the builder's is [in, out]). */
function torchLinear(prefix: string, lin: Linear): Array<[string, number[], Float32Array]> {
  const w = new Float32Array(lin.in * lin.out);
  for (let i = 0; i < lin.in; i++) {
    for (let o = 0; o < lin.out; o++) w[o * lin.in + i] = lin.w[i * lin.out + o] as number;
  }
  return [
    [`${prefix}.weight`, [lin.out, lin.in], w],
    [`${prefix}.bias`, [lin.out], lin.b],
  ];
}

/** BertForSequenceClassification's state dict (Hugging Face's names) of `weights`. */
export function stateDict(weights: BertWeights): Array<[string, number[], Float32Array]> {
  const { shape } = weights;
  const h = shape.hidden;
  if (!weights.head) throw new Error('a cross-encoder needs a classification head');
  const norm = (prefix: string, n: { g: Float32Array; b: Float32Array }) =>
    [
      [`${prefix}.weight`, [h], n.g],
      [`${prefix}.bias`, [h], n.b],
    ] as Array<[string, number[], Float32Array]>;
  const out: Array<[string, number[], Float32Array]> = [
    ['bert.embeddings.word_embeddings.weight', [shape.vocab, h], weights.word],
    ['bert.embeddings.position_embeddings.weight', [shape.positions, h], weights.position],
    ['bert.embeddings.token_type_embeddings.weight', [shape.typeVocab, h], weights.tokenType],
    ...norm('bert.embeddings.LayerNorm', weights.embNorm),
  ];
  weights.layers.forEach((layer, i) => {
    const p = `bert.encoder.layer.${i}`;
    out.push(
      ...torchLinear(`${p}.attention.self.query`, layer.q),
      ...torchLinear(`${p}.attention.self.key`, layer.k),
      ...torchLinear(`${p}.attention.self.value`, layer.v),
      ...torchLinear(`${p}.attention.output.dense`, layer.o),
      ...norm(`${p}.attention.output.LayerNorm`, layer.ln1),
      ...torchLinear(`${p}.intermediate.dense`, layer.ffn1),
      ...torchLinear(`${p}.output.dense`, layer.ffn2),
      ...norm(`${p}.output.LayerNorm`, layer.ln2),
    );
  });
  out.push(
    ...torchLinear('bert.pooler.dense', weights.head.pooler),
    ...torchLinear('classifier', weights.head.classifier),
  );
  return out;
}

/**
 * A safetensors file of F32 tensors: an 8-byte little-endian header length, the JSON header
 * (name → dtype, shape, byte range; padded with spaces to 8 bytes), then the raw tensors.
 */
export function safetensors(tensors: Array<[string, number[], Float32Array]>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, dims, data] of tensors) {
    if (dims.reduce((a, b) => a * b, 1) !== data.length) {
      throw new Error(`tensor ${name}: dims [${dims.join(', ')}] need ${data.length} values`);
    }
    header[name] = { dtype: 'F32', shape: dims, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let head = JSON.stringify(header);
  head += ' '.repeat((8 - ((8 + Buffer.byteLength(head)) % 8)) % 8);
  const headBytes = Buffer.from(head, 'utf8');
  const out = Buffer.alloc(8 + headBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headBytes.length), 0);
  headBytes.copy(out, 8);
  let at = 8 + headBytes.length;
  for (const [, , data] of tensors) {
    Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, at);
    at += data.byteLength;
  }
  return out;
}
