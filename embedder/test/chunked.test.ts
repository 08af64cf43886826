/**
 * Long texts through the embedder's HTTP API: chunking into token windows (one point per chunk),
 * segment-grouped search, and the seed semantics per segment (idempotency, overwrite, latest-wins,
 * deletes), with the real potion-base-2M tokenizer (window 512 tokens).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkPointId, pointId } from '../../contract/ids.js';
import { startEmbedder } from '../src/server.js';
import type { RunningEmbedder } from '../src/server.js';
import { POTION, client, embedItem, tempDir, testConfig } from './helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let embedder: RunningEmbedder;
let call: ReturnType<typeof client>;

beforeAll(async () => {
  tmp = await tempDir('chunked');
  embedder = await startEmbedder(testConfig({ dataDir: tmp.dir }), { log: () => undefined });
  call = client(embedder.url);
});

afterAll(async () => {
  await embedder?.close();
  await tmp?.remove();
});

interface Hit {
  point_id: string;
  score: number;
  payload: Record<string, unknown> & {
    segment_id: string;
    segment_point_id: string;
    chunk_index: number;
    chunk_count: number;
    chunk_start: number;
    chunk_end: number;
    seq: number;
  };
}

/** Sentences about one subject each, so that a query finds its passage. */
const FILLER = [
  'Glaciers carve deep valleys as they creep downhill over thousands of years.',
  'Tidal pools shelter anemones, crabs and small fish between the rocks at low tide.',
  'Desert plants store water in thick stems and open their pores only at night.',
  'Volcanic soil is rich in minerals, which is why vineyards thrive on old lava slopes.',
  'Migratory birds navigate by the stars, the sun and the earth’s magnetic field.',
];

/** A long text: the filler repeated, with `needle` (if any) near the end, far past any window. */
function longText(repeats: number, needle = ''): string {
  const body = Array.from({ length: repeats }, (_, i) => FILLER[i % FILLER.length]).join(' ');
  return needle ? `${body} ${needle} ${FILLER[0]}` : body;
}

const codePoints = (s: string) => [...s].length;

async function embed(org: string, over: Record<string, unknown>) {
  const res = await call('POST', '/internal/embed', { items: [embedItem(org, over)] });
  expect(res.status).toBe(200);
  return res.json.results[0] as Record<string, unknown> & {
    status: string;
    point_id: string;
    chunk_count: number;
    applied: boolean;
  };
}

async function search(org: string, body: Record<string, unknown>): Promise<Hit[]> {
  const res = await call('POST', '/internal/search', { org_id: org, limit: 10, ...body });
  expect(res.status).toBe(200);
  return res.json.results as Hit[];
}

/** Every stored chunk of an org's segment, by chunk index (a chunk-mode keyword search). */
async function chunksOf(org: string, segment: string, query: string): Promise<Hit[]> {
  const hits = await search(org, {
    query_text: query,
    mode: 'dense',
    group_by: 'chunk',
    limit: 100,
    filters: { segment_ids: [segment] },
  });
  return hits.sort((a, b) => a.payload.chunk_index - b.payload.chunk_index);
}

