/**
 * The embedder's OpenAI-protocol route, POST /v1/embeddings (core/embeddings.ts): the response
 * shape, the vectors (search's query vectors, float and base64), `dimensions`, truncation, the
 * problems with OpenAI's `error` object, 429 admission, priority between search and ingestion in
 * the batcher, and that no input text reaches a log line or a metric.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EMBEDDINGS_MAX_BODY_BYTES,
  MAX_EMBEDDING_INPUTS,
  base64ToFloat32,
  float32ToBase64,
} from '../../contract/openai.js';
import type { EmbeddingModel } from '../src/core/model.js';
import { sumOfSquares } from '../src/core/vector.js';
import { useEmbedder } from './embedder-fixture.js';
import {
  DOG,
  POTION,
  TOKEN,
  client,
  embedItem,
  embedTexts,
  loadPotion,
  maxAbsDiff,
  postSearch,
  testConfig,
  until as untilTrue,
} from './helpers.js';
import type { Json } from './helpers.js';

const CANINE = 'A big hairy canine is jogging outdoors';
/** No token potion knows: the vector has no direction (as in embedding.test.ts). */
const UNKNOWN_ONLY = '∰∰∰ ⌘⌘';
/** ~2,000 tokens: well past potion's 512-token window. */
const LONG = `${DOG}. `.repeat(200);
const DIM = 64;

let model: EmbeddingModel;
beforeAll(async () => {
  model = await loadPotion();
});
afterAll(async () => {
  await model.dispose();
});

/** Search's query vectors for `texts`, computed here on the model itself. */
async function queryVectors(texts: string[]): Promise<Float32Array[]> {
  return (await embedTexts(model, texts, 'query')).map((o) => {
    if (!o.ok) throw new Error(`no vector: ${o.code}`);
    return o.vector;
  });
}

/** The problem checks every /v1 error shares: RFC 9457 members and OpenAI's `error` object. */
function expectOpenAiProblem(
  res: { status: number; headers: Headers; json: Json },
  status: number,
  code: string,
  param: string | null,
) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.json).toMatchObject({
    type: `https://heimdex.dev/problems/${code}`,
    status,
    code,
    request_id: res.headers.get('x-request-id'),
  });
  const { error } = res.json;
  expect(error).toMatchObject({ code, param });
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  if (param !== null) {
    expect(error.message).toContain(param);
    const field = param.replace(/\[(\d+)\]/g, '.$1');
    expect(res.json.errors?.[0]).toMatchObject({
      field,
      pointer: '/' + field.split('.').join('/'),
    });
  }
  const type =
    status === 401
      ? 'authentication_error'
      : status === 429
        ? 'rate_limit_error'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error';
  expect(error.type).toBe(type);
  return res.json;
}

