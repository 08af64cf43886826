/**
 * Contract test of the Qdrant adapter without a Qdrant server: a tiny node:http server records
 * every request the adapter sends and answers with Qdrant-shaped JSON (`{result, status, time}`)
 * from an in-memory collection. The assertions pin the REST calls to Qdrant's API
 * (https://api.qdrant.tech/api-reference), the tenant filter on every read and delete, and that
 * no text ever leaves the embedder.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pointId } from '../../contract/ids.js';
import { startEmbedder } from '../src/server.js';
import type { RunningEmbedder } from '../src/server.js';
import { dbsfNormalize } from '../src/store/fusion.js';
import { QdrantStore } from '../src/store/qdrant.js';
import { KeywordIndexUnavailable } from '../src/store/types.js';
import type { PointPayload, VectorPoint } from '../src/store/types.js';
import { DOG, PAYLOAD_KEYS, client, embedItem, postSearch, testConfig } from './helpers.js';
import type { Json } from './helpers.js';

interface Recorded {
  apiKey: string | undefined;
  method: string;
  path: string;
  query: string;
  body: Json;
  raw: string;
}

interface Condition {
  key?: string;
  match?: { value?: unknown; any?: unknown[] };
  has_id?: string[];
  range?: { lte?: number; lt?: number };
  must?: Condition[];
  should?: Condition[];
}

/** Qdrant's filter semantics for the conditions the adapter uses. */
function matches(point: { id: string; payload: Record<string, unknown> }, c: Condition): boolean {
  if (c.has_id) return c.has_id.includes(point.id);
  if (c.key && c.match) {
    const value = point.payload[c.key];
    return c.match.any ? c.match.any.includes(value) : value === c.match.value;
  }
  if (c.key && c.range) {
    // A point without the field does not match a range (Qdrant's semantics).
    if (point.payload[c.key] === undefined) return false;
    const x = Number(point.payload[c.key]);
    return x <= (c.range.lte ?? Infinity) && x < (c.range.lt ?? Infinity);
  }
  const must = c.must ?? [];
  const should = c.should ?? [];
  return (
    must.every((m) => matches(point, m)) &&
    (should.length === 0 || should.some((s) => matches(point, s)))
  );
}

