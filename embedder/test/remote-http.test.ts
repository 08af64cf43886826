/**
 * Remote model servers (core/remote-http.ts, core/remote-embedding.ts) against recorded responses
 * in the documented formats of OpenAI's embeddings API (float and base64) and of TEI's
 * /v1/embeddings, served by a local node:http server (fixtures/remote/server.ts), and against its
 * fault modes: 429 with Retry-After (the wait is honoured), 503 then success (retried), 400 (not
 * retried, a clear error), hangs (timeouts), a refused connection, and the circuit breaker that
 * turns an outage into fast 503s with Retry-After and recovers after its cool-down.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbedderConfig, ModelConfig, RemoteEmbeddingConfig } from '../src/config.js';
import { Batcher } from '../src/core/batcher.js';
import { ServiceError } from '../src/core/errors.js';
import {
  CircuitBreaker,
  RemoteClient,
  parseRetryAfter,
  serverMessage,
} from '../src/core/remote-http.js';
import type { BreakerState, RemoteOutcome, RemoteSettings } from '../src/core/remote-http.js';
import { startEmbedder } from '../src/server.js';
import type { RunningEmbedder } from '../src/server.js';
import { z } from 'zod';
import { embeddingsReply, recorded, startFakeServer } from './fixtures/remote/server.js';
import type { FakeServer } from './fixtures/remote/server.js';
import { TOKEN, client, maxAbsDiff, tempDir, testConfig } from './helpers.js';
import type { Json } from './helpers.js';

const KEY = 'sk-test-0123456789';
const OPENAI_MODEL: ModelConfig = {
  name: 'text-embedding-3-small',
  version: '1',
  dir: null,
  device: 'cpu',
  dtype: 'fp32',
};

function settings(url: string, over: Partial<RemoteSettings> = {}): RemoteSettings {
  return {
    url,
    apiKey: KEY,
    timeoutMs: 2000,
    maxRetries: 2,
    retryMaxMs: 2000,
    breakerThreshold: 5,
    breakerCooldownMs: 1000,
    ...over,
  };
}

function remoteEmbedding(url: string, over: Partial<RemoteEmbeddingConfig> = {}) {
  return {
    ...settings(url),
    model: null,
    batchSize: 2,
    concurrency: 2,
    tokenizer: 'bytes' as const,
    maxTokens: 8191,
    ...over,
  };
}

/** A client whose attempts, retries and breaker states are recorded. */
function observed(url: string, over: Partial<RemoteSettings> = {}) {
  const attempts: RemoteOutcome[] = [];
  const states: BreakerState[] = [];
  let retries = 0;
  const remote = new RemoteClient(settings(url, over), {
    what: 'the embedding server',
    envPrefix: 'EMBEDDING_REMOTE',
    observer: {
      attempt: (outcome) => attempts.push(outcome),
      retry: () => retries++,
      breaker: (state) => states.push(state),
    },
  });
  return { remote, attempts, states, retries: () => retries };
}

const Anything = z.unknown();
const post = (remote: RemoteClient, inputs: string[] = ['hello there']) =>
  remote.post({ path: '/embeddings', body: { input: inputs }, schema: Anything, inputs });

async function failure(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceError);
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

/** The vectors of a recorded response, normalised as the embedder normalises them. */
function unitVectors(file: string): number[][] {
  const body = recorded(file) as { data: Array<{ embedding: number[] }> };
  return body.data.map(({ embedding }) => {
    const norm = Math.hypot(...embedding);
    return embedding.map((x) => x / norm);
  });
}

async function withEmbedder<T>(
  config: (dir: string) => EmbedderConfig,
  run: (embedder: RunningEmbedder, logs: string[]) => Promise<T>,
): Promise<T> {
  const tmp = await tempDir('remote-http');
  const logs: string[] = [];
  const embedder = await startEmbedder(config(tmp.dir), { log: (l) => logs.push(l) });
  try {
    return await run(embedder, logs);
  } finally {
    await embedder.close();
    await tmp.remove();
  }
}

