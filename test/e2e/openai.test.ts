/**
 * End-to-end: the official `openai` npm client against the real stack (wrangler dev, embedded
 * PostgreSQL, the embedder with the real all-MiniLM-L6-v2), with `baseURL` `<worker>/v1` and a
 * tenant's JWT as the API key. The vectors it gets are checked two ways against what
 * /vectors/search embeds a query with: element by element against the embedder's own query path
 * run in this process on the same model files, and through the store: a dense search's score for
 * each stored text is the dot product of the client's vectors of the query and of that text.
 */
import fs from 'node:fs';
import OpenAI, { AuthenticationError, BadRequestError } from 'openai';
import type { APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_EMBEDDING_INPUTS } from '../../contract/openai.js';
import { Batcher } from '../../embedder/src/core/batcher.js';
import { EmbeddingModel, toOutcome } from '../../embedder/src/core/model.js';
import { runCli } from '../../scripts/cli/main.js';
import { mintDevToken } from '../../scripts/lib/token.js';
import { Api } from '../helpers/api.js';
import { startE2eStack } from '../helpers/e2e.js';
import { REAL_MODEL, REAL_MODEL_DIR, assertRealModel, realModelEnv } from '../helpers/paths.js';
import { filesContaining, testEnv } from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';

const DIM = 384;
const run = Date.now().toString(36);
const ORG = `openai-${run}`;
const TEXTS = [
  'A large furry dog is running in the park',
  'A small cat sleeps on the warm windowsill',
  'Quarterly revenue grew in the northern region',
  'Submarines explore the deep ocean floor',
];
const QUERY = 'A big hairy canine is jogging outdoors';

let stack: TestStack;
let token: string;
let client: OpenAI;
let api: Api;
let model: EmbeddingModel;