describe('chunking long texts', () => {
  it('keeps a text that fits as one point with the id it always had', async () => {
    const r = await embed('fit-org', { text: FILLER[0] });
    const key = {
      org_id: 'fit-org',
      asset_id: 'a1',
      segment_id: 's1',
      model: POTION,
      model_ver: '1',
    };
    expect(r).toMatchObject({ status: 'ok', chunk_count: 1, truncated: false, applied: true });
    expect(r.point_id).toBe(await pointId(key));
    const [hit] = await chunksOf('fit-org', 's1', FILLER[0] as string);
    expect(hit?.point_id).toBe(r.point_id);
    expect(hit?.payload).toMatchObject({
      segment_point_id: r.point_id,
      chunk_index: 0,
      chunk_count: 1,
      chunk_start: 0,
      chunk_end: codePoints(FILLER[0] as string),
    });
  });

  it('splits a text longer than the window into overlapping chunks that cover all of it', async () => {
    const text = longText(120);
    const r = await embed('split-org', { text });
    expect(r).toMatchObject({ status: 'ok', truncated: false, text_len: codePoints(text) });
    expect(r.truncated_len).toBe(codePoints(text));
    expect(r.chunk_count).toBeGreaterThan(2);
    const chunks = await chunksOf('split-org', 's1', FILLER[1] as string);
    expect(chunks.map((c) => c.payload.chunk_index)).toEqual(
      Array.from({ length: r.chunk_count }, (_, i) => i),
    );
    const key = {
      org_id: 'split-org',
      asset_id: 'a1',
      segment_id: 's1',
      model: POTION,
      model_ver: '1',
    };
    for (const c of chunks) {
      expect(c.point_id).toBe(await chunkPointId(key, c.payload.chunk_index));
      expect(c.payload.segment_point_id).toBe(r.point_id);
      expect(c.payload.chunk_count).toBe(r.chunk_count);
    }
    expect(chunks[0]?.payload.chunk_start).toBe(0);
    expect(chunks.at(-1)?.payload.chunk_end).toBe(codePoints(text));
    for (let i = 1; i < chunks.length; i++) {
      const prev = chunks[i - 1]!.payload;
      const next = chunks[i]!.payload;
      // No gap, and overlapping (the default overlap is 32 tokens).
      expect(next.chunk_start).toBeGreaterThan(prev.chunk_start);
      expect(next.chunk_start).toBeLessThan(prev.chunk_end);
    }
  });

  it('finds a sentence past the window with chunking; "truncate" embeds only the first window', async () => {
    const needle = 'The quokka named Bartholomew juggles seventeen pineapples every Tuesday.';
    const text = longText(150, needle);
    await embed('needle-org', { segment_id: 'hay', text });
    await embed('needle-org', { segment_id: 'hay-cut', text, chunking: 'truncate' });
    await embed('needle-org', { segment_id: 'other', text: FILLER[2] });
    const at = codePoints(text.slice(0, text.indexOf(needle)));
    for (const mode of ['hybrid', 'dense']) {
      const [top] = await search('needle-org', {
        query_text: 'Bartholomew the quokka juggles pineapples',
        mode,
      });
      expect(top?.payload.segment_id, mode).toBe('hay');
      // The best chunk's offsets locate the needle in the client's own copy of the text.
      expect(top!.payload.chunk_index, mode).toBeGreaterThan(0);
      expect(top!.payload.chunk_start, mode).toBeLessThanOrEqual(at);
      expect(top!.payload.chunk_end, mode).toBeGreaterThanOrEqual(at + codePoints(needle));
    }
    // Keyword search scores whole texts, chunked or not ("truncate" limits only the vector):
    // both copies match, each on its first point, which holds the whole text's terms.
    const hits = await search('needle-org', { query_text: 'quokka Bartholomew', mode: 'keyword' });
    expect(hits.map((h) => h.payload.segment_id).sort()).toEqual(['hay', 'hay-cut']);
    expect(hits.map((h) => h.payload.chunk_index)).toEqual([0, 0]);
    expect(hits[0]!.score).toBeCloseTo(hits[1]!.score, 5);
    const dense = await search('needle-org', {
      query_text: 'Bartholomew the quokka juggles pineapples',
      mode: 'dense',
      filters: { segment_ids: ['hay', 'hay-cut'] },
    });
    expect(dense.map((h) => h.payload.segment_id)).toEqual(['hay', 'hay-cut']);
    expect(dense[0]!.score).toBeGreaterThan(dense[1]!.score + 0.1);
  });

  it('honours max_tokens and overlap_tokens, and refuses an overlap not below max_tokens', async () => {
    const text = longText(10);
    const small = await embed('window-org', {
      text,
      chunking: { max_tokens: 32, overlap_tokens: 0 },
    });
    const overlapping = await embed('window-org', {
      segment_id: 's2',
      text,
      chunking: { max_tokens: 32, overlap_tokens: 16 },
    });
    expect(small.chunk_count).toBeGreaterThan(3);
    expect(overlapping.chunk_count).toBeGreaterThan(small.chunk_count);
    const adjacent = await chunksOf('window-org', 's1', FILLER[0] as string);
    for (let i = 1; i < adjacent.length; i++) {
      expect(adjacent[i]!.payload.chunk_start).toBe(adjacent[i - 1]!.payload.chunk_end);
    }
    const bad = await call('POST', '/internal/embed', {
      items: [embedItem('window-org', { chunking: { max_tokens: 32, overlap_tokens: 32 } })],
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json)).toContain('items.0.chunking.overlap_tokens');
  });
});

