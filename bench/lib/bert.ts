/**
 * A BERT encoder as an ONNX graph, in the layout transformers.js expects of a Hub export
 * (inputs `input_ids`, `attention_mask`, `token_type_ids` → `last_hidden_state`), with seeded
 * random weights. In fp32, or int8 the way onnxruntime's `quantize_dynamic` writes it: every
 * weight MatMul becomes DynamicQuantizeLinear → MatMulInteger → Cast → Mul(a_scale × b_scale),
 * and embedding tables are int8 with a DequantizeLinear after the Gather; QuantOptions adds what
 * the real all-MiniLM-L6-v2 needs to stay within 0.99 cosine of fp32 (per-token activation
 * ranges, SmoothQuant factors, uint8 weights: scripts/models/fetch.ts, embedder/test/parity.test.ts).
 */
import {
  DataType,
  GraphBuilder,
  buildModel,
  floatTensor,
  int64Tensor,
  int8Tensor,
  valueInfo,
} from './onnx.js';
import type { DataTypeId, ModelProto, TensorProto } from './onnx.js';

/** TensorProto.DataType UINT8 (not among onnx.ts's DataType constants). */
const UINT8 = 2 as DataTypeId;

function uint8Tensor(name: string, dims: number[], data: Uint8Array): TensorProto {
  if (dims.reduce((a, b) => a * b, 1) !== data.length) {
    throw new Error(`tensor ${name}: dims [${dims.join(', ')}] need ${data.length} values`);
  }
  return { name, dims, data_type: UINT8, raw_data: data };
}

/** int8 q as uint8 with zero point 128 (q + 128). */
function uint8Of(q: Int8Array): Uint8Array {
  return Uint8Array.from(q, (v) => v + 128);
}

export interface BertShape {
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
  vocab: number;
  positions: number;
  typeVocab: number;
  layerNormEps: number;
}

/** sentence-transformers/all-MiniLM-L6-v2's encoder. */
export const MINILM_L6_SHAPE: BertShape = Object.freeze({
  layers: 6,
  hidden: 384,
  heads: 12,
  ffn: 1536,
  vocab: 30522,
  positions: 512,
  typeVocab: 2,
  layerNormEps: 1e-12,
});

export interface LayerWeights {
  q: Linear;
  k: Linear;
  v: Linear;
  o: Linear;
  ln1: Norm;
  ffn1: Linear;
  ffn2: Linear;
  ln2: Norm;
}
/** `w` is [in, out] row-major (ONNX MatMul's B), `b` is [out]. */
export interface Linear {
  w: Float32Array;
  b: Float32Array;
  in: number;
  out: number;
}
export interface Norm {
  g: Float32Array;
  b: Float32Array;
}
export interface BertWeights {
  shape: BertShape;
  word: Float32Array;
  position: Float32Array;
  tokenType: Float32Array;
  embNorm: Norm;
  layers: LayerWeights[];
  /**
   * BertForSequenceClassification's head (a cross-encoder): the pooler (dense + tanh on the
   * [CLS] token's hidden state) and the classifier (hidden → labels). With it the graph's output
   * is `logits` [batch, labels] instead of `last_hidden_state`.
   */
  head?: ClassifierHead;
}
export interface ClassifierHead {
  pooler: Linear;
  classifier: Linear;
}

/** Parameters in the encoder's weight matrices (the MatMuls), biases excluded. */
export function encoderMatmulParams(shape: BertShape): number {
  const h = shape.hidden;
  return shape.layers * (4 * h * h + 2 * h * shape.ffn);
}

/**
 * FLOPs of one forward pass over `rows` sequences padded to `seqLen` tokens: 2 × params of the
 * encoder MatMuls per token, plus attention's QKᵀ and A·V (2 × seqLen × hidden each, per token
 * and layer). Element-wise work (LayerNorm, softmax, GELU) and embedding gathers are not counted.
 */
export function forwardFlops(shape: BertShape, rows: number, seqLen: number): number {
  const perToken = 2 * encoderMatmulParams(shape) + shape.layers * 4 * seqLen * shape.hidden;
  return rows * seqLen * perToken;
}

/** mulberry32: a small, fast, seeded PRNG (uniform in [0, 1)). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded N(mean, std) sampler (Box–Muller). */
export function seededNormal(seed: number): (mean: number, std: number) => number {
  const uniform = seededRandom(seed);
  let spare: number | null = null;
  return (mean, std) => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return mean + std * z;
    }
    const u = Math.max(uniform(), 1e-12);
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  };
}

