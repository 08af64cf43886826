/**
 * Real BERT weights for the ONNX builder of bench/lib/bert.ts: reads a safetensors file (an
 * 8-byte little-endian header length, a JSON header of name → dtype, shape, byte range, then the
 * raw little-endian tensors) and maps Hugging Face's BertModel names onto `BertWeights`.
 */
import type { BertShape, BertWeights, Linear, Norm } from '../../bench/lib/bert.js';

interface TensorInfo {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Every F32 tensor of a safetensors file, by name, with its shape. */
export function readSafetensors(
  bytes: Buffer,
): Map<string, { shape: number[]; data: Float32Array }> {
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (headerLength <= 0 || 8 + headerLength > bytes.length)
    throw new Error('not a safetensors file');
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as Record<
    string,
    TensorInfo | Record<string, string>
  >;
  const base = 8 + headerLength;
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const t = info as TensorInfo;
    if (t.dtype !== 'F32') continue;
    const [from, to] = t.data_offsets;
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (to - from !== count * 4 || base + to > bytes.length) {
      throw new Error(`safetensors tensor ${name}: byte range does not match its shape`);
    }
    // Copy: the tensor's offset need not be 4-byte aligned within the file.
    const data = new Float32Array(count);
    Buffer.from(data.buffer).set(bytes.subarray(base + from, base + to));
    tensors.set(name, { shape: t.shape, data });
  }
  return tensors;
}

/** Maps a Hugging Face BertModel state dict (no `bert.` prefix) onto the builder's weights. */
export function bertWeightsFromTensors(
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  shape: BertShape,
): BertWeights {
  const h = shape.hidden;
  const get = (name: string, dims: number[]): Float32Array => {
    const t = tensors.get(name) ?? tensors.get(`bert.${name}`);
    if (!t) throw new Error(`weights have no tensor ${name}`);
    if (t.shape.length !== dims.length || t.shape.some((d, i) => d !== dims[i])) {
      throw new Error(
        `tensor ${name}: shape [${t.shape.join(', ')}], expected [${dims.join(', ')}]`,
      );
    }
    return t.data;
  };
  // PyTorch's Linear stores W as [out, in]; ONNX MatMul's B is [in, out].
  const linear = (name: string, inDim: number, outDim: number): Linear => {
    const w = get(`${name}.weight`, [outDim, inDim]);
    const wt = new Float32Array(inDim * outDim);
    for (let o = 0; o < outDim; o++) {
      for (let i = 0; i < inDim; i++) wt[i * outDim + o] = w[o * inDim + i] as number;
    }
    return { w: wt, b: get(`${name}.bias`, [outDim]), in: inDim, out: outDim };
  };
  const norm = (name: string): Norm => ({
    g: get(`${name}.weight`, [h]),
    b: get(`${name}.bias`, [h]),
  });
  return {
    shape,
    word: get('embeddings.word_embeddings.weight', [shape.vocab, h]),
    position: get('embeddings.position_embeddings.weight', [shape.positions, h]),
    tokenType: get('embeddings.token_type_embeddings.weight', [shape.typeVocab, h]),
    embNorm: norm('embeddings.LayerNorm'),
    layers: Array.from({ length: shape.layers }, (_, i) => {
      const p = `encoder.layer.${i}`;
      return {
        q: linear(`${p}.attention.self.query`, h, h),
        k: linear(`${p}.attention.self.key`, h, h),
        v: linear(`${p}.attention.self.value`, h, h),
        o: linear(`${p}.attention.output.dense`, h, h),
        ln1: norm(`${p}.attention.output.LayerNorm`),
        ffn1: linear(`${p}.intermediate.dense`, h, shape.ffn),
        ffn2: linear(`${p}.output.dense`, shape.ffn, h),
        ln2: norm(`${p}.output.LayerNorm`),
      };
    }),
  };
}

/** The encoder's shape from a Hugging Face BERT config.json. */
export function bertShapeFromConfig(config: Record<string, unknown>): BertShape {
  const num = (key: string): number => {
    const v = config[key];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new Error(`config.json has no numeric ${key}`);
    return v;
  };
  if (config.model_type !== 'bert')
    throw new Error(`config.json model_type is ${String(config.model_type)}, not bert`);
  if (config.hidden_act !== 'gelu')
    throw new Error(`config.json hidden_act is ${String(config.hidden_act)}, not gelu`);
  return {
    layers: num('num_hidden_layers'),
    hidden: num('hidden_size'),
    heads: num('num_attention_heads'),
    ffn: num('intermediate_size'),
    vocab: num('vocab_size'),
    positions: num('max_position_embeddings'),
    typeVocab: num('type_vocab_size'),
    layerNormEps: num('layer_norm_eps'),
  };
}