class FakeQdrant {
  readonly requests: Recorded[] = [];
  collection: { size: number; sparse: Record<string, unknown> | null } | null = null;
  readonly points = new Map<
    string,
    {
      id: string;
      vector: number[];
      sparse?: { indices: number[]; values: number[] };
      payload: Record<string, unknown>;
    }
  >();
  failNext = 0;
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  reset(): void {
    this.requests.length = 0;
    this.collection = null;
    this.points.clear();
    this.failNext = 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://x');
    const body: Json = raw ? JSON.parse(raw) : null;
    const apiKey = req.headers['api-key'];
    this.requests.push({
      apiKey: typeof apiKey === 'string' ? apiKey : undefined,
      method: req.method ?? '',
      path: url.pathname,
      query: url.search,
      body,
      raw,
    });
    const reply = (status: number, result: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          status < 300
            ? { result, status: 'ok', time: 0.001 }
            : { status: { error: String(result) }, time: 0 },
        ),
      );
    };
    if (this.failNext > 0) {
      this.failNext--;
      return reply(500, 'Service internal error: disk full');
    }
    const route = `${req.method} ${url.pathname.replace(/^\/collections\/[^/]+/, '/collections/{c}')}`;
    const filtered = (filter: Condition | undefined) =>
      [...this.points.values()].filter((p) => !filter || matches(p, filter));
    switch (route) {
      case 'GET /collections/{c}/exists':
        return reply(200, { exists: this.collection !== null });
      case 'PUT /collections/{c}':
        this.collection = { size: body.vectors.size, sparse: body.sparse_vectors ?? null };
        return reply(200, true);
      case 'GET /collections/{c}':
        if (!this.collection) return reply(404, 'Not found: Collection');
        return reply(200, {
          status: 'green',
          config: {
            params: {
              vectors: { size: this.collection.size, distance: 'Cosine' },
              ...(this.collection.sparse ? { sparse_vectors: this.collection.sparse } : {}),
            },
          },
        });
      case 'PUT /collections/{c}/index':
        return reply(200, { operation_id: 1, status: 'completed' });
      case 'POST /collections/{c}/points': // retrieve by ids
        return reply(
          200,
          (body.ids as string[])
            .filter((id) => this.points.has(id))
            .map((id) => ({ id, payload: { seq: this.points.get(id)?.payload.seq } })),
        );
      case 'PUT /collections/{c}/points': {
        for (const p of body.points as {
          id: string;
          vector: number[] | Record<string, Json>;
          payload: Record<string, unknown>;
        }[]) {
          const existing = this.points.get(p.id);
          if (!existing || !body.update_filter || matches(existing, body.update_filter)) {
            // A point's vectors: the unnamed dense one, or {"": dense, keyword: sparse}.
            const named = !Array.isArray(p.vector);
            this.points.set(p.id, {
              id: p.id,
              vector: named ? (p.vector as Record<string, Json>)[''] : p.vector,
              ...(named ? { sparse: (p.vector as Record<string, Json>).keyword } : {}),
              payload: p.payload,
            });
          }
        }
        return reply(200, { operation_id: 2, status: 'completed' });
      }
      case 'POST /collections/{c}/points/query':
        return reply(200, { points: this.query(body) });
      case 'POST /collections/{c}/points/query/batch':
        return reply(
          200,
          (body.searches as Json[]).map((search) => ({ points: this.query(search) })),
        );
      case 'POST /collections/{c}/points/scroll': {
        // Ordered by id; `offset` is the first id of the page.
        const all = filtered(body.filter).sort((a, b) => (a.id < b.id ? -1 : 1));
        const start = body.offset ? all.findIndex((p) => p.id >= body.offset) : 0;
        const page = all.slice(start, start + body.limit);
        const fields = body.with_payload as string[];
        return reply(200, {
          points: page.map((p) => ({
            id: p.id,
            payload: Object.fromEntries(
              fields.filter((f) => f in p.payload).map((f) => [f, p.payload[f]]),
            ),
          })),
          next_page_offset: all[start + body.limit]?.id ?? null,
        });
      }
      case 'POST /collections/{c}/points/count':
        return reply(200, { count: filtered(body.filter).length });
      case 'POST /collections/{c}/points/delete':
        for (const p of filtered(body.filter)) this.points.delete(p.id);
        return reply(200, { operation_id: 3, status: 'completed' });
      default:
        return reply(404, `no route ${route}`);
    }
  }

  /**
   * The Query API for the shapes the adapter sends: a dense vector, a sparse one (`using`,
   * plain dot product: the fake has no idf), or prefetches fused by weighted RRF.
   */
  private query(body: Json): { id: string; version: number; score: number; payload: unknown }[] {
    const candidates = [...this.points.values()].filter(
      (p) => !body.filter || matches(p, body.filter),
    );
    let scored: { id: string; score: number }[];
    if (body.prefetch && body.query.fusion === 'dbsf') {
      // Qdrant's DBSF: each prefetch's scores by mean ± 3 sample sd onto [0, 1], summed.
      const fused = new Map<string, number>();
      for (const prefetch of body.prefetch as Json[]) {
        const hits = this.query(prefetch);
        const mean = hits.reduce((t, h) => t + h.score, 0) / hits.length;
        const sd = Math.sqrt(
          hits.reduce((t, h) => t + (h.score - mean) ** 2, 0) / (hits.length - 1),
        );
        for (const hit of hits) {
          const add = hits.length < 2 || sd === 0 ? 0.5 : (hit.score - mean + 3 * sd) / (6 * sd);
          fused.set(hit.id, (fused.get(hit.id) ?? 0) + add);
        }
      }
      scored = [...fused].map(([id, score]) => ({ id, score }));
    } else if (body.prefetch) {
      const { k, weights } = body.query.rrf as { k: number; weights: number[] };
      const fused = new Map<string, number>();
      (body.prefetch as Json[]).forEach((prefetch, source) =>
        this.query(prefetch).forEach((hit, pos) => {
          const add = 1 / ((pos + 1) / (weights[source] as number) + k - 1);
          fused.set(hit.id, (fused.get(hit.id) ?? 0) + add);
        }),
      );
      scored = [...fused].map(([id, score]) => ({ id, score }));
    } else if (body.using === 'keyword') {
      const { indices, values } = body.query as { indices: number[]; values: number[] };
      scored = candidates.flatMap((p) => {
        let score = 0;
        p.sparse?.indices.forEach((term, i) => {
          const at = indices.indexOf(term);
          if (at >= 0) score += (values[at] as number) * (p.sparse?.values[i] as number);
        });
        return score > 0 ? [{ id: p.id, score }] : [];
      });
    } else {
      const q = body.query as number[];
      scored = candidates.map((p) => ({
        id: p.id,
        score: p.vector.reduce((s, x, i) => s + x * (q[i] ?? 0), 0),
      }));
    }
    return scored
      .sort((a, b) => b.score - a.score)
      .slice(0, body.limit)
      .map((s) => ({
        ...s,
        version: 1,
        payload: body.with_payload === false ? undefined : this.points.get(s.id)?.payload,
      }));
  }
}

