/**
 * Where a model's files come from — the Hugging Face Hub, or a folder under a local models
 * directory — and what a failure to load it says, for every model the embedder loads (the
 * embedding models, core/model.ts, and the cross-encoder, core/reranker.ts).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from '../config.js';
import { StartupError } from './errors.js';

/** The model a setting names: its served name and, for registry models, its Hub id. */
export interface SourceSpec {
  name: string;
  hubId: string | null;
}

/** Where its files come from: a Hub id (dir null), or a path relative to `dir`. */
export interface ModelSource {
  id: string;
  dir: string | null;
}

/** How the messages name the model and its settings. */
export interface SourceKind {
  /** "embedding model", "reranker". */
  what: string;
  /** The settings: EMBEDDING_MODEL_NAME / EMBEDDING_MODEL_DIR, RERANK_MODEL_NAME / … */
  nameVar: string;
  dirVar: string;
  /** The end of the Hub failure's offline hint (after "…the folder that contains it"). */
  offlineExample: string;
  /** The local failure's last alternative ("or unset EMBEDDING_MODEL_DIR to …"). */
  otherwise: string;
  /** Appended to every failure message ('' for none). */
  tail: string;
}

type LoadConfig = Pick<ModelConfig, 'dir' | 'device' | 'dtype'>;

/**
 * The model's source: the Hub when no directory is set, else the folder named like the model (or
 * like its Hub id) under it; a StartupError naming what was looked for when there is none.
 */
export function resolveModelSource(
  spec: SourceSpec,
  config: LoadConfig,
  kind: SourceKind,
): ModelSource {
  if (config.dir === null) return { id: spec.hubId ?? spec.name, dir: null };
  const candidates = spec.hubId ? [spec.name, spec.hubId] : [spec.name];
  const found = candidates.find((c) => isDirectory(path.join(config.dir as string, c)));
  if (found) return { id: found, dir: config.dir };
  const reason = `no folder named ${candidates.map((c) => `"${c}"`).join(' or ')} in ${kind.dirVar}=${config.dir}`;
  throw new StartupError(
    loadFailureMessage(spec, { id: spec.name, dir: config.dir }, config, reason, kind),
  );
}

/** Why the model could not load from `source`, and how to fix it. */
export function loadFailureMessage(
  spec: SourceSpec,
  source: ModelSource,
  config: LoadConfig,
  reason: string,
  kind: SourceKind,
): string {
  const label = spec.hubId ? `"${spec.name}" (${spec.hubId})` : `"${spec.name}"`;
  const gpuHint =
    config.device === 'cpu'
      ? ''
      : ' If the GPU runtime is not available on this machine, set EMBEDDING_DEVICE=cpu.';
  if (source.dir === null) {
    return (
      `Could not load ${kind.what} ${label} from the Hugging Face Hub: ${reason}. ` +
      `If this machine is offline, download the model elsewhere and set ${kind.dirVar} to the folder that contains it` +
      kind.offlineExample +
      gpuHint +
      kind.tail
    );
  }
  const available = listModelFolders(source.dir);
  return (
    `Could not load ${kind.what} ${label} from ${kind.dirVar}=${source.dir}: ${reason}. ` +
    `Put the model's folder (config.json, tokenizer.json, onnx/model${dtypeSuffix(config.dtype)}.onnx) ` +
    `there, set ${kind.nameVar} to a folder that exists (${available.length > 0 ? `found: ${available.join(', ')}` : 'the folder has no model folders'}), ` +
    kind.otherwise +
    gpuHint +
    kind.tail
  );
}

/** transformers.js's file suffix for a dtype: onnx/model{suffix}.onnx. */
export function dtypeSuffix(dtype: ModelConfig['dtype']): string {
  return dtype === 'fp16' ? '_fp16' : dtype === 'q8' ? '_quantized' : '';
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function listModelFolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(path.join(dir, e.name, 'config.json')))
      .map((e) => e.name)
      .sort()
      .slice(0, 20);
  } catch {
    return [];
  }
}