let server: FakeServer;
beforeAll(async () => {
  server = await startFakeServer(embeddingsReply('openai-embeddings-float.json'));
});
afterAll(async () => {
  await server.close();
});

describe('recorded responses', () => {
  it.each([
    ['openai-embeddings-float.json'],
    ['openai-embeddings-base64.json'],
    ['tei-openai-embeddings.json'],
  ])('embeds through a server answering like %s', async (file) => {
    server.handle(embeddingsReply(file));
    server.received.length = 0;
    await withEmbedder(
      (dir) =>
        testConfig({
          dataDir: dir,
          model: OPENAI_MODEL,
          remoteEmbedding: remoteEmbedding(`${server.url}/v1`),
        }),
      async (embedder) => {
        const call = client(embedder.url);
        const res = await call('POST', '/v1/embeddings', {
          // Of one length, so that the batcher keeps them in order: [first, second], [third].
          input: ['first text', 'other text', 'third text'],
          model: OPENAI_MODEL.name,
        });
        expect(res.status).toBe(200);
        // Batches of EMBEDDING_REMOTE_BATCH_SIZE=2: the recorded answer's first items, each.
        const expected = unitVectors('openai-embeddings-float.json');
        const got = res.json.data.map((d: Json) => d.embedding as number[]);
        expect(got).toHaveLength(3);
        [0, 1, 0].forEach((k, i) => {
          expect(maxAbsDiff(got[i], expected[k]!), `input ${i}`).toBeLessThanOrEqual(1e-7);
        });
        expect(res.json.usage).toEqual({
          prompt_tokens: 30,
          total_tokens: 30,
          truncated_inputs: 0,
        });
      },
    );
    // Warm-up, then the three texts in requests of at most two, each as OpenAI's SDK sends it.
    const sent = server.received.slice(1);
    expect(
      sent
        .map((r) => r.body.input)
        .flat()
        .sort(),
    ).toEqual(['first text', 'other text', 'third text']);
    for (const r of server.received) {
      expect(r).toMatchObject({
        method: 'POST',
        url: '/v1/embeddings',
        authorization: `Bearer ${KEY}`,
        body: { model: 'text-embedding-3-small', encoding_format: 'float' },
      });
      expect(r.body.input.length).toBeLessThanOrEqual(2);
    }
  });

  it('sends EMBEDDING_REMOTE_MODEL as the model, and refuses a changed dimension mid-flight', async () => {
    server.handle(embeddingsReply('openai-embeddings-float.json'));
    server.received.length = 0;
    await withEmbedder(
      (dir) =>
        testConfig({
          dataDir: dir,
          model: { ...OPENAI_MODEL, name: 'openai-small' },
          remoteEmbedding: remoteEmbedding(`${server.url}/v1`, { model: 'text-embedding-3-small' }),
        }),
      async (embedder) => {
        expect(server.received[0]?.body.model).toBe('text-embedding-3-small');
        server.handle(() => ({
          status: 200,
          body: { data: [{ index: 0, embedding: [0.1, 0.2, 0.3] }] },
        }));
        const res = await client(embedder.url)('POST', '/v1/embeddings', {
          input: 'a text',
          model: 'openai-small',
        });
        expect(res.status).toBe(502);
        expect(res.json.code).toBe('backend_error');
        expect(res.json.detail).toMatch(/3-dimensional vector; "openai-small" makes 8-dimensional/);
      },
    );
  });
});

