import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { MINILM_L6_SHAPE, buildBertModel, randomBertWeights } from '../../bench/lib/bert.js';
import type { BertShape, QuantOptions } from '../../bench/lib/bert.js';
import { encodeModel } from '../../bench/lib/onnx.js';
import { cosine } from '../../embedder/src/core/vector.js';
import { REPO_ROOT, modelCacheDir, pinnedOutputs, readLock } from './cache.js';
import { bertShapeFromConfig, readSafetensors } from './safetensors.js';
import { readZipEntry, zipEntries } from './zip.js';

/**
 * A zip entry's local (30 bytes) or central directory (46 bytes) header: the signature, then the
 * fields both share, from `at` on (the central header has one more field before them).
 */
function entryHeader(
  size: number,
  signature: number,
  at: number,
  e: { method: number; compressed: number; size: number; name: number },
): Buffer {
  const header = Buffer.alloc(size);
  header.writeUInt32LE(signature, 0);
  header.writeUInt16LE(e.method, at);
  header.writeUInt32LE(e.compressed, at + 10);
  header.writeUInt32LE(e.size, at + 14);
  header.writeUInt16LE(e.name, at + 18);
  return header;
}

/** A zip archive of `files`, the first stored and the rest deflated (as wheels mix them). */
function makeZip(files: [string, Buffer][]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  files.forEach(([name, data], i) => {
    const method = i === 0 ? 0 : 8;
    const body = method === 0 ? data : deflateRawSync(data);
    const nameBytes = Buffer.from(name);
    const entry = { method, compressed: body.length, size: data.length, name: nameBytes.length };
    const local = entryHeader(30, 0x04034b50, 8, entry);
    const central = entryHeader(46, 0x02014b50, 10, entry);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, body);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + body.length;
  });
  const directory = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(files.length, 8);
  eocd.writeUInt16LE(files.length, 10);
  eocd.writeUInt32LE(directory.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, eocd]);
}

describe('npm run models helpers', () => {
  it('reads stored and deflated zip entries', () => {
    const big = Buffer.from('tokenizer '.repeat(1000));
    const zip = makeZip([
      ['pkg/config.json', Buffer.from('{"a":1}')],
      ['pkg/tokenizer.json', big],
    ]);
    const entries = zipEntries(zip);
    expect([...entries.keys()]).toEqual(['pkg/config.json', 'pkg/tokenizer.json']);
    expect(readZipEntry(zip, entries.get('pkg/config.json')!).toString()).toBe('{"a":1}');
    expect(readZipEntry(zip, entries.get('pkg/tokenizer.json')!).equals(big)).toBe(true);
    expect(() => zipEntries(Buffer.from('not a zip at all, just some bytes'))).toThrow(/not a zip/);
  });

  it('reads F32 safetensors at any alignment and skips other dtypes', () => {
    const header = JSON.stringify({
      __metadata__: { format: 'pt' },
      ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] },
      w: { dtype: 'F32', shape: [2, 2], data_offsets: [8, 24] },
    });
    const values = Float32Array.of(1, -2, 3.5, 0.25);
    const bytes = Buffer.alloc(8 + header.length + 24);
    bytes.writeBigUInt64LE(BigInt(header.length), 0);
    bytes.write(header, 8);
    Buffer.from(values.buffer).copy(bytes, 8 + header.length + 8);
    const tensors = readSafetensors(bytes);
    expect([...tensors.keys()]).toEqual(['w']);
    expect(tensors.get('w')!.shape).toEqual([2, 2]);
    expect(Array.from(tensors.get('w')!.data)).toEqual([1, -2, 3.5, 0.25]);
  });

  it('reads the encoder shape from a BERT config.json', () => {
    const config = {
      model_type: 'bert',
      hidden_act: 'gelu',
      num_hidden_layers: 6,
      hidden_size: 384,
      num_attention_heads: 12,
      intermediate_size: 1536,
      vocab_size: 30522,
      max_position_embeddings: 512,
      type_vocab_size: 2,
      layer_norm_eps: 1e-12,
    };
    expect(bertShapeFromConfig(config)).toEqual({ ...MINILM_L6_SHAPE });
    expect(() => bertShapeFromConfig({ ...config, model_type: 'xlm-roberta' })).toThrow(/not bert/);
  });

  it('pins every file of the transformers.js layout, and the cache folder is overridable', () => {
    const minilm = readLock().models.find((m) => m.name === 'minilm-l6-v2')!;
    expect(minilm.folder).toBe('Xenova/all-MiniLM-L6-v2');
    expect([...pinnedOutputs(minilm).keys()].sort()).toEqual([
      'config.json',
      'onnx/model.onnx',
      'onnx/model_quantized.onnx',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const sha of [
      minilm.package.sha256,
      minilm.weights.sha256,
      ...pinnedOutputs(minilm).values(),
    ]) {
      expect(sha).toMatch(/^[0-9a-f]{64}$/);
    }
    expect(modelCacheDir({})).toBe(path.join(REPO_ROOT, '.cache/models'));
    expect(modelCacheDir({ HEIMDEX_MODEL_CACHE: '/tmp/m' })).toBe('/tmp/m');
  });
});