const fake = new FakeQdrant();
const COLLECTION = 'heimdex_contract';
const ORG_FILTER = { key: 'org_id', match: { value: 'acme' } };

beforeAll(() => fake.start());
afterAll(() => fake.stop());
beforeEach(() => fake.reset());

const calls = (method: string, suffix: string) =>
  fake.requests.filter(
    (r) => r.method === method && r.path === `/collections/${COLLECTION}${suffix}`,
  );

async function point(segment: string, seq: number, vector: number[]): Promise<VectorPoint> {
  const payload: PointPayload = {
    org_id: 'acme',
    asset_id: 'a1',
    segment_id: segment,
    modality: 'text',
    model: 'm',
    model_ver: '1',
    text_len: 5,
    token_count: 2,
    truncated: false,
    truncated_len: 5,
    segment_point_id: '',
    chunk_index: 0,
    chunk_count: 1,
    chunk_start: 0,
    chunk_end: 5,
    job_id: randomUUID(),
    seq,
    embedded_at: new Date().toISOString(),
  };
  const id = await pointId(payload);
  return { id, vector: Float32Array.from(vector), payload: { ...payload, segment_point_id: id } };
}

describe('QdrantStore speaks Qdrant REST', () => {
  const store = () => new QdrantStore({ url: fake.url, collection: COLLECTION });

  it('creates a cosine collection of the model dimension and its payload indexes', async () => {
    expect(await store().init(4)).toEqual({ dim: 4, created: true });
    expect(calls('GET', '/exists')).toHaveLength(1);
    const [create] = calls('PUT', '');
    expect(create?.body).toMatchObject({
      vectors: { size: 4, distance: 'Cosine' },
      sparse_vectors: { keyword: { modifier: 'idf' } },
    });
    const indexes = calls('PUT', '/index');
    expect(indexes.map((r) => r.query)).toEqual(indexes.map(() => '?wait=true'));
    expect(indexes.map((r) => r.body)).toEqual([
      { field_name: 'org_id', field_schema: { type: 'keyword', is_tenant: true } },
      { field_name: 'asset_id', field_schema: 'keyword' },
      { field_name: 'segment_id', field_schema: 'keyword' },
      { field_name: 'segment_point_id', field_schema: 'keyword' },
      { field_name: 'model', field_schema: 'keyword' },
      { field_name: 'model_ver', field_schema: 'keyword' },
      { field_name: 'seq', field_schema: 'integer' },
      { field_name: 'truncated', field_schema: 'bool' },
      { field_name: 'embedded_at', field_schema: 'datetime' },
    ]);

    // An existing collection is not re-created, and its own size is reported.
    fake.requests.length = 0;
    expect(await store().init(8)).toEqual({ dim: 4, created: false });
    expect(calls('PUT', '')).toHaveLength(0);
  });

  it('keeps keyword terms in a sparse vector, and fuses dense and keyword prefetches in one query', async () => {
    const s = new QdrantStore({ url: fake.url, collection: COLLECTION, keywordAvgLength: 4 });
    await s.init(4);
    expect(s.keywordIndex).toBe(true);
    const terms = {
      ids: Uint32Array.from([7, 4_000_000_000]),
      tfs: Uint32Array.from([2, 1]),
      length: 4,
    };
    const a = { ...(await point('s1', 1, [1, 0, 0, 0])), terms };
    const b = await point('s2', 2, [0, 1, 0, 0]);
    await s.upsert([a, b]);
    // The point's vectors: dense unnamed, BM25 term weights under `keyword` (k1 0.9, b 0.4, the
    // configured average length); a point without terms has the dense vector only.
    const [upsert] = calls('PUT', '/points');
    expect(upsert?.body.points[0].vector).toEqual({
      '': [1, 0, 0, 0],
      keyword: {
        indices: [7, 4_000_000_000],
        values: [(2 * 1.9) / (2 + 0.9), 1.9 / (1 + 0.9)].map((v) => expect.closeTo(v, 9)),
      },
    });
    expect(upsert?.body.points[1].vector).toEqual([0, 1, 0, 0]);

    const scope = [
      ORG_FILTER,
      { key: 'model', match: { value: 'm' } },
      { key: 'model_ver', match: { value: '1' } },
    ];
    const base = { orgId: 'acme', model: 'm', modelVer: '1', limit: 5 };
    const query = { ids: Uint32Array.from([7]), tfs: Uint32Array.from([1]), length: 1 };
    fake.requests.length = 0;
    const keyword = await s.search({ ...base, mode: 'keyword', terms: query });
    expect(keyword.map((h) => h.id)).toEqual([a.id]);
    const keywordRequest = {
      query: { indices: [7], values: [1] },
      using: 'keyword',
      filter: { must: scope },
      limit: 5,
      params: { idf: { corpus: { must: scope } } },
    };
    expect(calls('POST', '/points/query')[0]?.body).toEqual({
      ...keywordRequest,
      with_payload: true,
      with_vector: false,
    });

    fake.requests.length = 0;
    const vector = Float32Array.from([0, 1, 0, 0]);
    const hybrid = await s.search({
      ...base,
      mode: 'hybrid',
      vector,
      terms: query,
      fusion: { method: 'rrf', k: 10, weight: 0.25 },
      filters: { truncated: false },
    });
    // One call; the tenant scope and the filters on both prefetches, each 100 deep (the least).
    expect(fake.requests).toHaveLength(1);
    const filter = { must: [...scope, { key: 'truncated', match: { value: false } }] };
    expect(calls('POST', '/points/query')[0]?.body).toEqual({
      prefetch: [
        { query: [0, 1, 0, 0], filter, limit: 100 },
        { ...keywordRequest, filter, limit: 100 },
      ],
      query: { rrf: { k: 10, weights: [0.5, 1.5] } },
      filter,
      limit: 5,
      with_payload: true,
      with_vector: false,
    });
    // b is first by dense (weight 0.5), a first by keyword (weight 1.5): RRF as Qdrant computes.
    expect(hybrid.map((h) => [h.id, h.score])).toEqual([
      [a.id, expect.closeTo(1 / (1 / 1.5 + 9) + 1 / (2 / 0.5 + 9), 9)],
      [b.id, expect.closeTo(1 / (1 / 0.5 + 9), 9)],
    ]);

    // explain: the fused query and both rankings in one batch call.
    fake.requests.length = 0;
    const explained = await s.search({
      ...base,
      mode: 'hybrid',
      vector,
      terms: query,
      explain: true,
    });
    expect(fake.requests.map((r) => r.path)).toEqual([
      `/collections/${COLLECTION}/points/query/batch`,
    ]);
    // The default fusion is Qdrant's own DBSF (equal weights).
    expect(fake.requests[0]?.body.searches[0].query).toEqual({ fusion: 'dbsf' });
    expect(explained.find((h) => h.id === a.id)?.explain).toEqual({
      dense: { rank: 2, score: 0 },
      keyword: { rank: 1, score: expect.closeTo((2 * 1.9) / 2.9, 6) },
    });

    // DBSF with unequal weights (Qdrant's takes none): both rankings in one batch, fused here.
    fake.requests.length = 0;
    const weighted = await s.search({
      ...base,
      mode: 'hybrid',
      vector,
      terms: query,
      fusion: { method: 'dbsf', k: 10, weight: 0.8 },
    });
    expect(fake.requests).toHaveLength(1);
    const searches = fake.requests[0]?.body.searches as Json[];
    expect(searches.map((q) => q.prefetch ?? null)).toEqual([null, null]);
    expect(searches.map((q) => q.limit)).toEqual([100, 100]);
    const denseRanked = [...explained]
      .filter((h) => h.explain?.dense)
      .sort((x, y) => (x.explain!.dense!.rank as number) - (y.explain!.dense!.rank as number));
    const keywordRanked = [...explained]
      .filter((h) => h.explain?.keyword)
      .sort((x, y) => (x.explain!.keyword!.rank as number) - (y.explain!.keyword!.rank as number));
    const d = dbsfNormalize(denseRanked.map((h) => h.explain!.dense!.score));
    const k = dbsfNormalize(keywordRanked.map((h) => h.explain!.keyword!.score));
    const expected = new Map<string, number>();
    denseRanked.forEach((h, i) => expected.set(h.id, 1.6 * d[i]!));
    keywordRanked.forEach((h, i) => expected.set(h.id, (expected.get(h.id) ?? 0) + 0.4 * k[i]!));
    expect(weighted.map((h) => [h.id, h.score])).toEqual(
      [...expected]
        .sort((x, y) => y[1] - x[1])
        .slice(0, weighted.length)
        .map(([id, score]) => [id, expect.closeTo(score, 6)]),
    );
    expect(JSON.stringify(fake.requests)).not.toMatch(/"text"/);
  });

  it('a collection made before the keyword index: keyword search refused, hybrid answers dense', async () => {
    const old = new QdrantStore({ url: fake.url, collection: COLLECTION });
    fake.collection = { size: 4, sparse: null };
    await old.init(4);
    expect(old.keywordIndex).toBe(false);
    const a = {
      ...(await point('s1', 1, [1, 0, 0, 0])),
      terms: { ids: Uint32Array.from([7]), tfs: Uint32Array.from([1]), length: 1 },
    };
    await old.upsert([a]);
    expect(calls('PUT', '/points')[0]?.body.points[0].vector).toEqual([1, 0, 0, 0]);
    const base = { orgId: 'acme', model: 'm', modelVer: '1', limit: 5, terms: a.terms };
    await expect(old.search({ ...base, mode: 'keyword' })).rejects.toThrow(KeywordIndexUnavailable);
    fake.requests.length = 0;
    const hits = await old.search({
      ...base,
      mode: 'hybrid',
      vector: Float32Array.from([1, 0, 0, 0]),
    });
    expect(hits.map((h) => h.id)).toEqual([a.id]);
    expect(calls('POST', '/points/query')[0]?.body.query).toEqual([1, 0, 0, 0]);
  });

  it('writes latest-wins with a conditional upsert, then reads back which points were applied', async () => {
    const s = store();
    await s.init(4);
    const a = await point('s1', 10, [1, 0, 0, 0]);
    const b = await point('s2', 10, [0, 1, 0, 0]);
    expect(await s.upsert([a, b])).toEqual([true, true]);

    fake.requests.length = 0;
    const olderA = { ...(await point('s1', 5, [0, 0, 1, 0])), id: a.id };
    const newerB = { ...(await point('s2', 11, [0, 0, 0, 1])), id: b.id };
    expect(await s.upsert([olderA, newerB])).toEqual([false, true]);

    // First the write: every candidate, each guarded by "stored seq ≤ mine" (Qdrant decides).
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `PUT /collections/${COLLECTION}/points`,
      `POST /collections/${COLLECTION}/points`,
    ]);
    const [upsert] = calls('PUT', '/points');
    expect(upsert?.query).toBe('?wait=true&ordering=medium');
    expect(upsert?.body.points).toEqual([
      { id: a.id, vector: [0, 0, 1, 0], payload: olderA.payload },
      { id: b.id, vector: [0, 0, 0, 1], payload: newerB.payload },
    ]);
    expect(upsert?.body.update_filter).toEqual({
      should: [
        { must: [{ has_id: [a.id] }, { key: 'seq', range: { lte: 5 } }] },
        { must: [{ has_id: [b.id] }, { key: 'seq', range: { lte: 11 } }] },
      ],
    });
    // Then the read-back: a point was applied when the stored seq is its own.
    const [retrieve] = calls('POST', '/points');
    expect(retrieve?.body).toEqual({
      ids: [a.id, b.id],
      with_payload: ['seq'],
      with_vector: false,
    });
    expect(fake.points.get(a.id)?.payload.seq).toBe(10);
    expect(fake.points.get(b.id)?.payload.seq).toBe(11);
  });

  it('writes segments: reads them, writes the newest text, reads them back and deletes the older chunks', async () => {
    const s = store();
    await s.init(4);
    // Segment s1 as three chunks of job 10 (chunk 0's id is the segment's point id).
    const chunks = async (segment: string, count: number, seq: number) => {
      const first = await point(segment, seq, [1, 0, 0, 0]);
      return Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const p = await point(segment, seq, [1, 0, i, 0]);
          const payload = { ...p.payload, job_id: first.payload.job_id, chunk_index: i };
          return {
            ...p,
            id: i === 0 ? first.id : randomUUID(),
            payload: { ...payload, chunk_count: count },
          };
        }),
      );
    };
    const three = await chunks('s1', 3, 10);
    const s1 = three[0]?.id as string;
    // s2: a point written before chunking (no segment field), seq 20.
    const old = await point('s2', 20, [0, 1, 0, 0]);
    const { segment_point_id: _, ...oldPayload } = old.payload;
    fake.points.set(old.id, { id: old.id, vector: [0, 1, 0, 0], payload: oldPayload });
    expect(await s.writeSegments(three)).toEqual([true, true, true]);

    fake.requests.length = 0;
    const one = await chunks('s1', 1, 11);
    const late = await chunks('s2', 2, 19);
    expect(await s.writeSegments([...one, ...late])).toEqual([true, false, false]);
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `POST /collections/${COLLECTION}/points/scroll`,
      `PUT /collections/${COLLECTION}/points`,
      `POST /collections/${COLLECTION}/points/scroll`,
      `POST /collections/${COLLECTION}/points/delete`,
    ]);
    const segmentIds = [s1, old.id];
    const read = {
      filter: {
        must: [ORG_FILTER],
        should: [{ key: 'segment_point_id', match: { any: segmentIds } }, { has_id: segmentIds }],
      },
      limit: 1024,
      with_payload: ['segment_point_id', 'seq'],
      with_vector: false,
    };
    const [before, after] = calls('POST', '/points/scroll');
    expect(before?.body).toEqual(read);
    expect(after?.body).toEqual(read);
    // Only s1's new text is written (s2 holds a newer seq), each point still guarded by its id.
    const [upsert] = calls('PUT', '/points');
    expect(upsert?.body.points.map((p: { id: string }) => p.id)).toEqual([s1]);
    expect(upsert?.body.update_filter).toEqual({
      should: [{ must: [{ has_id: [s1] }, { key: 'seq', range: { lte: 11 } }] }],
    });
    // Then the chunks below s1's newest seq, by segment (and by id, for an old point).
    const [del] = calls('POST', '/points/delete');
    expect(del?.query).toBe('?wait=true&ordering=medium');
    const below = { key: 'seq', range: { lt: 11 } };
    expect(del?.body).toEqual({
      filter: {
        must: [ORG_FILTER],
        should: [
          { must: [{ key: 'segment_point_id', match: { value: s1 } }, below] },
          { must: [{ has_id: [s1] }, below] },
        ],
      },
    });
    expect([...fake.points.keys()].sort()).toEqual([s1, old.id].sort());

    // Nothing older left and nothing newer written: a redelivery is one read and one write.
    fake.requests.length = 0;
    expect(await s.writeSegments(one)).toEqual([true]);
    expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `POST /collections/${COLLECTION}/points/scroll`,
      `PUT /collections/${COLLECTION}/points`,
      `POST /collections/${COLLECTION}/points/scroll`,
    ]);
    // A late job alone: the one read, nothing written.
    fake.requests.length = 0;
    expect(await s.writeSegments(late)).toEqual([false, false]);
    expect(fake.requests).toHaveLength(1);
    expect(JSON.stringify(fake.requests)).not.toMatch(/"text"/);
  });

  it('reads a segment of more points than one scroll page in pages', async () => {
    const s = store();
    await s.init(4);
    const first = await point('s1', 1, [1, 0, 0, 0]);
    const many = Array.from({ length: 1100 }, (_, i) => ({
      ...first,
      id: i === 0 ? first.id : randomUUID(),
      payload: { ...first.payload, chunk_index: i, chunk_count: 1100 },
    }));
    expect((await s.writeSegments(many)).every(Boolean)).toBe(true);
    fake.requests.length = 0;
    expect(await s.writeSegments([{ ...first, payload: { ...first.payload, seq: 2 } }])).toEqual([
      true,
    ]);
    // Two pages before the write, two after (chunk 0 replaced, 1,099 older), then the delete.
    const scrolls = calls('POST', '/points/scroll');
    expect(scrolls.map((r) => r.body.offset ?? null)).toEqual([
      null,
      expect.any(String),
      null,
      expect.any(String),
    ]);
    expect(calls('POST', '/points/delete')).toHaveLength(1);
    expect([...fake.points.keys()]).toEqual([first.id]);
  });

  it('scopes search, count and delete to the organisation', async () => {
    const s = store();
    await s.init(4);
    const a = await point('s1', 1, [1, 0, 0, 0]);
    await s.upsert([a]);
    fake.requests.length = 0;

    const hits = await s.search({
      vector: Float32Array.from([1, 0, 0, 0]),
      orgId: 'acme',
      model: 'm',
      modelVer: '1',
      assetId: 'a1',
      segmentId: 's1',
      limit: 7,
    });
    expect(hits).toEqual([{ id: a.id, score: 1, payload: a.payload }]);
    const [query] = calls('POST', '/points/query');
    expect(query?.body).toEqual({
      query: [1, 0, 0, 0],
      filter: {
        must: [
          ORG_FILTER,
          { key: 'model', match: { value: 'm' } },
          { key: 'model_ver', match: { value: '1' } },
          { key: 'asset_id', match: { value: 'a1' } },
          { key: 'segment_id', match: { value: 's1' } },
        ],
      },
      limit: 7,
      with_payload: true,
      with_vector: false,
    });

    // Payload filters become Qdrant match-any, match-value and datetime-range conditions, after
    // (never instead of) the org condition.
    fake.requests.length = 0;
    await s
      .search({
        vector: Float32Array.from([1, 0, 0, 0]),
        orgId: 'acme',
        model: 'm',
        modelVer: '1',
        filters: {
          assetIds: ['a1', 'a2'],
          segmentIds: ['s1'],
          truncated: false,
          embeddedAfter: '2026-01-01T00:00:00+01:00',
          embeddedBefore: '2026-02-01T00:00:00Z',
        },
        limit: 3,
      })
      .catch(() => undefined);
    expect(calls('POST', '/points/query')[0]?.body).toMatchObject({
      filter: {
        must: [
          ORG_FILTER,
          { key: 'model', match: { value: 'm' } },
          { key: 'model_ver', match: { value: '1' } },
          { key: 'asset_id', match: { any: ['a1', 'a2'] } },
          { key: 'segment_id', match: { any: ['s1'] } },
          { key: 'truncated', match: { value: false } },
          {
            key: 'embedded_at',
            range: { gte: '2025-12-31T23:00:00.000Z', lt: '2026-02-01T00:00:00.000Z' },
          },
        ],
      },
      limit: 3,
    });

    expect(await s.count({ orgId: 'acme' })).toBe(1);
    expect(calls('POST', '/points/count').at(-1)?.body).toEqual({
      filter: { must: [ORG_FILTER] },
      exact: true,
    });

    fake.requests.length = 0;
    expect(await s.delete({ orgId: 'globex', pointId: a.id })).toBe(0);
    expect(await s.delete({ orgId: 'acme', pointId: a.id })).toBe(1);
    expect(await s.delete({ orgId: 'acme', assetId: 'a1' })).toBe(0);
    // A point id deletes its segment: the point, and every point whose segment it is.
    const segment = (org: object) => ({
      must: [org],
      should: [{ has_id: [a.id] }, { key: 'segment_point_id', match: { value: a.id } }],
    });
    const counted = calls('POST', '/points/count').map((r) => r.body.filter);
    expect(counted).toEqual([
      segment({ key: 'org_id', match: { value: 'globex' } }),
      segment(ORG_FILTER),
      { must: [ORG_FILTER, { key: 'asset_id', match: { value: 'a1' } }] },
    ]);
    const [del] = calls('POST', '/points/delete');
    expect(del?.query).toBe('?wait=true&ordering=medium');
    expect(del?.body).toEqual({ filter: segment(ORG_FILTER) });
  });

  it('authenticates with the api-key header', async () => {
    const original = console.warn;
    console.warn = () => undefined; // the client warns about an API key over plain http
    try {
      await new QdrantStore({ url: fake.url, apiKey: 'secret-key', collection: COLLECTION }).init(
        4,
      );
    } finally {
      console.warn = original;
    }
    expect(fake.requests.length).toBeGreaterThan(0);
    expect(
      fake.requests.every((r) => r.apiKey === 'secret-key' && !r.raw.includes('secret-key')),
    ).toBe(true);
  });

  it('reports Qdrant failures as store errors', async () => {
    const s = store();
    await s.init(4);
    fake.failNext = 1;
    await expect(s.upsert([await point('s1', 1, [1, 0, 0, 0])])).rejects.toThrow(
      /could not write points to Qdrant/,
    );
  });
});

