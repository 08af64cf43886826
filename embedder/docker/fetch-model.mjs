#!/usr/bin/env node
// Build-time model download for the embedder images (embedder/Dockerfile, Dockerfile.gpu).
//
//   MODEL_NAME=minilm-l6-v2 MODEL_DTYPE=fp32 MODEL_DIR=/models node embedder/docker/fetch-model.mjs
//
// Resolves MODEL_NAME through the embedder's registry (a short name such as `minilm-l6-v2`, or
// any Hub id such as `Xenova/bge-base-en-v1.5`), downloads exactly the files transformers.js loads
// for MODEL_DTYPE into MODEL_DIR/<hub id>/, then loads the model again from that folder with the
// Hub switched off and embeds one sentence, so that a build never ships a model the embedder
// cannot open offline. At run time the image sets EMBEDDING_MODEL_DIR=MODEL_DIR: nothing is
// downloaded when the container starts. HF_ENDPOINT points at a Hub mirror; HF_TOKEN at a private
// model's access token. Run from the folder that holds the compiled embedder (dist/).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { env, pipeline } from '@huggingface/transformers';

function fail(message) {
  process.stderr.write(`fetch-model: ${message}\n`);
  process.exit(1);
}

const name = process.env.MODEL_NAME;
const dtype = process.env.MODEL_DTYPE || 'fp32';
const dir = path.resolve(process.env.MODEL_DIR || '/models');
const registryPath = path.resolve(
  process.env.REGISTRY_MODULE || 'dist/embedder/src/core/registry.js',
);
if (!name) fail('MODEL_NAME is required (a registry short name or a Hugging Face Hub id)');
if (!['fp32', 'fp16', 'q8'].includes(dtype)) fail(`MODEL_DTYPE must be fp32, fp16 or q8`);
if (!fs.existsSync(registryPath)) fail(`the embedder's registry is not at ${registryPath}`);

const { modelSpec } = await import(pathToFileURL(registryPath).href);
const spec = modelSpec(name);
const hubId = spec.hubId ?? name;
const pooling = spec.pooling;

async function embedOnce(source) {
  const extractor = await pipeline('feature-extraction', source, { dtype, device: 'cpu' });
  try {
    const out = await extractor(['Heimdex build check.'], { pooling, normalize: true });
    return out.dims.at(-1);
  } finally {
    await extractor.dispose();
  }
}

// 1. Download into the file cache, whose layout is <cacheDir>/<hub id>/<file>.
fs.mkdirSync(dir, { recursive: true });
env.allowLocalModels = false;
env.allowRemoteModels = true;
env.useFSCache = true;
env.cacheDir = dir;
if (process.env.HF_ENDPOINT) env.remoteHost = process.env.HF_ENDPOINT.replace(/\/?$/, '/');
const started = Date.now();
try {
  await embedOnce(hubId);
} catch (err) {
  fail(
    `could not download ${name}${hubId === name ? '' : ` (${hubId})`} with dtype ${dtype} from ${env.remoteHost}: ${err instanceof Error ? err.message : String(err)}`,
  );
}

// 2. Load it back from the folder, offline, exactly as the embedder will.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.useFSCache = false;
env.localModelPath = `${dir}/`;
let dims;
try {
  dims = await embedOnce(hubId);
} catch (err) {
  fail(`${hubId} was downloaded but does not load offline from ${dir}: ${err.message ?? err}`);
}
if (spec.dims !== null && dims !== spec.dims) {
  fail(`${hubId} produces ${dims}-dimensional vectors; the registry expects ${spec.dims}`);
}
const bytes = fs
  .readdirSync(path.join(dir, hubId), { recursive: true })
  .map((f) => fs.statSync(path.join(dir, hubId, String(f))))
  .filter((s) => s.isFile())
  .reduce((n, s) => n + s.size, 0);
console.log(
  `fetch-model: ${name} → ${path.join(dir, hubId)} (${dtype}, ${dims} dims, ${(bytes / 1e6).toFixed(1)} MB, ${((Date.now() - started) / 1000).toFixed(1)} s)`,
);
