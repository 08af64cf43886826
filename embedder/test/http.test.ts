import { createHash, randomUUID } from 'node:crypto';
import { env } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { pointId } from '../../contract/ids.js';
import { DEFAULT_FUSION, DEFAULT_RRF, MAX_EMBED_ITEMS } from '../../contract/internal.js';
import { dbsfNormalize, rrfScore } from '../src/store/fusion.js';
import type { EmbedderConfig } from '../src/config.js';
import { startEmbedder } from '../src/server.js';
import { KeywordTerms, analyze } from '../src/core/keywords.js';
import { LanceDbStore } from '../src/store/lancedb.js';
import { useEmbedder } from './embedder-fixture.js';
import {
  DOG,
  KEYWORD_KEY,
  PAYLOAD_KEYS,
  POTION,
  TOKEN,
  client,
  embedItem,
  modelDir,
  postSearch,
  readTree,
  searchBody,
  tempDir,
  testConfig,
} from './helpers.js';

const CANINE = 'A big hairy canine is jogging outdoors';

const served = useEmbedder('http');
const { call, logs } = served;

const item = (over: Record<string, unknown> = {}) => embedItem('acme', over);

/** Runs `fn` with `testConfig` over a fresh folder, then removes the folder. */
async function inFreshDir(
  prefix: string,
  fn: (config: EmbedderConfig, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await tempDir(prefix);
  try {
    await fn(testConfig({ dataDir: dir.dir }), dir.dir);
  } finally {
    await dir.remove();
  }
}

/** `config` with some of its model's settings replaced. */
function withModel(
  config: EmbedderConfig,
  model: Partial<EmbedderConfig['model']>,
): EmbedderConfig {
  return { ...config, model: { ...config.model, ...model } };
}

/** The error startEmbedder rejects with (fails the test if it starts). */
async function startupFailure(config: EmbedderConfig): Promise<Error> {
  try {
    const running = await startEmbedder(config);
    await running.close();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected startEmbedder to fail');
}

function expectProblem(
  res: { status: number; headers: Headers; json: { [k: string]: unknown } },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.json).toMatchObject({
    type: `https://heimdex.dev/problems/${code}`,
    status,
    code,
    title: expect.any(String),
    detail: expect.any(String),
    request_id: res.headers.get('x-request-id'),
  });
}

describe('service auth', () => {
  const routes: [string, unknown][] = [
    ['/internal/embed', { items: [item({ org_id: 'auth-org' })] }],
    ['/internal/search', searchBody('auth-org', { limit: 1 })],
    ['/internal/delete', { org_id: 'auth-org', asset_id: 'a1' }],
  ];
  const badCredentials: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer wrong-token-0123456789abcdef' }],
    ['the token with a suffix', { authorization: `Bearer ${TOKEN}x` }],
    ['a truncated token', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
    ['another scheme', { authorization: `Basic ${TOKEN}` }],
  ];

  for (const [route, body] of routes) {
    for (const [what, headers] of badCredentials) {
      it(`POST ${route} with ${what} is 401`, async () => {
        const res = await client(served.embedder.url, null)('POST', route, body, headers);
        expectProblem(res, 401, 'unauthorized');
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      });
    }
  }

  it('did nothing for the unauthenticated calls', async () => {
    const res = await postSearch(call, 'auth-org', { limit: 5 });
    expect(res.json.results).toEqual([]);
  });

  it('keeps /healthz and /readyz public', async () => {
    const anonymous = client(served.embedder.url, null);
    expect(await anonymous('GET', '/healthz')).toMatchObject({
      status: 200,
      json: { status: 'ok' },
    });
    expect(await anonymous('GET', '/readyz')).toMatchObject({
      status: 200,
      json: { status: 'ready', model: POTION, model_ver: '1' },
    });
  });
});

describe('request validation', () => {
  it('answers 400 problem+json naming the field', async () => {
    const res = await call('POST', '/internal/embed', { items: [item(), item({ seq: -4 })] });
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors).toEqual([
      { field: 'items.1.seq', pointer: '/items/1/seq', message: expect.any(String) },
    ]);
    expect(res.json.detail).toContain('items.1.seq');
  });

  it.each([
    ['missing items', {}, 'items'],
    ['empty items', { items: [] }, 'items'],
    [
      'too many items',
      { items: Array.from({ length: MAX_EMBED_ITEMS + 1 }, () => item()) },
      'items',
    ],
    ['an unknown field', { items: [{ ...item(), extra: 1 }] }, 'items.0.extra'],
    ['a non-uuid job_id', { items: [item({ job_id: 'job-1' })] }, 'items.0.job_id'],
    ['a fractional seq', { items: [item({ seq: 1.5 })] }, 'items.0.seq'],
    ['an unsafe seq', { items: [item({ seq: 2 ** 53 })] }, 'items.0.seq'],
    ['a control character in an id', { items: [item({ org_id: 'a\u0000b' })] }, 'items.0.org_id'],
    ['an empty text', { items: [item({ text: '' })] }, 'items.0.text'],
  ])('rejects %s', async (_what, body, path) => {
    const res = await call('POST', '/internal/embed', body);
    expectProblem(res, 400, 'validation_failed');
    expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(path);
  });

  it('validates search and delete bodies', async () => {
    for (const [route, body, path] of [
      ['/internal/search', searchBody('acme', { limit: 0 }), 'limit'],
      ['/internal/search', searchBody('acme', { limit: 101 }), 'limit'],
      ['/internal/search', { query_text: DOG }, 'org_id'],
      ['/internal/delete', { org_id: 'acme' }, 'point_id'],
      ['/internal/delete', { org_id: 'acme', asset_id: 'a', point_id: randomUUID() }, 'point_id'],
      ['/internal/delete', { org_id: 'acme', point_id: 'not-a-uuid' }, 'point_id'],
    ] as const) {
      const res = await call('POST', route, body);
      expectProblem(res, 400, 'validation_failed');
      expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(path);
    }
  });

  it('answers malformed JSON, a wrong content type and an oversized body with problems', async () => {
    expectProblem(await call('POST', '/internal/embed', '{"items": ['), 400, 'malformed_json');
    expectProblem(
      await call('POST', '/internal/embed', JSON.stringify({ items: [item()] }), {
        'content-type': 'text/plain',
      }),
      415,
      'unsupported_media_type',
    );
    const huge = JSON.stringify({ items: [item({ text: 'dog '.repeat(2_200_000) })] });
    expectProblem(await call('POST', '/internal/embed', huge), 413, 'payload_too_large');
  });

  it('never echoes the text in an error', async () => {
    const canary = `canary-${randomUUID()}`;
    const res = await call('POST', '/internal/embed', { items: [item({ text: canary, seq: 0 })] });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.json)).not.toContain(canary);
  });

  it('answers unknown routes with a 404 problem', async () => {
    expectProblem(await client(served.embedder.url, null)('GET', '/nope'), 404, 'not_found');
  });
});