describe("a server's own truncation report", () => {
  it('is logged as a warning with the count, never the text', async () => {
    const body = recorded('openai-embeddings-float.json') as { data: unknown[] };
    server.handle((r) => ({
      status: 200,
      body: {
        ...body,
        data: body.data.slice(0, r.body.input.length),
        usage: { prompt_tokens: 9, total_tokens: 9, truncated_inputs: 1 },
      },
    }));
    const secret = `kept-private-${randomUUID()}`;
    await withEmbedder(
      (dir) =>
        testConfig({
          dataDir: dir,
          model: OPENAI_MODEL,
          remoteEmbedding: remoteEmbedding(`${server.url}/v1`),
        }),
      async (embedder, logs) => {
        const res = await client(embedder.url)('POST', '/v1/embeddings', {
          input: secret,
          model: OPENAI_MODEL.name,
        });
        expect(res.status).toBe(200);
        const warning = logs
          .map((l) => JSON.parse(l) as Json)
          .filter((l) => String(l.msg).includes('truncated inputs'));
        expect(warning.length).toBeGreaterThanOrEqual(1);
        expect(warning.at(-1)).toMatchObject({ count: 1, model: OPENAI_MODEL.name });
        expect(logs.join('\n')).not.toContain(secret);
      },
    );
  });
});