describe('segment semantics with chunks', () => {
  const window = { max_tokens: 24, overlap_tokens: 4 };

  it('an identical redelivery is idempotent', async () => {
    const job = { job_id: randomUUID(), seq: 5, text: longText(6), chunking: window };
    const first = await embed('idem-org', job);
    const again = await embed('idem-org', job);
    expect(again).toEqual(first);
    expect((await chunksOf('idem-org', 's1', FILLER[0] as string)).length).toBe(first.chunk_count);
  });

  it('a shorter new text leaves no chunk of the old one', async () => {
    const old = await embed('over-org', { seq: 1, text: longText(8), chunking: window });
    expect(old.chunk_count).toBeGreaterThan(3);
    const now = await embed('over-org', { seq: 2, text: FILLER[3], chunking: window });
    expect(now).toMatchObject({ chunk_count: 1, applied: true });
    const chunks = await chunksOf('over-org', 's1', FILLER[3] as string);
    expect(chunks.map((c) => [c.payload.chunk_index, c.payload.seq])).toEqual([[0, 2]]);
  });

  it('a late older job never replaces a newer chunk set, not even its extra chunks', async () => {
    const newer = await embed('late-org', { seq: 9, text: FILLER[4], chunking: window });
    const older = await embed('late-org', { seq: 3, text: longText(8), chunking: window });
    expect(newer.applied).toBe(true);
    expect(older).toMatchObject({ status: 'ok', applied: false });
    const chunks = await chunksOf('late-org', 's1', FILLER[0] as string);
    expect(chunks.map((c) => [c.payload.chunk_index, c.payload.seq])).toEqual([[0, 9]]);
  });

  it('deletes every chunk by the segment point id, and by asset', async () => {
    const a = await embed('del-org', { segment_id: 's1', text: longText(8), chunking: window });
    await embed('del-org', { segment_id: 's2', text: longText(7), chunking: window });
    const byPoint = await call('POST', '/internal/delete', {
      org_id: 'del-org',
      point_id: a.point_id,
    });
    expect(byPoint.json.deleted).toBe(a.chunk_count);
    expect(await chunksOf('del-org', 's1', FILLER[0] as string)).toEqual([]);
    expect((await chunksOf('del-org', 's2', FILLER[0] as string)).length).toBeGreaterThan(1);
    const byAsset = await call('POST', '/internal/delete', { org_id: 'del-org', asset_id: 'a1' });
    expect(byAsset.json.deleted).toBeGreaterThan(1);
    expect(await chunksOf('del-org', 's2', FILLER[0] as string)).toEqual([]);
  });
});

describe('segment search', () => {
  it('returns one result per segment, limit counting segments, in every mode', async () => {
    const window = { max_tokens: 24, overlap_tokens: 0 };
    // Three segments of many near-identical chunks, and two short ones.
    for (const s of ['s1', 's2', 's3'])
      await embed('group-org', { segment_id: s, text: longText(12), chunking: window });
    await embed('group-org', { segment_id: 's4', text: FILLER[0] });
    await embed('group-org', { segment_id: 's5', text: FILLER[1] });
    for (const mode of ['dense', 'keyword', 'hybrid']) {
      const hits = await search('group-org', { query_text: FILLER[0], mode, limit: 5 });
      const segments = hits.map((h) => h.payload.segment_id);
      expect(new Set(segments).size, mode).toBe(segments.length);
      expect(segments.length, mode).toBe(mode === 'keyword' ? 4 : 5);
      for (const h of hits) expect(h.point_id).toBe(h.payload.segment_point_id);
      const chunks = await search('group-org', {
        query_text: FILLER[0],
        mode,
        limit: 5,
        group_by: 'chunk',
      });
      if (mode === 'keyword') {
        // BM25 scores whole texts: a segment's terms are on its first chunk only.
        expect(chunks.map((h) => h.payload.chunk_index)).toEqual([0, 0, 0, 0]);
        expect(chunks.map((h) => h.point_id).sort()).toEqual(
          hits.map((h) => h.payload.segment_point_id).sort(),
        );
      } else {
        expect(chunks.length, mode).toBe(5);
        expect(new Set(chunks.map((h) => h.payload.segment_id)).size, mode).toBeLessThan(5);
      }
    }
  });
});