/** Sum of a metric's samples whose labels include `labels` (Prometheus text format). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = new Map(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) total += Number(match[3]);
  }
  return total;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return res.text();
}

describe('POST /v1/embeddings', () => {
  const served = useEmbedder('openai', (dir) => testConfig({ dataDir: dir, logLevel: 'debug' }));
  const { call, logs } = served;
  const embeddings = (body: unknown, headers: Record<string, string> = {}) =>
    call('POST', '/v1/embeddings', body, headers);

  it("answers in OpenAI's shape, one unit vector per input, with usage and timing headers", async () => {
    const single = await embeddings({ input: DOG, model: POTION });
    expect(single.status).toBe(200);
    expect(single.headers.get('content-type')).toMatch(/^application\/json/);
    expect(single.json).toMatchObject({
      object: 'list',
      model: POTION,
      data: [{ object: 'embedding', index: 0 }],
    });
    expect(Object.keys(single.json).sort()).toEqual(['data', 'model', 'object', 'usage']);
    expect(single.json.data).toHaveLength(1);
    expect(single.json.data[0].embedding).toHaveLength(DIM);
    expect(sumOfSquares(single.json.data[0].embedding)).toBeCloseTo(1, 5);
    const { usage } = single.json;
    expect(usage.prompt_tokens).toBeGreaterThan(5);
    expect(usage).toEqual({
      prompt_tokens: usage.prompt_tokens,
      total_tokens: usage.prompt_tokens,
      truncated_inputs: 0,
    });
    for (const h of ['x-tokenization-time', 'x-queue-time', 'x-inference-time', 'x-total-time']) {
      expect(single.headers.get(h), h).toMatch(/^\d+(\.\d+)?$/);
    }

    const many = await embeddings({ input: [DOG, CANINE, 'short'], model: POTION, user: 'u-1' });
    expect(many.status).toBe(200);
    expect(many.json.data.map((d: Json) => d.index)).toEqual([0, 1, 2]);
    expect(many.json.usage.prompt_tokens).toBeGreaterThan(usage.prompt_tokens);
  });

  it("gives search's query vectors, in float and in base64 (little-endian float32)", async () => {
    const texts = [DOG, CANINE, 'Quarterly revenue grew in the north', 'x'];
    const expected = await queryVectors(texts);
    const float = await embeddings({ input: texts, model: POTION, encoding_format: 'float' });
    const base64 = await embeddings({ input: texts, model: POTION, encoding_format: 'base64' });
    const byDefault = await embeddings({ input: texts, model: POTION });
    expect(float.status).toBe(200);
    expect(base64.status).toBe(200);
    expect(byDefault.json.data).toEqual(float.json.data);
    texts.forEach((_, i) => {
      const asFloat = float.json.data[i].embedding as number[];
      const encoded = base64.json.data[i].embedding as string;
      expect(typeof encoded).toBe('string');
      const bytes = Buffer.from(encoded, 'base64');
      expect(bytes.length).toBe(DIM * 4);
      const decoded = Array.from({ length: DIM }, (_, k) => bytes.readFloatLE(k * 4));
      // The JSON numbers are the float32 values exactly: both encodings carry the same vector.
      expect(decoded).toEqual(asFloat);
      expect(Array.from(base64ToFloat32(encoded))).toEqual(asFloat);
      expect(float32ToBase64(asFloat)).toBe(encoded);
      expect(maxAbsDiff(asFloat, expected[i]!)).toBeLessThanOrEqual(1e-6);
    });
    expect(base64.json.usage).toEqual(float.json.usage);
  });

  it('gives the vector whose dot product with a stored passage is its dense search score', async () => {
    const org = `openai-${randomUUID().slice(0, 8)}`;
    const stored = await call('POST', '/internal/embed', {
      items: [embedItem(org, { text: DOG })],
    });
    expect(stored.json.results[0].status).toBe('ok');
    const hits = await postSearch(call, org, { query_text: CANINE, mode: 'dense' });
    expect(hits.status).toBe(200);
    const v = await embeddings({ input: [CANINE, DOG], model: POTION });
    const [query, passage] = v.json.data.map((d: Json) => d.embedding as number[]);
    // potion has no instruction prefixes: a passage's vector is its text's query vector.
    const dot = query.reduce((s: number, x: number, k: number) => s + x * passage[k], 0);
    expect(Math.abs(hits.json.results[0].score - dot)).toBeLessThanOrEqual(1e-5);
  });

  it('accepts dimensions equal to the model dimension and refuses any other, naming it', async () => {
    const same = await embeddings({ input: DOG, model: POTION, dimensions: DIM });
    expect(same.status).toBe(200);
    expect(same.json.data[0].embedding).toHaveLength(DIM);
    const other = await embeddings({ input: DOG, model: POTION, dimensions: 32 });
    const body = expectOpenAiProblem(other, 400, 'unsupported_dimensions', 'dimensions');
    expect(body.detail).toContain(String(DIM));
    expectOpenAiProblem(
      await embeddings({ input: DOG, model: POTION, dimensions: 0 }),
      400,
      'validation_failed',
      'dimensions',
    );
  });

  it('truncates inputs longer than the window as search does, and counts them', async () => {
    const res = await embeddings({ input: ['short text', LONG, DOG], model: POTION });
    expect(res.status).toBe(200);
    expect(res.json.usage.truncated_inputs).toBe(1);
    const [short, long, dog] = await queryVectors(['short text', LONG, DOG]);
    const got = res.json.data.map((d: Json) => d.embedding as number[]);
    expect(maxAbsDiff(got[0], short!)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(got[1], long!)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(got[2], dog!)).toBeLessThanOrEqual(1e-6);
    // Usage counts each input whole, truncated or not.
    const counts = ['short text', LONG, DOG].map((t) => model.tokenize(t, 'query').stats);
    expect(counts[1]!.truncated).toBe(true);
    expect(res.json.usage.prompt_tokens).toBe(counts.reduce((n, s) => n + s.token_count, 0));
    expect(res.json.usage.prompt_tokens).toBeGreaterThan(512);
  });

  it(`embeds ${MAX_EMBEDDING_INPUTS} inputs in one request, and refuses one more`, async () => {
    const inputs = Array.from({ length: MAX_EMBEDDING_INPUTS }, (_, i) => `sentence number ${i}`);
    const res = await embeddings({ input: inputs, model: POTION, encoding_format: 'base64' });
    expect(res.status).toBe(200);
    expect(res.json.data).toHaveLength(MAX_EMBEDDING_INPUTS);
    expect(res.json.data.at(-1).index).toBe(MAX_EMBEDDING_INPUTS - 1);
    const [last] = await queryVectors([inputs.at(-1)!]);
    expect(maxAbsDiff(base64ToFloat32(res.json.data.at(-1).embedding), last!)).toBeLessThanOrEqual(
      1e-6,
    );
    const over = await embeddings({ input: [...inputs, 'one more'], model: POTION });
    const body = expectOpenAiProblem(over, 400, 'validation_failed', 'input');
    expect(body.error.message).toContain(`at most ${MAX_EMBEDDING_INPUTS}`);
  });

  it('refuses bad input with problems naming the field, OpenAI error object included', async () => {
    const blank = await embeddings({ input: [DOG, '  \n '], model: POTION });
    expect(expectOpenAiProblem(blank, 400, 'validation_failed', 'input[1]').error.message).toBe(
      'input[1]: must not be blank',
    );
    expectOpenAiProblem(
      await embeddings({ input: ' ', model: POTION }),
      400,
      'validation_failed',
      'input',
    );
    for (const ids of [
      [101, 2023, 102],
      [[101, 2023], [102]],
    ]) {
      const tokens = await embeddings({ input: ids, model: POTION });
      const body = expectOpenAiProblem(tokens, 400, 'validation_failed', 'input');
      expect(body.errors).toHaveLength(1);
      expect(body.error.message).toMatch(/token-id arrays are not accepted/);
    }
    expectOpenAiProblem(
      await embeddings({ input: [], model: POTION }),
      400,
      'validation_failed',
      'input',
    );
    expectOpenAiProblem(await embeddings({ model: POTION }), 400, 'validation_failed', 'input');
    expectOpenAiProblem(await embeddings({ input: DOG }), 400, 'validation_failed', 'model');
    expectOpenAiProblem(
      await embeddings({ input: DOG, model: POTION, encoding_format: 'float16' }),
      400,
      'validation_failed',
      'encoding_format',
    );
    expectOpenAiProblem(
      await embeddings({ input: DOG, model: POTION, temperature: 1 }),
      400,
      'validation_failed',
      'temperature',
    );
    const unknown = await embeddings({ input: DOG, model: 'text-embedding-3-small' });
    expect(expectOpenAiProblem(unknown, 400, 'unknown_model', 'model').error.message).toContain(
      `"${POTION}"`,
    );
    const empty = await embeddings({ input: [DOG, UNKNOWN_ONLY], model: POTION });
    expectOpenAiProblem(empty, 422, 'empty_embedding', 'input[1]');
  });

  it('answers 413 naming input for a body over its limit, 404 and 401 with the error object', async () => {
    const big = 'x'.repeat(EMBEDDINGS_MAX_BODY_BYTES);
    expectOpenAiProblem(
      await embeddings({ input: big, model: POTION }),
      413,
      'payload_too_large',
      'input',
    );
    expectOpenAiProblem(await call('POST', '/v1/models', {}), 404, 'not_found', null);
    const anonymous = client(served.embedder.url, null);
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer not-the-service-token-0123' },
    ];
    for (const headers of attempts) {
      const res = await anonymous('POST', '/v1/embeddings', { input: DOG, model: POTION }, headers);
      expectOpenAiProblem(res, 401, 'unauthorized', null);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('keeps the OpenAI error object off the other routes', async () => {
    const res = await call('POST', '/internal/search', { org_id: 'o' });
    expect(res.status).toBe(400);
    expect(res.json.error).toBeUndefined();
  });

  it('puts no input text in a log line or a metric; counts inputs and requests', async () => {
    const canary = `openaicanary${randomUUID().replaceAll('-', '')}`;
    const requests = [
      { input: [`${canary} ${DOG}`, `${canary} ${LONG}`], model: POTION },
      { input: `${canary} ∰`, model: POTION, encoding_format: 'base64', user: canary },
      { input: [`${canary}`, '   '], model: POTION },
      { input: `${canary}`, model: `m-${canary}` },
      { input: `${canary}`, model: POTION, dimensions: 3 },
      { input: [DOG, UNKNOWN_ONLY], model: POTION, user: canary },
    ];
    const before = await scrape(served.embedder.url);
    const statuses = [];
    for (const body of requests) statuses.push((await embeddings(body)).status);
    expect(statuses).toEqual([200, 200, 400, 400, 400, 422]);
    const lines = logs.filter((l) => l.includes('/v1/embeddings'));
    expect(lines.length).toBeGreaterThanOrEqual(requests.length);
    expect(lines.every((l) => JSON.parse(l).msg === 'request')).toBe(true);
    expect(lines.some((l) => JSON.parse(l).items === 2)).toBe(true);
    expect(logs.join('\n')).not.toContain(canary);
    const metrics = await scrape(served.embedder.url);
    expect(metrics).not.toContain(canary);
    const added = (name: string, labels: Record<string, string>) =>
      sample(metrics, name, labels) - sample(before, name, labels);
    expect(added('heimdex_api_embeddings_requests_total', { status: '200' })).toBe(2);
    expect(added('heimdex_api_embeddings_requests_total', { status: '400' })).toBe(3);
    expect(added('heimdex_api_embeddings_errors_total', { code: 'unsupported_dimensions' })).toBe(
      1,
    );
    expect(added('heimdex_api_embeddings_errors_total', { code: 'empty_embedding' })).toBe(1);
    expect(added('heimdex_api_embeddings_inputs_total', { model: POTION })).toBe(3);
    expect(added('heimdex_api_embeddings_truncated_total', { model: POTION })).toBe(1);
  });
});

/**
 * An embedder standing in for a slow model (as in serving.test.ts): one item per pass and 2 ms
 * added to every pass through fault injection.
 */