/** BERT's initialisation: N(0, 0.02) matrices and embeddings, small biases, LayerNorm ≈ 1/0. */
export function randomBertWeights(shape: BertShape, seed: number): BertWeights {
  const normal = seededNormal(seed);
  const fill = (n: number, mean: number, std: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = normal(mean, std);
    return a;
  };
  const linear = (inDim: number, outDim: number): Linear => ({
    w: fill(inDim * outDim, 0, 0.02),
    b: fill(outDim, 0, 0.02),
    in: inDim,
    out: outDim,
  });
  const norm = (): Norm => ({ g: fill(shape.hidden, 1, 0.02), b: fill(shape.hidden, 0, 0.02) });
  const h = shape.hidden;
  return {
    shape,
    word: fill(shape.vocab * h, 0, 0.02),
    position: fill(shape.positions * h, 0, 0.02),
    tokenType: fill(shape.typeVocab * h, 0, 0.02),
    embNorm: norm(),
    layers: Array.from({ length: shape.layers }, () => ({
      q: linear(h, h),
      k: linear(h, h),
      v: linear(h, h),
      o: linear(h, h),
      ln1: norm(),
      ffn1: linear(h, shape.ffn),
      ffn2: linear(shape.ffn, h),
      ln2: norm(),
    })),
  };
}

export type Precision = 'fp32' | 'q8';

/** The four distinct inputs of an encoder layer's MatMuls (Q, K and V share the first). */
export type LayerInput = 'attention' | 'attention_output' | 'intermediate' | 'output';

export interface QuantOptions {
  /** One scale per output column (quantize_dynamic's per_channel=True) or one per tensor. */
  perChannel: boolean;
  /** Embedding tables as int8 with one per-tensor scale (quantize_dynamic's form), or fp32. */
  int8Embeddings?: boolean;
  /**
   * Largest |int8 weight| (default 127). 63 is quantize_dynamic's reduce_range: on x86 without
   * VNNI, onnxruntime's u8×s8 kernels add pairs of products in int16 and saturate otherwise.
   */
  weightMax?: number;
  /**
   * Weights as uint8 with zero point 128 (the same 255 levels as int8 ±127): onnxruntime then
   * runs its u8×u8 kernels, which accumulate exactly in int32 on every x86 CPU (u8×s8 without
   * VNNI saturates pair sums in int16 once activations use their whole uint8 range).
   */
  uint8Weights?: boolean;
  /**
   * One activation range per token instead of one per tensor. A few tokens ([CLS], [SEP],
   * punctuation) carry activations ~10× the rest; with one range per tensor they set the step of
   * every token in the batch. 'symmetric': each row is divided by its max |x| before
   * DynamicQuantizeLinear (whose range is then about [−1, 1] for the whole batch) and the product
   * multiplied back. 'affine': each row is mapped onto [0, 1] by its own [min(x, 0), max(x, 0)]
   * (a finer step when a row's range is lopsided) and back by x·W = (hi − lo)·(x̂·W) + lo·Σ_rows W,
   * at the cost of two more passes over every product.
   */
  perTokenActivations?: 'symmetric' | 'affine';
  /**
   * SmoothQuant: per input channel factors s, keyed `${layer}.${LayerInput}`: that input is
   * multiplied by 1/s before it is quantized and the weight rows by s (x·W = (x/s)·(s·W)).
   * Powers of two keep both exact.
   */
  smoothing?: Readonly<Record<string, readonly number[]>>;
}

/** Symmetric int8: q = round(w / scale), scale = max|w| / 127 per column (or per tensor). */
export function quantizeInt8(
  w: Float32Array,
  rows: number,
  cols: number,
  perChannel: boolean,
  qmax = 127,
): { q: Int8Array; scales: Float32Array } {
  const scales = new Float32Array(perChannel ? cols : 1);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const s = perChannel ? c : 0;
      scales[s] = Math.max(scales[s] ?? 0, Math.abs(w[r * cols + c] ?? 0));
    }
  }
  for (let s = 0; s < scales.length; s++) scales[s] = (scales[s] || 1) / qmax;
  const q = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const scale = scales[perChannel ? c : 0] as number;
      q[r * cols + c] = Math.max(-qmax, Math.min(qmax, Math.round((w[r * cols + c] ?? 0) / scale)));
    }
  }
  return { q, scales };
}

