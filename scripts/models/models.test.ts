import path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MINILM_L6_SHAPE } from '../../bench/lib/bert.js';
import { REPO_ROOT, modelCacheDir, pinnedOutputs, readLock } from './cache.js';
import { bertShapeFromConfig, readSafetensors } from './safetensors.js';
import { readZipEntry, zipEntries } from './zip.js';

/** A zip archive of `files`, the first stored and the rest deflated (as wheels mix them). */
function makeZip(files: [string, Buffer][]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  files.forEach(([name, data], i) => {
    const method = i === 0 ? 0 : 8;
    const body = method === 0 ? data : deflateRawSync(data);
    const nameBytes = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
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
