import { describe, expect, it } from 'vitest';
import { MemoryIndex } from '../src/store/memory-index.js';
import type { PointPayload } from '../src/store/types.js';
import { cosine, seededRand } from './helpers.js';

const DIM = 16;

function payload(org: string, i: number): PointPayload {
  return {
    org_id: org,
    asset_id: `a${i % 10}`,
    segment_id: `s${i}`,
    modality: 'text',
    model: 'm',
    model_ver: '1',
    text_len: 1,
    token_count: 1,
    truncated: false,
    truncated_len: 1,
    segment_point_id: `p${i}`,
    chunk_index: 0,
    chunk_count: 1,
    chunk_start: 0,
    chunk_end: 1,
    job_id: `j${i}`,
    seq: i,
    embedded_at: new Date(1_700_000_000_000 + i).toISOString(),
  };
}

function vectors(n: number, seed: number): Float32Array[] {
  const rand = seededRand(seed);
  return Array.from({ length: n }, () => Float32Array.from({ length: DIM }, rand));
}

/** Search parameters in the org the tests fill ('acme', model 'm', version '1'). */
const inAcme = (vector: Float32Array, limit: number) =>
  ({ vector, orgId: 'acme', model: 'm', modelVer: '1', limit }) as const;

/** The exact top-k ids and scores over the points `keep` selects, by brute force. */
function bruteForce(vs: Float32Array[], q: Float32Array, keep: (i: number) => boolean, k: number) {
  return vs
    .map((v, i) => ({ id: `p${i}`, score: cosine(v, q), i }))
    .filter((x) => keep(x.i))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}

describe('MemoryIndex', () => {
  it('returns the exact top-k by cosine over a partition larger than one scan chunk', async () => {
    const index = new MemoryIndex(DIM);
    const vs = vectors(20_000, 3);
    vs.forEach((v, i) => index.put(`p${i}`, v, payload(i % 2 ? 'acme' : 'globex', i)));
    const [q] = vectors(1, 99) as [Float32Array];
    const hits = await index.search(inAcme(q, 25));
    const expected = bruteForce(vs, q, (i) => i % 2 === 1, 25);
    expect(hits.map((h) => h.id)).toEqual(expected.map((x) => x.id));
    hits.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]?.score as number, 5));
  });

  it('stays consistent when writes and deletes land while a scan yields', async () => {
    const index = new MemoryIndex(DIM);
    const vs = vectors(30_000, 5);
    vs.forEach((v, i) => index.put(`p${i}`, v, payload('acme', i)));
    const [q] = vectors(1, 7) as [Float32Array];
    const pending = index.search(inAcme(q, 10));
    // During the scan's first yield: delete half, overwrite some, add more (regrows the arrays).
    expect(index.deleteWhere('acme', (_id, p) => p.seq % 2 === 0)).toBe(15_000);
    for (const [i, v] of vectors(40_000, 11).entries()) index.put(`n${i}`, v, payload('acme', i));
    const hits = await pending;
    expect(hits.length).toBe(10);
    for (const h of hits) expect(h.payload.org_id).toBe('acme');
    expect(index.size).toBe(55_000);
    // Once quiet, a new search sees exactly the current points.
    const after = await index.search(inAcme(q, 100));
    for (const h of after)
      expect(h.id.startsWith('n') || Number(h.id.slice(1)) % 2 === 1).toBe(true);
  });

  it('moves a point between partitions when its model version changes, and deletes per org', async () => {
    const index = new MemoryIndex(DIM);
    const [v] = vectors(1, 1) as [Float32Array];
    index.put('x', v, payload('acme', 1));
    index.put('x', v, { ...payload('acme', 2), model_ver: '2' });
    const base = { vector: v, orgId: 'acme', model: 'm', limit: 5 };
    expect(await index.search({ ...base, modelVer: '1' })).toEqual([]);
    expect((await index.search({ ...base, modelVer: '2' }))[0]?.score).toBeCloseTo(1, 6);
    expect(index.deleteWhere('globex', () => true)).toBe(0);
    expect(index.deleteWhere('acme', (id) => id === 'x')).toBe(1);
    expect(index.size).toBe(0);
  });

  it('holds a large partition in 8,192-row blocks, moves points across them on delete and releases an emptied block', async () => {
    const index = new MemoryIndex(DIM);
    const n = 8192 + 5;
    const vs = vectors(n, 11);
    vs.forEach((v, i) => index.put(`p${i}`, v, payload('acme', i)));
    const row = (DIM + 1) * 4;
    // One full block and a second one of 16 rows (its first allocation).
    expect(index.vectorBytes).toBe((8192 + 16) * row);
    // Delete from the first block: the last points (in the second block) move into the holes.
    const gone = new Set(['p0', 'p100', 'p8191', 'p8193', 'p8196']);
    expect(index.deleteWhere('acme', (id) => gone.has(id))).toBe(5);
    expect(index.size).toBe(n - 5);
    // 8,192 rows left: the second block emptied and was released.
    expect(index.vectorBytes).toBe(8192 * row);
    const [q] = vectors(1, 12) as [Float32Array];
    const hits = await index.search(inAcme(q, 50));
    const expected = bruteForce(vs, q, (i) => !gone.has(`p${i}`), 50);
    expect(hits.map((h) => h.id)).toEqual(expected.map((x) => x.id));
    hits.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]?.score as number, 5));
    // The moved points kept their own vectors: each finds itself with a cosine of 1.
    for (const id of ['p8192', 'p8194', 'p8195']) {
      const self = vs[Number(id.slice(1))] as Float32Array;
      const found = await index.search(inAcme(self, 5));
      expect(found.find((h) => h.id === id)?.score).toBeCloseTo(1, 5);
    }
  });

  it('reports the bytes its vector and norm arrays hold, spare capacity included', () => {
    const index = new MemoryIndex(DIM);
    expect(index.vectorBytes).toBe(0);
    const vs = vectors(20, 3);
    vs.forEach((v, i) => index.put(`p${i}`, v, payload('acme', 1)));
    // One partition grown 16 → 32 slots: 32 × (DIM floats + 1 norm) × 4 bytes.
    expect(index.vectorBytes).toBe(32 * (DIM + 1) * 4);
    index.put('other', vs[0]!, payload('globex', 1));
    expect(index.vectorBytes).toBe((32 + 16) * (DIM + 1) * 4);
  });
});