/** last_hidden_state of a padded batch (mask 0 past each sequence), row by row, padding dropped. */
async function forward(model: Uint8Array, batch: number[][]): Promise<Float32Array[][]> {
  const session = await ort.InferenceSession.create(model);
  try {
    const width = Math.max(...batch.map((b) => b.length));
    const ids = new BigInt64Array(batch.length * width);
    const mask = new BigInt64Array(batch.length * width);
    batch.forEach((b, r) =>
      b.forEach((id, j) => {
        ids[r * width + j] = BigInt(id);
        mask[r * width + j] = 1n;
      }),
    );
    const dims = [batch.length, width];
    const out = await session.run({
      input_ids: new ort.Tensor('int64', ids, dims),
      attention_mask: new ort.Tensor('int64', mask, dims),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length), dims),
    });
    const hidden = out.last_hidden_state as ort.Tensor;
    const data = hidden.data as Float32Array;
    const h = hidden.dims[2] as number;
    return batch.map((b, r) =>
      b.map((_, j) => data.slice((r * width + j) * h, (r * width + j + 1) * h)),
    );
  } finally {
    await session.release();
  }
}

describe('the int8 recipe of the lock (bench/lib/bert.ts QuantOptions)', () => {
  const shape: BertShape = {
    layers: 2,
    hidden: 32,
    heads: 4,
    ffn: 64,
    vocab: 50,
    positions: 16,
    typeVocab: 2,
    layerNormEps: 1e-12,
  };
  const weights = randomBertWeights(shape, 7);
  // An outlier channel, as BERT's LayerNorms make them: large gamma on channel 5 of every output.
  for (const layer of weights.layers) {
    layer.ln1.g[5] = 12;
    layer.ln2.g[5] = -9;
  }
  const batch = [
    [2, 7, 11, 19, 23, 5, 3, 9, 30, 41],
    [2, 9, 3],
    [2, 44, 17, 3],
  ];
  const factors = Array.from({ length: shape.hidden }, (_, j) =>
    j === 5 ? 8 : j % 3 === 0 ? 0.5 : 1,
  );
  const smoothing = Object.fromEntries(
    [0, 1].flatMap((i) => [
      [`${i}.attention`, factors],
      [`${i}.intermediate`, factors],
    ]),
  );
  const recipe: QuantOptions = {
    perChannel: true,
    int8Embeddings: false,
    uint8Weights: true,
    perTokenActivations: 'symmetric',
    smoothing,
  };

  it('stays close to fp32 token by token, padding and an outlier channel included', async () => {
    const fp32 = await forward(encodeModel(buildBertModel(weights, 'fp32')), batch);
    const model = buildBertModel(weights, 'q8', recipe);
    const types = model.graph.initializer
      .filter((t) => t.name.endsWith('.weight_quantized'))
      .map((t) => t.data_type);
    expect(new Set(types)).toEqual(new Set([2])); // uint8
    const q8 = await forward(encodeModel(model), batch);
    const plain = await forward(
      encodeModel(buildBertModel(weights, 'q8', { perChannel: true, int8Embeddings: false })),
      batch,
    );
    const worst = (rows: Float32Array[][]) =>
      Math.min(...rows.flatMap((seq, r) => seq.map((v, j) => cosine(v, fp32[r]![j]!))));
    expect(worst(q8)).toBeGreaterThan(0.999);
    // Per-token ranges beat one range per tensor here (the outlier channel sets that one).
    expect(worst(q8)).toBeGreaterThan(worst(plain));
  });

  it('is deterministic: the same weights give the same bytes', () => {
    const a = encodeModel(buildBertModel(weights, 'q8', recipe));
    const b = encodeModel(buildBertModel(weights, 'q8', recipe));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  });
});