function slowEmbedder(maxQueuedItems: number) {
  return useEmbedder('openai-slow', async (dir) => {
    const faultsFile = path.join(dir, 'faults.json');
    await writeFile(faultsFile, JSON.stringify({ inference_delay_ms: 2 }));
    return testConfig({
      dataDir: dir,
      faultsFile,
      batching: { maxBatchTokens: 16_384, maxBatchItems: 1, maxQueuedItems },
    });
  });
}

/** About 500 tokens: a pass over many of these takes a while, even for potion. */
const longText = (i: number): string => `${DOG} number ${i} `.repeat(45);
const longItems = (n: number, org: string) =>
  Array.from({ length: n }, (_, i) => embedItem(org, { segment_id: `s${i}`, text: longText(i) }));
const until = (probe: () => Promise<boolean>, what: string) => untilTrue(probe, what, 10_000, 5);
const queued = async (url: string, priority?: string) =>
  sample(await scrape(url), 'heimdex_queue_depth', {
    model: POTION,
    ...(priority ? { priority } : {}),
  });

describe('admission', () => {
  const s = slowEmbedder(8);

  it('answers 429 with Retry-After and a rate_limit_error while the queue is full', async () => {
    const { call, embedder } = s;
    const big = call('POST', '/internal/embed', { items: longItems(150, 'ovl-openai') });
    await until(async () => (await queued(embedder.url)) > 0, 'the big request to queue');
    const refused = await call('POST', '/v1/embeddings', { input: [DOG, CANINE], model: POTION });
    expectOpenAiProblem(refused, 429, 'overloaded', null);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await big).status).toBe(200);
    const retried = await call('POST', '/v1/embeddings', { input: [DOG, CANINE], model: POTION });
    expect(retried.status).toBe(200);
    const text = await scrape(embedder.url);
    expect(sample(text, 'heimdex_api_embeddings_errors_total', { code: 'overloaded' })).toBe(1);
    expect(sample(text, 'heimdex_api_embeddings_requests_total', { status: '429' })).toBe(1);
    expect(sample(text, 'heimdex_queue_admitted_items')).toBe(0);
  });
});