const OPSET = 17;
const MASK_NEG = -10000;

/** The encoder as an ONNX model (opset 17). */
export function buildBertModel(
  weights: BertWeights,
  precision: Precision,
  quant: QuantOptions = { perChannel: true },
): ModelProto {
  const { shape } = weights;
  const h = shape.hidden;
  const headDim = h / shape.heads;
  if (!Number.isInteger(headDim)) throw new Error('hidden must be a multiple of heads');
  const g = new GraphBuilder();

  const scalar = (name: string, v: number) => g.init(floatTensor(name, [], Float32Array.of(v)));
  const one = scalar('const_one', 1);
  const half = scalar('const_half', 0.5);
  const sqrt2 = scalar('const_sqrt2', Math.SQRT2);
  const attnScale = scalar('const_attn_scale', Math.sqrt(headDim));
  const maskNeg = scalar('const_mask_neg', MASK_NEG);
  const perToken = precision === 'q8' && quant.perTokenActivations !== undefined;
  const tiny = perToken ? scalar('const_tiny', 1e-12) : '';
  const zeroF =
    precision === 'q8' && quant.perTokenActivations === 'affine' ? scalar('const_zero', 0) : '';
  const axisOne = g.init(int64Tensor('const_i64_one', [], [1]));
  const zeroI = g.init(int64Tensor('const_i64_zero', [], [0]));
  const splitShape = g.init(int64Tensor('shape_split_heads', [4], [0, 0, shape.heads, headDim]));
  const mergeShape = g.init(int64Tensor('shape_merge_heads', [3], [0, 0, h]));
  const maskAxes = g.init(int64Tensor('mask_axes', [2], [1, 2]));

  // Embedding tables: Gather (int8 + DequantizeLinear in q8, as quantize_dynamic does).
  const embedding = (name: string, table: Float32Array, rows: number, ids: string): string => {
    if (precision === 'fp32' || quant.int8Embeddings === false) {
      return g.op1('Gather', [g.init(floatTensor(name, [rows, h], table)), ids], {
        axis: { int: 0 },
      });
    }
    const { q, scales } = quantizeInt8(table, rows, h, false);
    const gathered = g.op1('Gather', [g.init(int8Tensor(`${name}_quantized`, [rows, h], q)), ids], {
      axis: { int: 0 },
    });
    return g.op1('DequantizeLinear', [
      gathered,
      g.init(floatTensor(`${name}_scale`, [], scales)),
      g.init(int8Tensor(`${name}_zero_point`, [], Int8Array.of(0))),
    ]);
  };

  // x → x·W + b; in q8, one DynamicQuantizeLinear per distinct input (shared by Q, K, V).
  interface QuantizedInput {
    q: [string, string, string];
    /** Per token: each row's range (and affine lo), [..., 1], to map the product back. */
    rows: { range: string; lo: string | null } | null;
  }
  const quantizedInputs = new Map<string, QuantizedInput>();
  const quantizedInput = (name: string, x: string, smooth: readonly number[] | null) => {
    let xq = quantizedInputs.get(x);
    if (xq) return xq;
    let input = x;
    if (smooth) {
      const inverse = Float32Array.from(smooth, (f) => 1 / f);
      const dims = [smooth.length];
      input = g.op1('Mul', [x, g.init(floatTensor(`${name}.input_smoothing`, dims, inverse))]);
    }
    let rows: QuantizedInput['rows'] = null;
    const reduce = { axes: { ints: [-1] }, keepdims: { int: 1 } };
    if (quant.perTokenActivations === 'symmetric') {
      const range = g.op1('Max', [g.op1('ReduceMax', [g.op1('Abs', [input])], reduce), tiny]);
      input = g.op1('Div', [input, range]);
      rows = { range, lo: null };
    } else if (quant.perTokenActivations === 'affine') {
      // DynamicQuantizeLinear's range, per row: [min(x, 0), max(x, 0)]; x → (x − lo) / (hi − lo).
      const hi = g.op1('Max', [g.op1('ReduceMax', [input], reduce), zeroF]);
      const lo = g.op1('Min', [g.op1('ReduceMin', [input], reduce), zeroF]);
      const range = g.op1('Max', [g.op1('Sub', [hi, lo]), tiny]);
      input = g.op1('Mul', [g.op1('Sub', [input, lo]), g.op1('Reciprocal', [range])]);
      rows = { range, lo };
    }
    xq = { q: g.op('DynamicQuantizeLinear', [input], {}, 3) as [string, string, string], rows };
    quantizedInputs.set(x, xq);
    return xq;
  };
  const linear = (name: string, x: string, lin: Linear, key: string) => {
    const bias = g.init(floatTensor(`${name}.bias`, [lin.out], lin.b));
    if (precision === 'fp32') {
      const w = g.init(floatTensor(`${name}.weight`, [lin.in, lin.out], lin.w));
      return g.op1('Add', [g.op1('MatMul', [x, w]), bias]);
    }
    const smooth = quant.smoothing?.[key] ?? null;
    if (smooth && smooth.length !== lin.in) {
      throw new Error(`${name}: ${smooth.length} smoothing factors for ${lin.in} inputs`);
    }
    const input = quantizedInput(name, x, smooth);
    const [xQuant, xScale, xZero] = input.q;
    let wSmoothed = lin.w;
    if (smooth) {
      wSmoothed = lin.w.slice();
      for (let r = 0; r < lin.in; r++) {
        const f = smooth[r] as number;
        for (let c = 0; c < lin.out; c++) {
          wSmoothed[r * lin.out + c] = (lin.w[r * lin.out + c] as number) * f;
        }
      }
    }
    const { q, scales } = quantizeInt8(
      wSmoothed,
      lin.in,
      lin.out,
      quant.perChannel,
      quant.weightMax,
    );
    const scaleDims = quant.perChannel ? [lin.out] : [];
    let w: string;
    let wZero: string;
    if (quant.uint8Weights) {
      const zeros = new Uint8Array(scales.length).fill(128);
      w = g.init(uint8Tensor(`${name}.weight_quantized`, [lin.in, lin.out], uint8Of(q)));
      wZero = g.init(uint8Tensor(`${name}.weight_zero_point`, scaleDims, zeros));
    } else {
      const zeros = new Int8Array(scales.length);
      w = g.init(int8Tensor(`${name}.weight_quantized`, [lin.in, lin.out], q));
      wZero = g.init(int8Tensor(`${name}.weight_zero_point`, scaleDims, zeros));
    }
    const wScale = g.init(floatTensor(`${name}.weight_scale`, scaleDims, scales));
    const product = g.op1('MatMulInteger', [xQuant, w, xZero, wZero]);
    const asFloat = g.op1('Cast', [product], { to: { int: DataType.FLOAT } });
    const scale = g.op1('Mul', [xScale, wScale]);
    let out = g.op1('Mul', [asFloat, scale]);
    if (input.rows?.lo === null) {
      out = g.op1('Mul', [out, input.rows.range]);
    } else if (input.rows) {
      // x ≈ lo + (hi − lo)·x̂, so x·W ≈ (hi − lo)·(x̂·W) + lo·Σ_rows W (W as quantized).
      const colsum = new Float32Array(lin.out);
      for (let r = 0; r < lin.in; r++) {
        for (let c = 0; c < lin.out; c++) {
          colsum[c] = (colsum[c] as number) + (q[r * lin.out + c] as number);
        }
      }
      for (let c = 0; c < lin.out; c++) {
        colsum[c] = (colsum[c] as number) * (scales[quant.perChannel ? c : 0] as number);
      }
      const sums = g.init(floatTensor(`${name}.weight_column_sums`, [lin.out], colsum));
      out = g.op1('Add', [
        g.op1('Mul', [out, input.rows.range]),
        g.op1('Mul', [input.rows.lo, sums]),
      ]);
    }
    return g.op1('Add', [out, bias]);
  };

  const layerNorm = (name: string, x: string, n: Norm): string =>
    g.op1(
      'LayerNormalization',
      [
        x,
        g.init(floatTensor(`${name}.weight`, [h], n.g)),
        g.init(floatTensor(`${name}.bias`, [h], n.b)),
      ],
      { axis: { int: -1 }, epsilon: { float: shape.layerNormEps } },
    );

  // Embeddings: word + token type + position, then LayerNorm.
  const seqLen = g.op1('Gather', [g.op1('Shape', ['input_ids']), axisOne], { axis: { int: 0 } });
  const positionIds = g.op1('Range', [zeroI, seqLen, axisOne]);
  const words = embedding('embeddings.word_embeddings', weights.word, shape.vocab, 'input_ids');
  const types = embedding(
    'embeddings.token_type_embeddings',
    weights.tokenType,
    shape.typeVocab,
    'token_type_ids',
  );
  const positions = embedding(
    'embeddings.position_embeddings',
    weights.position,
    shape.positions,
    positionIds,
  );
  let x = layerNorm(
    'embeddings.LayerNorm',
    g.op1('Add', [g.op1('Add', [words, types]), positions]),
    weights.embNorm,
  );

  // Additive attention mask [batch, 1, 1, seq]: 0 for tokens, MASK_NEG for padding.
  const maskFloat = g.op1('Cast', ['attention_mask'], { to: { int: DataType.FLOAT } });
  const maskBias = g.op1('Unsqueeze', [
    g.op1('Mul', [g.op1('Sub', [one, maskFloat]), maskNeg]),
    maskAxes,
  ]);

  weights.layers.forEach((layer, i) => {
    const p = `encoder.layer.${i}`;
    const heads = (t: string, perm: number[]) =>
      g.op1('Transpose', [g.op1('Reshape', [t, splitShape])], { perm: { ints: perm } });
    const attnIn = `${i}.attention`;
    const q = heads(linear(`${p}.attention.self.query`, x, layer.q, attnIn), [0, 2, 1, 3]);
    const k = heads(linear(`${p}.attention.self.key`, x, layer.k, attnIn), [0, 2, 3, 1]);
    const v = heads(linear(`${p}.attention.self.value`, x, layer.v, attnIn), [0, 2, 1, 3]);
    const scores = g.op1('Add', [g.op1('Div', [g.op1('MatMul', [q, k]), attnScale]), maskBias]);
    const probs = g.op1('Softmax', [scores], { axis: { int: -1 } });
    const context = g.op1('Reshape', [
      g.op1('Transpose', [g.op1('MatMul', [probs, v])], { perm: { ints: [0, 2, 1, 3] } }),
      mergeShape,
    ]);
    const attnOut = linear(
      `${p}.attention.output.dense`,
      context,
      layer.o,
      `${i}.attention_output`,
    );
    const x1 = layerNorm(`${p}.attention.output.LayerNorm`, g.op1('Add', [attnOut, x]), layer.ln1);
    const inner = linear(`${p}.intermediate.dense`, x1, layer.ffn1, `${i}.intermediate`);
    // GELU (erf form, as BERT exports it): x · 0.5 · (1 + erf(x / √2)).
    const gelu = g.op1('Mul', [
      g.op1('Mul', [inner, half]),
      g.op1('Add', [one, g.op1('Erf', [g.op1('Div', [inner, sqrt2])])]),
    ]);
    const ffnOut = linear(`${p}.output.dense`, gelu, layer.ffn2, `${i}.output`);
    x = layerNorm(`${p}.output.LayerNorm`, g.op1('Add', [ffnOut, x1]), layer.ln2);
  });
  const { head } = weights;
  if (head) {
    // BertForSequenceClassification: tanh(dense([CLS])) → classifier → logits [batch, labels].
    const cls = g.op1('Gather', [x, zeroI], { axis: { int: 1 } });
    const pooled = g.op1('Tanh', [linear('bert.pooler.dense', cls, head.pooler, 'pooler')]);
    const logits = linear('classifier', pooled, head.classifier, 'classifier');
    g.op('Identity', [logits]);
    g.renameLastOutput('logits');
  } else {
    g.op('Identity', [x]);
    g.renameLastOutput('last_hidden_state');
  }

  const dyn = ['batch_size', 'sequence_length'];
  return buildModel({
    graphName: head ? 'bert_for_sequence_classification' : 'bert_encoder',
    builder: g,
    inputs: [
      valueInfo('input_ids', DataType.INT64, dyn),
      valueInfo('attention_mask', DataType.INT64, dyn),
      valueInfo('token_type_ids', DataType.INT64, dyn),
    ],
    outputs: [
      head
        ? valueInfo('logits', DataType.FLOAT, ['batch_size', head.classifier.out])
        : valueInfo('last_hidden_state', DataType.FLOAT, [...dyn, h]),
    ],
    opset: OPSET,
    docString: `BERT ${head ? 'cross-encoder (sequence classification)' : 'encoder'} (${shape.layers} layers, hidden ${h}, ${shape.heads} heads, FFN ${shape.ffn}) with seeded random weights, ${precision}; written by heimdex bench/make-model.ts for benchmarking only.`,
  });
}
