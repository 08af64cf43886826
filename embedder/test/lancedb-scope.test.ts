/**
 * The embedded store once its ANN index serves: a small search scope (organisation, model,
 * version) is searched exactly by a prefiltered flat scan that reads the scope's rows and no
 * others (LanceDB's own analyzePlan shows it), a large one through the index.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { LanceDbStore } from '../src/store/lancedb.js';
import type { LanceDbStoreOptions } from '../src/store/lancedb.js';
import { wholeText } from '../src/store/types.js';
import type { VectorPoint } from '../src/store/types.js';
import { seededRand, tempDir } from './helpers.js';

const DIM = 16;
const MODEL = 'm';

function points(org: string, n: number, seed: number): VectorPoint[] {
  const rand = seededRand(seed);
  return Array.from({ length: n }, (_, i) => {
    const id = randomUUID();
    const vector = Float32Array.from({ length: DIM }, () => rand());
    return {
      id,
      vector,
      payload: {
        ...wholeText(id, 10),
        org_id: org,
        asset_id: 'a',
        segment_id: `s${i}`,
        modality: 'text',
        model: MODEL,
        model_ver: '1',
        text_len: 10,
        token_count: 3,
        truncated: false,
        truncated_len: 10,
        job_id: randomUUID(),
        seq: i + 1,
        embedded_at: new Date(1_700_000_000_000 + i).toISOString(),
      },
    };
  });
}

/** The exact top `k` ids of `pts` by cosine to `q`. */
function exactTop(pts: readonly VectorPoint[], q: Float32Array, k: number): string[] {
  const cos = (v: Float32Array) => {
    let dot = 0;
    let nv = 0;
    let nq = 0;
    for (let i = 0; i < DIM; i++) {
      dot += (v[i] as number) * (q[i] as number);
      nv += (v[i] as number) ** 2;
      nq += (q[i] as number) ** 2;
    }
    return dot / Math.sqrt(nv * nq);
  };
  return [...pts]
    .sort((a, b) => cos(b.vector) - cos(a.vector))
    .slice(0, k)
    .map((p) => p.id);
}

/** `Operator.metric` → the largest count in an analyzePlan text (K suffixes expanded). */
function counts(plan: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of plan.split('\n')) {
    const op = /^\s*([A-Za-z]+)[:,]/.exec(line)?.[1];
    const metrics = /metrics=\[([^\]]*)\]/.exec(line)?.[1];
    if (!op || !metrics) continue;
    for (const m of metrics.matchAll(
      /\b(rows_scanned|index_comparisons|output_rows)=([\d.]+)( K)?/g,
    )) {
      const key = `${op}.${m[1] as string}`;
      const n = Number(m[2]) * (m[3] ? 1000 : 1);
      out.set(key, Math.max(out.get(key) ?? 0, n));
    }
  }
  return out;
}

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function indexedStore(options: Partial<LanceDbStoreOptions>) {
  const { dir, remove } = await tempDir('lance-scope');
  const store = new LanceDbStore({
    dataDir: dir,
    vectorIndexThreshold: 600,
    memoryIndexMaxRows: 0,
    ...options,
  });
  cleanup = async () => {
    await store.close();
    await remove();
  };
  await store.init(DIM);
  const big = points('big', 640, 1);
  const small = points('small', 24, 2);
  await store.upsert(big);
  await store.upsert(small);
  await store.idle();
  expect(await store.hasAnnIndex()).toBe(true);
  return { store, big, small };
}

describe('LanceDB search scopes once the ANN index serves', () => {
  it("searches a small tenant exactly, reading only that tenant's rows", async () => {
    const { store, small } = await indexedStore({ exactScopeMaxRows: 100 });
    const q = (small[3] as VectorPoint).vector;
    const params = { orgId: 'small', model: MODEL, modelVer: '1', vector: q, limit: 10 };
    const hits = await store.search(params);
    expect(hits.map((h) => h.id)).toEqual(exactTop(small, q, 10));
    const plan = counts((await store.explainDenseSearch(params)) ?? '');
    // A flat scan: no ANN operator; every operator read or scored at most the tenant's 24 rows.
    expect(plan.has('ANNSubIndex.index_comparisons')).toBe(false);
    expect(plan.get('LanceRead.rows_scanned')).toBe(24);
    expect(plan.get('KNNVectorDistance.output_rows')).toBe(24);
  });

  it('searches a large scope through the ANN index', async () => {
    const { store, big } = await indexedStore({ exactScopeMaxRows: 100 });
    const q = (big[7] as VectorPoint).vector;
    const params = { orgId: 'big', model: MODEL, modelVer: '1', vector: q, limit: 5 };
    const hits = await store.search(params);
    expect(hits[0]?.id).toBe(big[7]?.id);
    expect(hits.every((h) => h.payload.org_id === 'big')).toBe(true);
    const plan = counts((await store.explainDenseSearch(params)) ?? '');
    expect(plan.has('ANNSubIndex.index_comparisons')).toBe(true);
  });

  it('with exactScopeMaxRows 0, the ANN index serves every scope', async () => {
    const { store, small } = await indexedStore({ exactScopeMaxRows: 0 });
    const q = (small[0] as VectorPoint).vector;
    const params = { orgId: 'small', model: MODEL, modelVer: '1', vector: q, limit: 5 };
    const hits = await store.search(params);
    expect(hits.every((h) => h.payload.org_id === 'small')).toBe(true);
    const plan = counts((await store.explainDenseSearch(params)) ?? '');
    expect(plan.has('ANNSubIndex.index_comparisons')).toBe(true);
  });

  it('has no plan while the in-memory index serves', async () => {
    const { dir, remove } = await tempDir('lance-scope-mem');
    const store = new LanceDbStore({ dataDir: dir });
    cleanup = async () => {
      await store.close();
      await remove();
    };
    await store.init(DIM);
    const pts = points('o', 5, 3);
    await store.upsert(pts);
    const vector = (pts[0] as VectorPoint).vector;
    expect(
      await store.explainDenseSearch({ orgId: 'o', model: MODEL, modelVer: '1', vector, limit: 3 }),
    ).toBeNull();
  });
});