/** Search's query vectors of `texts`, by the embedder's code on the same model, in this process. */
async function queryVectors(texts: string[]): Promise<Float32Array[]> {
  const encodings = texts.map((t) => model.tokenize(t, 'query'));
  const batcher = new Batcher(model, { maxBatchTokens: 16_384, maxBatchItems: 64 });
  try {
    const { vectors } = await batcher.submit(encodings, 'query');
    return encodings.map((e, i) => {
      const outcome = toOutcome(vectors[i], e.stats);
      if (!outcome.ok) throw new Error(outcome.message);
      return outcome.vector;
    });
  } finally {
    await batcher.close();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);

beforeAll(async () => {
  assertRealModel();
  stack = await startE2eStack('openai', { env: testEnv(realModelEnv()) });
  token = await mintDevToken({ secret: stack.devJwtSecret, org: ORG });
  client = new OpenAI({ baseURL: `${stack.apiUrl}/v1`, apiKey: token, maxRetries: 0 });
  api = new Api(stack.apiUrl, token);
  model = await EmbeddingModel.load({
    name: REAL_MODEL,
    version: '1',
    dir: REAL_MODEL_DIR,
    device: 'cpu',
    dtype: 'fp32',
  });
}, 240_000);

afterAll(async () => {
  await model?.dispose();
  await stack?.dispose();
}, 60_000);

describe('the openai client against the Worker', () => {
  it("gets search's query vectors, by default (base64, decoded by the SDK) and as floats", async () => {
    const expected = await queryVectors(TEXTS);
    const byDefault = await client.embeddings.create({ model: REAL_MODEL, input: TEXTS });
    const float = await client.embeddings.create({
      model: REAL_MODEL,
      input: TEXTS,
      encoding_format: 'float',
    });
    const base64 = await client.embeddings.create({
      model: REAL_MODEL,
      input: TEXTS,
      encoding_format: 'base64',
    });
    for (const res of [byDefault, float, base64]) {
      expect(res.object).toBe('list');
      expect(res.model).toBe(REAL_MODEL);
      expect(res.data.map((d) => d.index)).toEqual([0, 1, 2, 3]);
      expect(res.usage.prompt_tokens).toBeGreaterThan(TEXTS.length * 5);
      expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens);
      expect((res.usage as unknown as { truncated_inputs: number }).truncated_inputs).toBe(0);
    }
    TEXTS.forEach((_, i) => {
      const fromDefault = byDefault.data[i]!.embedding;
      const fromFloat = float.data[i]!.embedding;
      // Asked for explicitly, base64 comes back as the string: decode it as OpenAI specifies.
      const encoded = base64.data[i]!.embedding as unknown as string;
      expect(typeof encoded).toBe('string');
      const bytes = Buffer.from(encoded, 'base64');
      const fromBase64 = Array.from({ length: DIM }, (_, k) => bytes.readFloatLE(k * 4));
      for (const v of [fromDefault, fromFloat, fromBase64]) {
        expect(v).toHaveLength(DIM);
        expect(maxAbsDiff(v, expected[i]!)).toBeLessThanOrEqual(1e-6);
      }
      // All three carry the same float32 values.
      expect(fromDefault).toEqual(fromFloat);
      expect(fromBase64).toEqual(fromFloat);
    });
  });

  it("gives the vectors whose dot products are dense search's scores over the stored texts", async () => {
    const res = await api.request<{ jobs: Array<{ job_id: string }> }>(
      'POST',
      '/vectors/embed/batch',
      {
        asset_id: 'corpus',
        segments: TEXTS.map((text, i) => ({ segment_id: `t${i}`, text })),
      },
    );
    expect(res.status).toBe(202);
    for (const { job_id } of res.body.jobs) {
      expect((await api.waitForJob(job_id)).status).toBe('SUCCEEDED');
    }
    const found = await api.search({ query_text: QUERY, mode: 'dense', limit: 10 });
    expect(found.status).toBe(200);
    expect(found.body.results).toHaveLength(TEXTS.length);
    const vectors = await client.embeddings.create({ model: REAL_MODEL, input: [QUERY, ...TEXTS] });
    const query = vectors.data[0]!.embedding;
    for (const hit of found.body.results) {
      const i = Number(String(hit.payload.segment_id).slice(1));
      const passage = vectors.data[i + 1]!.embedding;
      expect(Math.abs(hit.score - dot(query, passage)), `t${i}`).toBeLessThan(1e-5);
    }
    expect(found.body.results[0]!.payload.segment_id).toBe('t0'); // the dog, by meaning
  });

  it('serves `heimdex embed` the same vectors, one JSON array per line', async () => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await runCli(['embed', TEXTS[0]!, TEXTS[1]!, '--model', REAL_MODEL], {
      out: (l) => void stdout.push(l),
      err: (l) => void stderr.push(l),
      progress: { write: () => true, isTTY: false },
      env: { HEIMDEX_URL: stack.apiUrl, HEIMDEX_TOKEN: token },
    });
    expect({ code, stderr }).toEqual({
      code: 0,
      stderr: [expect.stringMatching(new RegExp(`^2 embeddings of ${DIM} dimensions`))],
    });
    const expected = await queryVectors(TEXTS.slice(0, 2));
    expect(stdout).toHaveLength(2);
    stdout.forEach((line, i) => {
      expect(maxAbsDiff(JSON.parse(line) as number[], expected[i]!)).toBeLessThanOrEqual(1e-6);
    });
  });

  it(`embeds ${MAX_EMBEDDING_INPUTS} inputs in one request, in order`, async () => {
    const inputs = Array.from(
      { length: MAX_EMBEDDING_INPUTS },
      (_, i) => `${TEXTS[i % TEXTS.length]} (variant ${i})`,
    );
    const res = await client.embeddings.create({ model: REAL_MODEL, input: inputs });
    expect(res.data).toHaveLength(MAX_EMBEDDING_INPUTS);
    expect(res.data.every((d, i) => d.index === i && d.embedding.length === DIM)).toBe(true);
    const sample = [0, 1, 777, MAX_EMBEDDING_INPUTS - 1];
    const expected = await queryVectors(sample.map((i) => inputs[i]!));
    sample.forEach((i, k) => {
      expect(maxAbsDiff(res.data[i]!.embedding, expected[k]!)).toBeLessThanOrEqual(1e-6);
    });
  }, 120_000);

  it("surfaces the problem's message, param and code through the SDK's errors", async () => {
    const unknown = await client.embeddings
      .create({ model: 'text-embedding-3-small', input: 'hello' })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(unknown).toBeInstanceOf(BadRequestError);
    const bad = unknown as BadRequestError;
    expect(bad.status).toBe(400);
    expect(bad.param).toBe('model');
    expect(bad.code).toBe('validation_failed');
    expect(bad.type).toBe('invalid_request_error');
    expect(bad.message).toMatch(/^400 model: "text-embedding-3-small" is not served here/);
    expect(bad.message).toContain(`"${REAL_MODEL}"`);
    expect(bad.requestID).toMatch(/^[0-9a-f-]{36}$/);

    const blank = await client.embeddings
      .create({ model: REAL_MODEL, input: ['fine', '   '] })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(blank).toBeInstanceOf(BadRequestError);
    expect((blank as APIError).message).toBe('400 input[1]: must not be blank');
    expect((blank as APIError).param).toBe('input[1]');

    const dims = await client.embeddings
      .create({ model: REAL_MODEL, input: 'hello', dimensions: 256 })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect((dims as APIError).param).toBe('dimensions');
    expect((dims as APIError).message).toContain(String(DIM));

    const stranger = new OpenAI({
      baseURL: `${stack.apiUrl}/v1`,
      apiKey: 'sk-not-a-jwt',
      maxRetries: 0,
    });
    const denied = await stranger.embeddings.create({ model: REAL_MODEL, input: 'hello' }).then(
      () => null,
      (err: unknown) => err,
    );
    expect(denied).toBeInstanceOf(AuthenticationError);
    expect((denied as APIError).message).toBe('401 invalid or expired token');
  });

  it('truncates a text longer than the window and says so; keeps no text anywhere', async () => {
    const canary = `okapi-canary-${run}-narwhal`;
    const long = `${canary} ${'the ocean floor is deep and dark '.repeat(80)}`;
    const res = await client.embeddings.create({
      model: REAL_MODEL,
      input: [`${canary} is a word`, long],
      user: canary,
    });
    expect((res.usage as unknown as { truncated_inputs: number }).truncated_inputs).toBe(1);
    const [, expected] = await queryVectors([`${canary} is a word`, long]);
    expect(maxAbsDiff(res.data[1]!.embedding, expected!)).toBeLessThanOrEqual(1e-6);
    // Give the processes a moment to flush their logs.
    await new Promise((r) => setTimeout(r, 500));
    for (const file of [stack.logs.worker, stack.logs.embedder!]) {
      expect(fs.readFileSync(file, 'utf8')).not.toContain(canary);
    }
    expect(filesContaining(stack.dataDir, canary)).toEqual([]);
  });
});
