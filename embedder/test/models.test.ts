import { copyFile, mkdir, readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { pointId } from '../../contract/ids.js';
import type { EmbedderConfig } from '../src/config.js';
import { LanceDbStore } from '../src/store/lancedb.js';
import { useEmbedder } from './embedder-fixture.js';
import { POTION, TOKEN, embedItem, modelDir, postSearch, testConfig } from './helpers.js';
import type { Json } from './helpers.js';

const item = (over: Record<string, unknown> = {}) => embedItem('mm-org', over);

/** A copy of the potion-base-2M folder under another name: same weights, another model. */
async function copyModel(dest: string): Promise<void> {
  const src = path.join(modelDir, POTION);
  for (const entry of await readdir(src, { withFileTypes: true, recursive: true })) {
    const from = path.join(entry.parentPath, entry.name);
    const to = path.join(dest, path.relative(src, from));
    if (entry.isDirectory()) await mkdir(to, { recursive: true });
    else {
      await mkdir(path.dirname(to), { recursive: true });
      await copyFile(from, to);
    }
  }
}

/** A models folder with potion-base-2M (linked) and copies of it named `copies`. */
async function modelsFolder(dir: string, copies: string[]): Promise<string> {
  const root = path.join(dir, 'models');
  await mkdir(root, { recursive: true });
  await symlink(path.join(modelDir, POTION), path.join(root, POTION));
  for (const name of copies) await copyModel(path.join(root, name));
  return root;
}

/** `config` serving the models of the folder `models`: its default model and `extraModels`. */
function servingFrom(
  config: EmbedderConfig,
  models: string,
  extraModels: string[],
): EmbedderConfig {
  return { ...config, model: { ...config.model, dir: models }, extraModels };
}

/** An item's result refused with model_unavailable, whose message contains `message`. */
function expectUnavailable(result: Json, retryable: boolean, message: string) {
  expect(result).toMatchObject({ status: 'error', code: 'model_unavailable', retryable });
  expect(result.message).toContain(message);
}

async function metrics(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return res.text();
}

function counter(text: string, name: string, model: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{model="${model}"}`));
  return line ? Number(line.split(' ').at(-1)) : NaN;
}

describe('several models in one embedder', () => {
  let models: string;
  const served = useEmbedder('models', async (dir) => {
    models = await modelsFolder(dir, ['potion-copy', 'potion-copy2']);
    return servingFrom(testConfig({ dataDir: path.join(dir, 'vectors') }), models, [
      'potion-copy',
      'potion-copy2',
      'potion-late',
    ]);
  });
  const { call, logs } = served;

  const loadedLines = (model: string) =>
    logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'model loaded' && l.model === model);

  it('loads an extra model lazily, on first use, and reuses it after', async () => {
    expect(loadedLines('potion-copy')).toHaveLength(0);
    let text = await metrics(served.embedder.url);
    expect(counter(text, 'heimdex_model_cache_misses_total', 'potion-copy')).toBe(0);

    const first = await call('POST', '/internal/embed', {
      items: [item({ model: 'potion-copy', segment_id: 'lazy-1' })],
    });
    expect(first.status).toBe(200);
    expect(first.json.results[0]).toMatchObject({
      status: 'ok',
      model: 'potion-copy',
      model_ver: '1',
    });
    expect(first.json.model).toBe('potion-copy');
    expect(loadedLines('potion-copy')).toHaveLength(1);

    await call('POST', '/internal/embed', {
      items: [item({ model: 'potion-copy', segment_id: 'lazy-2' })],
    });
    expect(loadedLines('potion-copy')).toHaveLength(1);
    text = await metrics(served.embedder.url);
    expect(counter(text, 'heimdex_model_cache_misses_total', 'potion-copy')).toBe(1);
    expect(counter(text, 'heimdex_model_cache_hits_total', 'potion-copy')).toBe(1);
  });

  it('shares one load among concurrent first requests', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => postSearch(call, 'mm-org', { model: 'potion-copy2' })),
    );
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(results.every((r) => r.json.query_model === 'potion-copy2')).toBe(true);
    expect(loadedLines('potion-copy2')).toHaveLength(1);
    const text = await metrics(served.embedder.url);
    expect(counter(text, 'heimdex_model_cache_misses_total', 'potion-copy2')).toBe(6);
  });

  it('never mixes the vectors of two models, even with the same weights', async () => {
    const key = { org_id: 'iso-org', asset_id: 'doc', segment_id: 'p1' };
    const viaDefault = item({ ...key });
    const viaCopy = item({ ...key, model: 'potion-copy' });
    const res = await call('POST', '/internal/embed', { items: [viaDefault, viaCopy] });
    expect(res.status).toBe(200);
    expect(res.json.model).toBe(POTION); // a mixed batch names the default model
    const [a, b] = res.json.results;
    expect(a).toMatchObject({ status: 'ok', model: POTION, point_id: await pointId(viaDefault) });
    expect(b).toMatchObject({
      status: 'ok',
      model: 'potion-copy',
      point_id: await pointId(viaCopy),
    });
    expect(a.point_id).not.toBe(b.point_id);

    for (const [model, expected] of [
      [undefined, a.point_id],
      [POTION, a.point_id],
      ['potion-copy', b.point_id],
    ] as const) {
      const search = await postSearch(call, 'iso-org', {
        limit: 10,
        mode: 'dense',
        ...(model ? { model } : {}),
      });
      expect(search.status).toBe(200);
      expect(search.json.query_model).toBe(model ?? POTION);
      expect(search.json.results.map((r: { point_id: string }) => r.point_id)).toEqual([expected]);
      expect(search.json.results[0].payload.model).toBe(model ?? POTION);
      expect(search.json.results[0].score).toBeGreaterThan(0.99);
    }
    // A model outside EMBEDDING_MODEL_NAME + EMBEDDING_MODELS is unknown, even if its folder exists.
    const unknown = await call('POST', '/internal/embed', {
      items: [item({ ...key, model: 'minilm-l6-v2' })],
    });
    expect(unknown.json.results[0]).toMatchObject({ code: 'unknown_model', retryable: false });
    const search = await postSearch(call, 'iso-org', { model: 'potion-unlisted' });
    expect(search.status).toBe(400);
    expect(search.json.code).toBe('unknown_model');
  });

  it('reports a failed lazy load per item, and loads the model on a later request', async () => {
    const first = await call('POST', '/internal/embed', {
      items: [item({ model: 'potion-late', segment_id: 'late' }), item({ segment_id: 'fine' })],
    });
    expect(first.status).toBe(200);
    expectUnavailable(
      first.json.results[0],
      true,
      'embedding model "potion-late" could not be loaded',
    );
    expect(first.json.results[1]).toMatchObject({ status: 'ok' });
    const search = await postSearch(call, 'mm-org', { model: 'potion-late' });
    expect(search.status).toBe(503);
    expect(search.json).toMatchObject({ code: 'model_unavailable' });
    expect(search.json.detail).toContain('"potion-late"');

    await copyModel(path.join(models, 'potion-late'));
    const retried = await call('POST', '/internal/embed', {
      items: [item({ model: 'potion-late', segment_id: 'late' })],
    });
    expect(retried.json.results[0]).toMatchObject({ status: 'ok', model: 'potion-late' });
  });
});

describe('a lazily loaded model of another dimension than the store', () => {
  const { call, logs } = useEmbedder('models-dim', async (dir) => {
    const models = await modelsFolder(dir, ['potion-copy']);
    const dataDir = path.join(dir, 'vectors');
    const old = new LanceDbStore({ dataDir });
    await old.init(384);
    await old.close();
    // The default model's start-up check is off; a lazily loaded model is still checked.
    const config = { ...testConfig({ dataDir }), validateOnStartup: false };
    return servingFrom(config, models, ['potion-copy']);
  });

  it('is refused with a message naming the model, for good', async () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const res = await call('POST', '/internal/embed', {
        items: [item({ model: 'potion-copy' })],
      });
      expectUnavailable(
        res.json.results[0],
        false,
        'embedding model "potion-copy" produces 64-dimensional vectors, but the vector store holds 384-dimensional vectors',
      );
    }
    const search = await postSearch(call, 'mm-org', { model: 'potion-copy' });
    expect(search.status).toBe(503);
    expect(search.json.detail).toContain('"potion-copy" produces 64-dimensional vectors');
    // Loaded once, refused, never loaded again.
    const refused = logs.filter((l) => l.includes('model refused: dimension mismatch'));
    expect(refused).toHaveLength(1);
  });
});