describe('embed and search', () => {
  it('round-trips: the embedded point is found first with score > 0.99', async () => {
    const it1 = item({ org_id: 'rt-org', asset_id: 'doc-1', segment_id: 'p1' });
    const res = await call(
      'POST',
      '/internal/embed',
      { items: [it1] },
      { 'x-request-id': 'req-roundtrip-1' },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-roundtrip-1');
    const expectedId = await pointId({ ...it1 });
    expect(res.json).toEqual({
      results: [
        {
          job_id: it1.job_id,
          status: 'ok',
          point_id: expectedId,
          chunk_count: 1,
          applied: true,
          text_len: DOG.length,
          token_count: 9,
          truncated: false,
          truncated_len: DOG.length,
          model: POTION,
          model_ver: '1',
        },
      ],
      model: POTION,
      model_ver: '1',
    });

    await call('POST', '/internal/embed', {
      items: [
        item({
          org_id: 'rt-org',
          asset_id: 'doc-2',
          segment_id: 'p1',
          text: 'Quarterly revenue grew by twelve percent.',
        }),
      ],
    });
    const search = await postSearch(call, 'rt-org', { limit: 10, mode: 'dense' });
    expect(search.status).toBe(200);
    expect(search.json).toMatchObject({
      mode: 'dense',
      query_model: POTION,
      query_model_ver: '1',
      total: 2,
    });
    const [first, second] = search.json.results;
    expect(first.point_id).toBe(expectedId);
    expect(first.score).toBeGreaterThan(0.99);
    expect(first.score).toBeLessThanOrEqual(1);
    expect(second.score).toBeLessThan(first.score);
    expect(Object.keys(first.payload).sort()).toEqual(PAYLOAD_KEYS);
    expect(first.payload).toMatchObject({
      org_id: 'rt-org',
      asset_id: 'doc-1',
      segment_id: 'p1',
      modality: 'text',
      model: POTION,
      model_ver: '1',
      job_id: it1.job_id,
      seq: 1,
    });
    expect(Date.parse(first.payload.embedded_at)).not.toBeNaN();

    const paraphrase = await postSearch(call, 'rt-org', {
      query_text: CANINE,
      limit: 1,
      mode: 'dense',
    });
    expect(paraphrase.json.results[0].point_id).toBe(expectedId);
    expect(paraphrase.json.results[0].score).toBeGreaterThan(0.5);

    const filtered = await postSearch(call, 'rt-org', {
      limit: 10,
      asset_id: 'doc-2',
      model: POTION,
    });
    expect(
      filtered.json.results.map((r: { payload: { asset_id: string } }) => r.payload.asset_id),
    ).toEqual(['doc-2']);
  });

  it('reports truncation in model tokens for a text longer than the window (chunking "truncate")', async () => {
    const long = `${DOG} and then some more words about 🚀 rockets `.repeat(60);
    const res = await call('POST', '/internal/embed', {
      items: [item({ org_id: 'trunc-org', text: long, chunking: 'truncate' })],
    });
    expect(res.status).toBe(200);
    const [r] = res.json.results;
    expect(r).toMatchObject({ status: 'ok', truncated: true, text_len: [...long].length });
    expect(r.token_count).toBeGreaterThan(512);
    expect(r.truncated_len).toBeGreaterThan(0);
    expect(r.truncated_len).toBeLessThan(r.text_len);
  });

  it('returns per-item results in order, errors included', async () => {
    const items = [
      item({ org_id: 'mix-org', segment_id: 's1' }),
      item({ org_id: 'mix-org', segment_id: 's2', model: 'minilm-l6-v2' }),
      item({ org_id: 'mix-org', segment_id: 's3', model_ver: '2' }),
      item({ org_id: 'mix-org', segment_id: 's4', text: '∰∰∰ ⌘⌘' }),
      item({ org_id: 'mix-org', segment_id: 's5', text: CANINE }),
    ];
    const res = await call('POST', '/internal/embed', { items });
    expect(res.status).toBe(200);
    expect(res.json.results.map((r: { job_id: string }) => r.job_id)).toEqual(
      items.map((i) => i.job_id),
    );
    expect(
      res.json.results.map((r: { status: string; code?: string }) => r.code ?? r.status),
    ).toEqual(['ok', 'unknown_model', 'unknown_model', 'empty_embedding', 'ok']);
    expect(res.json.results[3]).toEqual({
      job_id: items[3]?.job_id,
      status: 'error',
      code: 'empty_embedding',
      retryable: false,
      message: 'text produced no known tokens',
    });
    const count = await postSearch(call, 'mix-org', { limit: 10 });
    expect(count.json.total).toBe(2);
  });

  it('finds a product code by keyword and hybrid search, and explains both rankings', async () => {
    const texts = [
      'Replacement filter XR-7734b fits the compact purifier.',
      'Replacement filter XR-7735 fits the tower purifier.',
      'The compact purifier ships with a filter XR-7734 and a remote.',
      'A large furry dog is running in the park near the filter station.',
      'Quarterly revenue grew by twelve percent.',
    ];
    await call('POST', '/internal/embed', {
      items: texts.map((text, i) => item({ org_id: 'code-org', segment_id: `c${i}`, text })),
    });
    const search = (body: Record<string, unknown>) =>
      postSearch(call, 'code-org', { query_text: 'XR-7734b', ...body });
    for (const mode of ['keyword', 'hybrid']) {
      const res = await search({ mode, limit: 3, explain: true });
      expect(res.status).toBe(200);
      expect(res.json.mode).toBe(mode);
      expect(res.json.results[0].payload.segment_id).toBe('c0');
      expect(res.json.results[0].explain.keyword.rank).toBe(1);
    }
    // The default mode is hybrid, fused by DBSF at equal weights. Every text is a result, so
    // explain gives both whole rankings: each result's score is its normalised scores' sum.
    type Ranked = { rank: number; score: number } | null;
    type Result = { score: number; explain: { dense: Ranked; keyword: Ranked } };
    const hybrid = await search({ limit: 5, explain: true });
    expect(hybrid.json.mode).toBe('hybrid');
    expect(DEFAULT_FUSION).toMatchObject({ method: 'dbsf', weight: 0.5 });
    const results = hybrid.json.results as Result[];
    expect(results).toHaveLength(texts.length);
    const normalised = (which: 'dense' | 'keyword') => {
      const ranked = results.filter((r) => r.explain[which]);
      ranked.sort((a, b) => a.explain[which]!.rank - b.explain[which]!.rank);
      const scores = dbsfNormalize(ranked.map((r) => r.explain[which]!.score));
      return new Map(ranked.map((r, i) => [r, scores[i]!]));
    };
    const [d, k] = [normalised('dense'), normalised('keyword')];
    for (const r of results) expect(r.score).toBeCloseTo((d.get(r) ?? 0) + (k.get(r) ?? 0), 6);
    // RRF, asked for: Qdrant's weighted reciprocal ranks.
    const rrf = await search({ limit: 5, explain: true, fusion: { method: 'rrf' } });
    const first = rrf.json.results[0];
    expect(first.score).toBeCloseTo(
      rrfScore(first.explain.dense.rank - 1, DEFAULT_RRF.k, 2 * DEFAULT_RRF.weight) +
        rrfScore(first.explain.keyword.rank - 1, DEFAULT_RRF.k, 2 * (1 - DEFAULT_RRF.weight)),
      6,
    );
    // Keyword mode finds nothing for words no text has; the model is not run for it.
    const none = await search({ mode: 'keyword', query_text: 'zeppelin', limit: 3 });
    expect(none.json).toMatchObject({ mode: 'keyword', results: [], total: 0 });
    // Tenant-scoped: another org's texts are never found.
    const other = await postSearch(call, 'other-code-org', {
      query_text: 'XR-7734b',
      mode: 'keyword',
    });
    expect(other.json.results).toEqual([]);
    // Fusion options are validated, naming the field.
    const bad = await search({ mode: 'hybrid', fusion: { method: 'rrf', k: 0, weight: 2 } });
    expect(bad.status).toBe(400);
    expect(bad.json.errors.map((e: { field: string }) => e.field).sort()).toEqual([
      'fusion.k',
      'fusion.weight',
    ]);
    const badMode = await search({ mode: 'fuzzy' });
    expect(badMode.status).toBe(400);
    expect(badMode.json.errors[0].field).toBe('mode');
  });

  it('applies latest wins: an older seq never overwrites a newer vector', async () => {
    const key = { org_id: 'lw-org', asset_id: 'a', segment_id: 's' };
    const v10 = item({ ...key, seq: 10, text: DOG });
    const v5 = item({ ...key, seq: 5, text: 'Quarterly revenue grew by twelve percent.' });
    const v11 = item({ ...key, seq: 11, text: CANINE });
    expect((await call('POST', '/internal/embed', { items: [v10] })).json.results[0].applied).toBe(
      true,
    );
    const late = (await call('POST', '/internal/embed', { items: [v5] })).json.results[0];
    expect(late).toMatchObject({
      status: 'ok',
      applied: false,
      point_id: await pointId({ ...v10 }),
    });
    let hit = (await postSearch(call, 'lw-org', { limit: 5, mode: 'dense' })).json.results;
    expect(hit).toHaveLength(1);
    expect(hit[0].payload).toMatchObject({ seq: 10, job_id: v10.job_id });
    expect(hit[0].score).toBeGreaterThan(0.99);

    expect((await call('POST', '/internal/embed', { items: [v11] })).json.results[0].applied).toBe(
      true,
    );
    hit = (await postSearch(call, 'lw-org', { query_text: CANINE, limit: 5, mode: 'dense' })).json
      .results;
    expect(hit[0].payload).toMatchObject({ seq: 11, job_id: v11.job_id });
    expect(hit[0].score).toBeGreaterThan(0.99);
  });

  it('answers 400 unknown_model and 422 empty_embedding for search', async () => {
    expectProblem(
      await postSearch(call, 'acme', { limit: 1, model: 'mpnet-base' }),
      400,
      'unknown_model',
    );
    expectProblem(
      await postSearch(call, 'acme', { query_text: '∰∰∰ ⌘⌘', limit: 1 }),
      422,
      'empty_embedding',
    );
  });

  it('isolates organisations in search and delete', async () => {
    const mine = item({ org_id: 'org-a', asset_id: 'shared', segment_id: 's1' });
    await call('POST', '/internal/embed', { items: [mine] });
    const pid = await pointId({ ...mine });

    const other = await postSearch(call, 'org-b', { limit: 100 });
    expect(other.json).toMatchObject({ results: [], total: 0 });
    expect(
      (await call('POST', '/internal/delete', { org_id: 'org-b', point_id: pid })).json,
    ).toEqual({ deleted: 0 });
    expect(
      (await call('POST', '/internal/delete', { org_id: 'org-b', asset_id: 'shared' })).json,
    ).toEqual({
      deleted: 0,
    });
    const still = await postSearch(call, 'org-a', { limit: 1 });
    expect(still.json.results[0].point_id).toBe(pid);

    expect(
      (await call('POST', '/internal/delete', { org_id: 'org-a', point_id: pid })).json,
    ).toEqual({ deleted: 1 });
    const gone = await postSearch(call, 'org-a', { limit: 1 });
    expect(gone.json.results).toEqual([]);
  });

  it('applies search filters server-side: any-of assets, truncated, embedded_at range', async () => {
    const org = `filters-${randomUUID()}`;
    const before = new Date().toISOString();
    const items = ['a1', 'a2', 'a3'].map((asset_id) => item({ org_id: org, asset_id }));
    await call('POST', '/internal/embed', { items });
    const assets = async (filters: object) => {
      const res = await postSearch(call, org, { limit: 10, filters });
      expect(res.status).toBe(200);
      return res.json.results
        .map((r: { payload: { asset_id: string } }) => r.payload.asset_id)
        .sort();
    };
    expect(await assets({ asset_ids: ['a1', 'a3'] })).toEqual(['a1', 'a3']);
    expect(await assets({ truncated: true })).toEqual([]);
    expect(await assets({ truncated: false, asset_ids: ['a2'] })).toEqual(['a2']);
    expect(await assets({ embedded_after: before })).toEqual(['a1', 'a2', 'a3']);
    expect(await assets({ embedded_before: before })).toEqual([]);
  });

  it('validates search filters, naming the field', async () => {
    for (const [filters, path] of [
      [{ asset_ids: [] }, 'filters.asset_ids'],
      [{ asset_ids: Array.from({ length: 101 }, (_, i) => `a${i}`) }, 'filters.asset_ids'],
      [{ segment_ids: ['ok', 'bad\u0001'] }, 'filters.segment_ids.1'],
      [{ truncated: 'yes' }, 'filters.truncated'],
      [{ embedded_after: 'yesterday' }, 'filters.embedded_after'],
      [{ colour: 'red' }, 'filters.colour'],
    ] as const) {
      const res = await postSearch(call, 'acme', { filters });
      expectProblem(res, 400, 'validation_failed');
      expect(res.json.errors.map((e: { field: string }) => e.field)).toContain(path);
    }
  });

  it('deletes a whole asset', async () => {
    await call('POST', '/internal/embed', {
      items: [
        item({ org_id: 'del-org', asset_id: 'x', segment_id: '1' }),
        item({ org_id: 'del-org', asset_id: 'x', segment_id: '2', text: CANINE }),
        item({ org_id: 'del-org', asset_id: 'y', segment_id: '1' }),
      ],
    });
    expect(
      (await call('POST', '/internal/delete', { org_id: 'del-org', asset_id: 'x' })).json,
    ).toEqual({ deleted: 2 });
    const left = await postSearch(call, 'del-org', { limit: 10 });
    expect(
      left.json.results.map((r: { payload: { asset_id: string } }) => r.payload.asset_id),
    ).toEqual(['y']);
  });

  it('keeps text out of the vector store files and the logs', async () => {
    const canary = `zebracanary${randomUUID().replaceAll('-', '')}`;
    const texts = [
      `The ${canary} walked along the beach`,
      `${canary} ${DOG}`,
      'x'.repeat(100) + canary,
    ];
    const res = await call('POST', '/internal/embed', {
      items: texts.map((text, i) => item({ org_id: 'pii-org', segment_id: `s${i}`, text })),
    });
    expect(res.status).toBe(200);
    for (const mode of ['dense', 'keyword', 'hybrid']) {
      const found = await call('POST', '/internal/search', {
        org_id: 'pii-org',
        query_text: `where is ${canary}?`,
        limit: 3,
        mode,
        explain: true,
      });
      expect(found.status).toBe(200);
      expect(JSON.stringify(found.json)).not.toContain(canary);
    }
    await call('POST', '/internal/embed', {
      items: [item({ org_id: 'pii-org', text: canary, seq: -1 })],
    });

    const files = await readTree(served.dir);
    expect(files.length).toBeGreaterThan(0);
    // The keyword index holds the canary word's keyed id (so the files searched are the ones it
    // lives in), never the word, nor its unkeyed hash, nor the same word's id in another org.
    const [term] = analyze(canary);
    const unkeyed = createHash('sha256')
      .update(term as string)
      .digest();
    const idBytes = (id: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(id);
      return b;
    };
    const keywords = new KeywordTerms(KEYWORD_KEY);
    const [keyed] = keywords.document('pii-org', canary).ids;
    const [elsewhere] = keywords.document('other-org', canary).ids;
    expect(files.some(({ bytes }) => bytes.includes(idBytes(keyed as number)))).toBe(true);
    const needles = [
      Buffer.from(canary, 'utf8'),
      Buffer.from(canary, 'utf16le'),
      Buffer.from('walked along', 'utf8'),
      unkeyed,
      unkeyed.subarray(0, 4),
      Buffer.from(unkeyed.toString('hex'), 'utf8'),
      idBytes(elsewhere as number),
    ];
    for (const { file, bytes } of files) {
      for (const needle of needles)
        expect(bytes.includes(needle), `${file} contains the text or an unkeyed form`).toBe(false);
    }

    const allLogs = logs.join('\n');
    expect(allLogs).not.toContain(canary);
    expect(allLogs).not.toContain('walked along');
    const requestLines = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request');
    expect(requestLines.length).toBeGreaterThan(10);
    for (const line of requestLines) {
      expect(Object.keys(line).sort()).toEqual(
        [
          'duration_ms',
          'level',
          'method',
          'msg',
          'path',
          'request_id',
          'status',
          'ts',
          ...('items' in line ? ['items'] : []),
        ].sort(),
      );
    }
    expect(requestLines).toContainEqual(
      expect.objectContaining({
        request_id: 'req-roundtrip-1',
        path: '/internal/embed',
        status: 200,
        items: 1,
      }),
    );
  });

  it('generates a request id when the caller sends none or a malformed one', async () => {
    const res = await call(
      'POST',
      '/internal/search',
      { org_id: 'acme', query_text: DOG, limit: 1 },
      {
        'x-request-id': 'bad id with spaces\u00e9',
      },
    );
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('graceful shutdown', () => {
  it('lets an in-flight request finish, then stops', async () => {
    const dir = await tempDir('shutdown');
    const own = await startEmbedder(testConfig({ dataDir: dir.dir, logLevel: 'silent' }));
    try {
      const items = Array.from({ length: MAX_EMBED_ITEMS }, (_, i) =>
        item({ org_id: 'sd-org', segment_id: `s${i}`, text: `${DOG} number ${i} `.repeat(20) }),
      );
      const inFlight = client(own.url)('POST', '/internal/embed', { items });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const closing = own.close();
      const res = await inFlight;
      expect(res.status).toBe(200);
      expect(res.json.results).toHaveLength(MAX_EMBED_ITEMS);
      await closing;
      await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
    } finally {
      await own.close();
      await dir.remove();
    }
  });
});

describe('start-up failures', () => {
  it('names a missing local model and how to fix it', async () => {
    await inFreshDir('nomodel', async (config) => {
      const err = await startupFailure(withModel(config, { name: 'no-such-model' }));
      expect(err).toBeInstanceOf(Error);
      const message = (err as Error).message;
      expect((err as Error).name).toBe('StartupError');
      expect(message).toContain('Could not load embedding model "no-such-model"');
      expect(message).toContain(`EMBEDDING_MODEL_DIR=${modelDir}`);
      expect(message).toContain('found: potion-base-2M');
      expect(message).not.toMatch(/\n\s+at /);

      const registry = await startupFailure(withModel(config, { name: 'minilm-l6-v2' }));
      expect(registry.message).toContain(
        'Could not load embedding model "minilm-l6-v2" (Xenova/all-MiniLM-L6-v2) from EMBEDDING_MODEL_DIR',
      );
      expect(registry.message).toContain(
        'no folder named "minilm-l6-v2" or "Xenova/all-MiniLM-L6-v2"',
      );
    });
  });

  it('explains an unreachable Hugging Face Hub with the offline fix', async () => {
    const remoteHost = env.remoteHost;
    env.remoteHost = 'http://127.0.0.1:9/'; // nothing listens there: the Hub is "unreachable"
    try {
      await inFreshDir('nohub', async (config) => {
        const err = await startupFailure(withModel(config, { name: 'minilm-l6-v2', dir: null }));
        expect(err.message).toMatch(
          /^Could not load embedding model "minilm-l6-v2" \(Xenova\/all-MiniLM-L6-v2\) from the Hugging Face Hub: .+\. If this machine is offline, download the model elsewhere and set EMBEDDING_MODEL_DIR to the folder that contains it \(e\.g\. EMBEDDING_MODEL_DIR=\.\.\/shared\/models EMBEDDING_MODEL_NAME=potion-base-2M\)\.$/,
        );
      });
    } finally {
      env.remoteHost = remoteHost;
    }
  });

  it('refuses a VECTOR_SIZE that disagrees with the model', async () => {
    await inFreshDir('vsize', async (config, dir) => {
      const err = await startupFailure({
        ...config,
        store: { kind: 'lancedb', dataDir: dir, vectorSize: 384, memoryIndexMaxRows: 50_000 },
      });
      expect(err.message).toContain(
        'VECTOR_SIZE=384 does not match embedding model "potion-base-2M"',
      );
      expect(err.message).toContain('Set VECTOR_SIZE=64');
    });
  });

  it('refuses an existing table of another dimension unless validation is off', async () => {
    await inFreshDir('olddim', async (fresh, dir) => {
      const old = new LanceDbStore({ dataDir: dir });
      await old.init(384);
      await old.close();
      const config: EmbedderConfig = { ...fresh, logLevel: 'silent' };
      const err = await startupFailure(config);
      expect(err.message).toContain(
        'holds 384-dimensional vectors, but embedding model "potion-base-2M" produces 64',
      );
      expect(err.message).toContain('set VECTOR_DATA_DIR to a new folder');

      const unchecked = await startEmbedder({ ...config, validateOnStartup: false });
      await unchecked.close();
    });
  });

  it('says when the port is taken', async () => {
    await inFreshDir('port', async (config) => {
      const err = await startupFailure({ ...config, port: served.embedder.port });
      expect(err.message).toContain(`port ${served.embedder.port} on 127.0.0.1 is already in use`);
    });
  });
});