describe('faults', () => {
  it('waits for Retry-After on 429, then succeeds', async () => {
    let calls = 0;
    server.handle(() =>
      ++calls === 1
        ? {
            status: 429,
            headers: { 'retry-after': '1' },
            body: { error: { message: 'slow down' } },
          }
        : { status: 200, body: { ok: true } },
    );
    const { remote, attempts, retries } = observed(server.url);
    const started = performance.now();
    expect(await post(remote)).toEqual({ ok: true });
    expect(performance.now() - started).toBeGreaterThanOrEqual(950);
    expect(attempts).toEqual(['rate_limited', 'ok']);
    expect(retries()).toBe(1);
  });

  it('retries a 503 with backoff, then succeeds', async () => {
    let calls = 0;
    server.handle(() => (++calls <= 2 ? { status: 503 } : { status: 200, body: { ok: 1 } }));
    const { remote, attempts, retries } = observed(server.url);
    expect(await post(remote)).toEqual({ ok: 1 });
    expect(attempts).toEqual(['server_error', 'server_error', 'ok']);
    expect(retries()).toBe(2);
  });

  it('gives up after EMBEDDING_REMOTE_MAX_RETRIES as backend_unavailable with Retry-After', async () => {
    server.handle(() => ({ status: 502, body: 'Bad Gateway' }));
    const { remote, attempts } = observed(server.url, { maxRetries: 1 });
    const err = await failure(post(remote));
    expect(err.code).toBe('backend_unavailable');
    expect(err.options.retryable).toBe(true);
    expect(err.options.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(err.message).toMatch(/answered 502: Bad Gateway \(2 attempts\)/);
    expect(attempts).toEqual(['server_error', 'server_error']);
  });

  it('does not wait for a Retry-After over EMBEDDING_REMOTE_RETRY_MAX_MS', async () => {
    server.handle(() => ({ status: 429, headers: { 'retry-after': '120' } }));
    const { remote, attempts } = observed(server.url, { retryMaxMs: 1000 });
    const started = performance.now();
    const err = await failure(post(remote));
    expect(performance.now() - started).toBeLessThan(900);
    expect(err.code).toBe('backend_unavailable');
    expect(err.options.retryAfterSeconds).toBe(120);
    expect(err.message).toContain('EMBEDDING_REMOTE_RETRY_MAX_MS');
    expect(attempts).toEqual(['rate_limited']);
  });

  it('does not retry a 400, and says what the server said', async () => {
    const before = server.received.length;
    server.handle(() => ({
      status: 400,
      body: {
        error: {
          message: "This model's maximum context length is 8192 tokens.",
          type: 'invalid_request_error',
        },
      },
    }));
    const { remote, attempts } = observed(server.url);
    const err = await failure(post(remote));
    expect(err.code).toBe('backend_error');
    expect(err.options.retryable).toBe(false);
    expect(err.message).toContain(
      "refused the request: 400: This model's maximum context length is 8192 tokens",
    );
    expect(server.received.length - before).toBe(1);
    expect(attempts).toEqual(['client_error']);
  });

  it('withholds a server message that quotes an input', async () => {
    const secret = `private words ${randomUUID()}`;
    server.handle((r) => ({
      status: 422,
      body: {
        error: `Input validation error: "${String(r.body.input[0]).slice(0, 30)}" is invalid`,
      },
    }));
    const { remote } = observed(server.url);
    const err = await failure(post(remote, [secret]));
    expect(err.message).not.toContain(secret.slice(0, 20));
    expect(err.message).toContain('withheld');
  });

  it('times out a server that hangs, retrying, then reports the timeout setting', async () => {
    server.handle(() => 'hang');
    const { remote, attempts } = observed(server.url, { timeoutMs: 200, maxRetries: 1 });
    const started = performance.now();
    const err = await failure(post(remote));
    expect(performance.now() - started).toBeGreaterThanOrEqual(400);
    expect(err.code).toBe('backend_unavailable');
    expect(err.message).toMatch(/did not answer within 200 ms \(EMBEDDING_REMOTE_TIMEOUT_MS\)/);
    expect(attempts).toEqual(['timeout', 'timeout']);
  });

  it('reports a refused connection as backend_unavailable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { remote, attempts } = observed(`http://127.0.0.1:${port}`, { maxRetries: 1 });
    const err = await failure(post(remote));
    expect(err.code).toBe('backend_unavailable');
    expect(err.message).toMatch(/could not be reached: ECONNREFUSED/);
    expect(attempts).toEqual(['network_error', 'network_error']);
  });

  it('refuses an answer outside the protocol without retrying', async () => {
    server.handle(() => ({ status: 200, body: { data: 'nope' } }));
    const remote = new RemoteClient(settings(server.url), {
      what: 'the embedding server',
      envPrefix: 'EMBEDDING_REMOTE',
    });
    const err = await failure(
      remote.post({
        path: '/embeddings',
        body: {},
        schema: z.object({ data: z.array(z.unknown()) }),
        inputs: [],
      }),
    );
    expect(err.code).toBe('backend_error');
    expect(err.message).toMatch(/not the expected protocol \(data: /);
  });
});

describe('the circuit breaker', () => {
  it('opens after N failed attempts, fails fast, probes after the cool-down', () => {
    let now = 0;
    const states: BreakerState[] = [];
    const breaker = new CircuitBreaker(
      3,
      1000,
      (s) => states.push(s),
      () => now,
    );
    for (let i = 0; i < 2; i++) {
      expect(breaker.admit()).toEqual({ ok: true, probe: false });
      breaker.failure(false);
    }
    breaker.success(false); // a success starts the count again
    for (let i = 0; i < 3; i++) breaker.failure(false);
    expect(breaker.state).toBe('open');
    now = 400;
    expect(breaker.admit()).toEqual({ ok: false, retryInMs: 600 });
    now = 1000;
    expect(breaker.admit()).toEqual({ ok: true, probe: true });
    expect(breaker.admit()).toEqual({ ok: false, retryInMs: 0 }); // one probe at a time
    breaker.failure(true); // the probe failed: open again
    expect(breaker.state).toBe('open');
    now = 2100;
    expect(breaker.admit()).toEqual({ ok: true, probe: true });
    breaker.success(true);
    expect(breaker.state).toBe('closed');
    expect(states).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('turns an outage into fast 503s with Retry-After, then recovers', async () => {
    server.handle(embeddingsReply('openai-embeddings-float.json'));
    await withEmbedder(
      (dir) =>
        testConfig({
          dataDir: dir,
          model: OPENAI_MODEL,
          remoteEmbedding: remoteEmbedding(`${server.url}/v1`, {
            maxRetries: 0,
            breakerThreshold: 2,
            breakerCooldownMs: 1500,
          }),
        }),
      async (embedder, logs) => {
        const call = client(embedder.url);
        const embed = () =>
          call('POST', '/v1/embeddings', { input: 'x', model: OPENAI_MODEL.name });
        const search = () =>
          call('POST', '/internal/search', { org_id: 'o1', query_text: 'x', mode: 'dense' });
        const scrape = () =>
          fetch(`${embedder.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then(
            (r) => r.text(),
          );
        server.handle(() => ({ status: 500, body: { error: 'internal' } }));
        for (let i = 0; i < 2; i++) {
          const res = await embed();
          expect(res.status).toBe(503);
          expect(res.json.code).toBe('backend_unavailable');
          expect(res.json.detail).toMatch(/answered 500: internal/);
        }
        const hits = server.received.length;
        const started = performance.now();
        const fast = await search();
        expect(performance.now() - started).toBeLessThan(500);
        expect(fast.status).toBe(503);
        expect(fast.json.code).toBe('backend_unavailable');
        expect(fast.json.detail).toContain('circuit breaker is open');
        expect(Number(fast.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(Number(fast.headers.get('retry-after'))).toBeLessThanOrEqual(2);
        const openAi = await embed();
        expect(openAi.status).toBe(503);
        expect(openAi.json.error.type).toBe('server_error');
        expect(server.received.length).toBe(hits); // the server was not called
        const metrics = await scrape();
        expect(metrics).toContain('heimdex_remote_breaker_state{backend="embedding"} 2');
        expect(metrics).toMatch(/outcome="breaker_open"\} [2-9]/);
        expect(logs.join('\n')).toContain('"code":"backend_unavailable"');

        server.handle(embeddingsReply('openai-embeddings-float.json'));
        await new Promise((resolve) => setTimeout(resolve, 1600));
        const healed = await embed();
        expect(healed.status).toBe(200);
        expect(await scrape()).toContain('heimdex_remote_breaker_state{backend="embedding"} 0');
      },
    );
  });
});

describe('concurrent passes (EMBEDDING_REMOTE_CONCURRENCY)', () => {
  it('runs up to `concurrency` passes at once, each of at most the batch size, and drains on close', async () => {
    let inFlight = 0;
    let most = 0;
    const sizes: number[] = [];
    const batcher = new Batcher(
      {
        infer: async (batch) => {
          inFlight++;
          most = Math.max(most, inFlight);
          sizes.push(batch.length);
          await new Promise((resolve) => setTimeout(resolve, 50));
          inFlight--;
          return batch.map((e) => Float32Array.of(e.tokens ?? 0));
        },
      },
      { maxBatchTokens: Number.MAX_SAFE_INTEGER, maxBatchItems: 2, concurrency: 3 },
    );
    const encoding = (n: number) => ({
      ids: [],
      tokens: n,
      typeIds: null,
      input: 'x',
      stats: { text_len: 1, token_count: n, truncated: false, truncated_len: 1 },
    });
    const first = batcher.submit([encoding(1)], 'api');
    await new Promise((resolve) => setImmediate(resolve));
    // While the first pass runs, more work starts passes of its own, up to three at once.
    const rest = [2, 3, 4, 5, 6, 7, 8].map((n) => batcher.submit([encoding(n)], 'api'));
    const closed = batcher.close();
    const done = await Promise.all([first, ...rest]);
    await closed;
    expect(done.map((d) => d.vectors[0]?.[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(most).toBe(3);
    expect(Math.max(...sizes)).toBe(2);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(8);
  });
});

describe('helpers', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2026-12-02T08:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Wed, 02 Dec 2026 08:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 02 Dec 2026 07:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it("reads each server's error message, bounded", () => {
    expect(serverMessage(JSON.stringify({ error: { message: 'OpenAI says' } }), [])).toBe(
      'OpenAI says',
    );
    expect(serverMessage(JSON.stringify({ error: 'TEI says', error_type: 'Validation' }), [])).toBe(
      'TEI says',
    );
    expect(serverMessage(JSON.stringify({ message: 'Cohere says' }), [])).toBe('Cohere says');
    expect(serverMessage(JSON.stringify({ detail: 'a problem' }), [])).toBe('a problem');
    expect(serverMessage('plain\ntext', [])).toBe('plain text');
    expect(serverMessage('x'.repeat(1000), []).length).toBeLessThanOrEqual(300);
  });
});