describe('priority: after search queries, before ingestion', () => {
  const s = slowEmbedder(4096);

  it('serves embedding-API texts submitted behind a large ingest batch before the batch', async () => {
    const { call, embedder } = s;
    let ingestDone = false;
    const ingest = call('POST', '/internal/embed', { items: longItems(200, 'prio-ingest') }).then(
      (r) => {
        ingestDone = true;
        return r;
      },
    );
    await until(async () => (await queued(embedder.url)) > 50, 'the ingest batch to queue');
    const res = await call('POST', '/v1/embeddings', {
      input: [DOG, CANINE, longText(1), 'four', 'five'],
      model: POTION,
    });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('x-queue-time'))).toBeGreaterThanOrEqual(0);
    expect(ingestDone).toBe(false);
    expect(await queued(embedder.url, 'passage')).toBeGreaterThan(0);
    expect((await ingest).status).toBe(200);
  });

  it('serves a search submitted behind a large embedding-API request before the request', async () => {
    const { call, embedder } = s;
    let apiDone = false;
    const api = call('POST', '/v1/embeddings', {
      input: Array.from({ length: 200 }, (_, i) => longText(i)),
      model: POTION,
      encoding_format: 'base64',
    }).then((r) => {
      apiDone = true;
      return r;
    });
    await until(async () => (await queued(embedder.url, 'api')) > 50, 'the API request to queue');
    const search = await postSearch(call, 'prio-api');
    expect(search.status).toBe(200);
    expect(apiDone).toBe(false);
    expect(await queued(embedder.url, 'api')).toBeGreaterThan(0);
    const done = await api;
    expect(done.status).toBe(200);
    expect(done.json.data).toHaveLength(200);
  });
});