/** An embedder on the fake Qdrant; it logs to `log` when given, and nothing otherwise. */
function startOnFakeQdrant(log?: (line: string) => void): Promise<RunningEmbedder> {
  const store = {
    kind: 'qdrant',
    url: fake.url,
    apiKey: null,
    collection: COLLECTION,
    vectorSize: null,
    keywordAvgLength: 128,
  } as const;
  const config = testConfig({ dataDir: '/nonexistent', store });
  return log ? startEmbedder(config, { log }) : startEmbedder({ ...config, logLevel: 'silent' });
}

describe('the embedder on Qdrant', () => {
  let embedder: RunningEmbedder | null = null;
  afterEach(async () => {
    await embedder?.close();
    embedder = null;
  });

  it('answers 503 when Qdrant fails, so the caller retries the batch', async () => {
    const logs: string[] = [];
    embedder = await startOnFakeQdrant((line) => logs.push(line));
    const call = client(embedder.url);
    const canary = `canary-${randomUUID()}`;
    fake.failNext = 1;
    const res = await call('POST', '/internal/embed', {
      items: [embedItem('acme', { text: canary })],
    });
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ code: 'store_unavailable', status: 503 });
    expect(JSON.stringify(res.json)).not.toContain(canary);

    fake.failNext = 1;
    const ready = await client(embedder.url, null)('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({
      code: 'not_ready',
      detail: 'model: loaded; store: unreachable',
    });
    expect((await client(embedder.url, null)('GET', '/readyz')).status).toBe(200);

    const failure = logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'request failed');
    expect(failure).toMatchObject({
      level: 'error',
      code: 'store_unavailable',
      error: 'StoreError',
    });
    expect(failure.reason).toContain('could not write points to Qdrant');
    expect(logs.join('\n')).not.toContain(canary);
  });

  it('never sends text to Qdrant and filters every read and delete by org', async () => {
    embedder = await startOnFakeQdrant();
    const call = client(embedder.url);
    const canary = `canary-${randomUUID()}`;
    const text = `${DOG} ${canary}`;
    const embed = await call('POST', '/internal/embed', { items: [embedItem('acme', { text })] });
    expect(embed.status).toBe(200);
    expect(embed.json.results[0]).toMatchObject({ status: 'ok', applied: true });

    const search = await postSearch(call, 'acme', { query_text: text, limit: 3, mode: 'dense' });
    expect(search.status).toBe(200);
    expect(search.json.results[0].score).toBeGreaterThan(0.99);
    for (const mode of ['keyword', 'hybrid']) {
      const found = await postSearch(call, 'acme', { query_text: text, limit: 3, mode });
      expect(found.json).toMatchObject({ mode, total: 1 });
    }
    const other = await postSearch(call, 'globex', { query_text: text, limit: 3 });
    expect(other.json.results).toEqual([]);
    const del = await call('POST', '/internal/delete', { org_id: 'acme', asset_id: 'a1' });
    expect(del.json).toEqual({ deleted: 1 });

    expect(fake.requests.length).toBeGreaterThan(5);
    for (const r of fake.requests) {
      expect(r.raw).not.toContain(canary);
      expect(r.raw).not.toContain('furry');
      if (/\/points\/(query|count|delete|scroll)$/.test(r.path)) {
        // The request and each of its prefetches (hybrid) carry the tenant condition first.
        for (const q of [r.body, ...(r.body.prefetch ?? [])]) {
          expect(q.filter.must[0]).toEqual({
            key: 'org_id',
            match: { value: expect.any(String) },
          });
        }
      }
    }
    const upsert = fake.requests.find((r) => r.method === 'PUT' && r.path.endsWith('/points'));
    expect(Object.keys(upsert?.body.points[0].payload).sort()).toEqual(PAYLOAD_KEYS);
  });
});
