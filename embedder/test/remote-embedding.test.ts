/**
 * EMBEDDING_BACKEND=openai against a real peer of the protocol: a second Heimdex embedder (the
 * real potion-base-2M model) serving POST /v1/embeddings behind its service token, and an
 * embedder whose model is that peer. Its vectors are the peer's own, its truncation and chunking
 * stats are the local backend's (the model's tokenizer is loaded here, EMBEDDING_REMOTE_TOKENIZER
 * auto → model), and ingestion and search work end to end through it. The byte approximation
 * (EMBEDDING_REMOTE_TOKENIZER=bytes) is checked against the same peer, and the start-up dimension
 * checks against real models of other sizes.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EmbedderConfig, RemoteEmbeddingConfig } from '../src/config.js';
import { StartupError, startEmbedder } from '../src/server.js';
import { useEmbedder } from './embedder-fixture.js';
import {
  DOG,
  POTION,
  TOKEN,
  embedItem,
  maxAbsDiff,
  repoRoot,
  tempDir,
  testConfig,
} from './helpers.js';
import type { Client, Json } from './helpers.js';

const CANINE = 'A big hairy canine is jogging outdoors';
const UNRELATED = 'Quarterly revenue grew in the northern region';
/** ~2,000 tokens: well past potion's 512-token window. */
const LONG = `${DOG}. `.repeat(200);
/** Several windows of varied words, for chunk offsets. */
const VARIED = Array.from(
  { length: 400 },
  (_, i) => ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'][i % 6] + String(i),
).join(' ');
const TEXTS = [DOG, CANINE, UNRELATED, 'x', LONG];

/** EMBEDDING_BACKEND=openai's settings for a server at `url`, with short waits for tests. */
export function remoteSettings(
  url: string,
  over: Partial<RemoteEmbeddingConfig> = {},
): RemoteEmbeddingConfig {
  return {
    url,
    apiKey: TOKEN,
    model: null,
    batchSize: 4,
    concurrency: 2,
    tokenizer: 'auto',
    maxTokens: null,
    timeoutMs: 5000,
    maxRetries: 2,
    retryMaxMs: 1000,
    breakerThreshold: 5,
    breakerCooldownMs: 1000,
    ...over,
  };
}

describe('EMBEDDING_BACKEND=openai against a Heimdex peer', () => {
  const peer = useEmbedder('remote-peer');
  const remote = useEmbedder('remote-front', (dir) =>
    testConfig({
      dataDir: dir,
      logLevel: 'debug',
      remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`),
    }),
  );

  const v1 = (call: Client, input: string[]) =>
    call('POST', '/v1/embeddings', { input, model: POTION });

  it("gives the peer's own vectors and usage (truncation included)", async () => {
    const [mine, theirs] = await Promise.all([v1(remote.call, TEXTS), v1(peer.call, TEXTS)]);
    expect(mine.status).toBe(200);
    expect(theirs.status).toBe(200);
    expect(mine.json.data).toHaveLength(TEXTS.length);
    TEXTS.forEach((_, i) => {
      const a = mine.json.data[i].embedding as number[];
      const b = theirs.json.data[i].embedding as number[];
      expect(a).toHaveLength(64);
      expect(maxAbsDiff(a, b), `input ${i}`).toBeLessThanOrEqual(1e-6);
    });
    // The same tokenizer counts the same tokens and cuts LONG to the same window.
    expect(mine.json.usage).toEqual(theirs.json.usage);
    expect(mine.json.usage.truncated_inputs).toBe(1);
    // Cut here, the text the peer got fitted: it never had to truncate (no warning).
    expect(remote.logs.join('\n')).not.toContain('the embedding server truncated');
  });

  it('stores what the local backend stores: the same stats, chunks and vectors', async () => {
    const org = `remote-${randomUUID().slice(0, 8)}`;
    const items = [
      embedItem(org, { segment_id: 's-dog', text: DOG }),
      embedItem(org, { segment_id: 's-long', text: LONG }),
      embedItem(org, {
        segment_id: 's-varied',
        text: VARIED,
        chunking: { max_tokens: 64, overlap_tokens: 8 },
      }),
      embedItem(org, { segment_id: 's-cut', text: LONG, chunking: 'truncate' }),
    ];
    const [mine, theirs] = await Promise.all([
      remote.call('POST', '/internal/embed', { items }),
      peer.call('POST', '/internal/embed', { items }),
    ]);
    expect(mine.status).toBe(200);
    expect(theirs.status).toBe(200);
    const stats = (r: Json) => ({
      status: r.status,
      point_id: r.point_id,
      chunk_count: r.chunk_count,
      text_len: r.text_len,
      token_count: r.token_count,
      truncated: r.truncated,
      truncated_len: r.truncated_len,
    });
    expect(mine.json.results.map(stats)).toEqual(theirs.json.results.map(stats));
    expect(mine.json.results[1].chunk_count).toBeGreaterThan(1);
    expect(mine.json.results[2].chunk_count).toBeGreaterThan(3);
    expect(mine.json.results[3]).toMatchObject({ chunk_count: 1, truncated: true });

    // Every chunk stored with the same offsets and the same vector: chunk-mode searches agree.
    const chunks = async (call: Client) => {
      const res = await call('POST', '/internal/search', {
        org_id: org,
        query_text: 'gamma delta',
        mode: 'dense',
        group_by: 'chunk',
        limit: 100,
      });
      expect(res.status).toBe(200);
      return (res.json.results as Json[])
        .map((h) => ({
          id: h.point_id as string,
          score: h.score as number,
          start: h.payload.chunk_start as number,
          end: h.payload.chunk_end as number,
        }))
        .sort((a, b) => a.id.localeCompare(b.id));
    };
    const [a, b] = await Promise.all([chunks(remote.call), chunks(peer.call)]);
    expect(a.length).toBeGreaterThan(8);
    expect(a.map(({ id, start, end }) => ({ id, start, end }))).toEqual(
      b.map(({ id, start, end }) => ({ id, start, end })),
    );
    a.forEach((hit, i) => expect(Math.abs(hit.score - b[i]!.score)).toBeLessThanOrEqual(1e-5));
  });

  it('searches end to end through the remote-backed embedder', async () => {
    const org = `remote-${randomUUID().slice(0, 8)}`;
    const stored = await remote.call('POST', '/internal/embed', {
      items: [
        embedItem(org, { segment_id: 'dog', text: DOG }),
        embedItem(org, { segment_id: 'money', text: UNRELATED }),
      ],
    });
    expect(stored.json.results.map((r: Json) => r.status)).toEqual(['ok', 'ok']);
    for (const mode of ['dense', 'hybrid']) {
      const hits = await remote.call('POST', '/internal/search', {
        org_id: org,
        query_text: CANINE,
        mode,
      });
      expect(hits.status, mode).toBe(200);
      expect(hits.json.results[0].payload.segment_id, mode).toBe('dog');
    }
    const dense = await remote.call('POST', '/internal/search', {
      org_id: org,
      query_text: CANINE,
      mode: 'dense',
    });
    // cos(dog, canine) with potion is about 0.70 (DESIGN.md); unrelated pairs about 0.1–0.2.
    expect(dense.json.results[0].score).toBeGreaterThan(0.6);
    expect(dense.json.results[1].score).toBeLessThan(0.4);
  });

  it('counts remote calls by outcome, and no input text reaches the logs or the metrics', async () => {
    const canary = `remote-canary-${randomUUID()}`;
    const res = await v1(remote.call, [`${canary} ${DOG}`]);
    expect(res.status).toBe(200);
    const metrics = await fetch(`${remote.embedder.url}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    }).then((r) => r.text());
    expect(metrics).toMatch(
      /heimdex_remote_requests_total\{backend="embedding",outcome="ok"\} [1-9]/,
    );
    expect(metrics).toMatch(/heimdex_remote_breaker_state\{backend="embedding"\} 0/);
    expect(metrics).not.toContain(canary);
    expect(remote.logs.join('\n')).not.toContain(canary);
    expect(remote.logs.join('\n')).toContain('"embedding_backend":"openai"');
  });
});

describe('EMBEDDING_REMOTE_TOKENIZER=bytes (no local tokenizer) against a Heimdex peer', () => {
  const peer = useEmbedder('remote-peer-bytes');
  const WINDOW = 300;
  const remote = useEmbedder('remote-bytes', (dir) =>
    testConfig({
      dataDir: dir,
      remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`, {
        tokenizer: 'bytes',
        maxTokens: WINDOW,
      }),
    }),
  );

  it('embeds texts that fit exactly as the peer does, and cuts conservatively in UTF-8 bytes', async () => {
    const short = [DOG, CANINE, 'Ünïcödé text, ça va? 日本語'];
    const [mine, theirs] = await Promise.all([
      remote.call('POST', '/v1/embeddings', { input: short, model: POTION }),
      peer.call('POST', '/v1/embeddings', { input: short, model: POTION }),
    ]);
    short.forEach((_, i) => {
      expect(
        maxAbsDiff(mine.json.data[i].embedding, theirs.json.data[i].embedding),
      ).toBeLessThanOrEqual(1e-6);
    });
    // token_count is the UTF-8 byte count, an upper bound of the model's own count.
    const bytes = short.reduce((n, s) => n + Buffer.byteLength(s), 0);
    expect(mine.json.usage.prompt_tokens).toBe(bytes);
    expect(mine.json.usage.prompt_tokens).toBeGreaterThanOrEqual(theirs.json.usage.prompt_tokens);

    const org = `bytes-${randomUUID().slice(0, 8)}`;
    const stored = await remote.call('POST', '/internal/embed', {
      items: [
        embedItem(org, { text: LONG, chunking: 'truncate' }),
        embedItem(org, { segment_id: 's2', text: LONG }),
      ],
    });
    const [cut, chunked] = stored.json.results as Json[];
    expect(cut).toMatchObject({
      status: 'ok',
      truncated: true,
      token_count: Buffer.byteLength(LONG),
    });
    // The window less 2 tokens for the server's special tokens, in bytes (ASCII: characters).
    expect(cut.truncated_len).toBeLessThanOrEqual(WINDOW - 2);
    expect(cut.truncated_len).toBeGreaterThan(WINDOW - 2 - 60);
    expect(chunked.chunk_count).toBeGreaterThanOrEqual(Math.ceil(LONG.length / (WINDOW - 2)));
    // What was sent fitted the peer's real window: it never had to truncate.
    expect(remote.logs.join('\n')).not.toContain('the embedding server truncated');
  });
});

describe('EMBEDDING_REMOTE_MAX_TOKENS below the model window', () => {
  const peer = useEmbedder('remote-peer-window');
  const remote = useEmbedder('remote-window', (dir) =>
    testConfig({
      dataDir: dir,
      remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`, { maxTokens: 40 }),
    }),
  );

  it("cuts to it in the model's own tokens: the vector is the peer's of the reported prefix", async () => {
    const org = `window-${randomUUID().slice(0, 8)}`;
    const stored = await remote.call('POST', '/internal/embed', {
      items: [embedItem(org, { text: VARIED, chunking: 'truncate' })],
    });
    const cut = stored.json.results[0] as Json;
    expect(cut).toMatchObject({ status: 'ok', truncated: true });
    expect(cut.truncated_len).toBeLessThan(VARIED.length / 4);
    const prefix = [...VARIED].slice(0, cut.truncated_len).join('');
    const [mine, theirs] = await Promise.all([
      remote.call('POST', '/v1/embeddings', { input: VARIED, model: POTION }),
      peer.call('POST', '/v1/embeddings', { input: prefix, model: POTION }),
    ]);
    expect(mine.json.usage.truncated_inputs).toBe(1);
    expect(theirs.json.usage.truncated_inputs).toBe(0);
    expect(
      maxAbsDiff(mine.json.data[0].embedding, theirs.json.data[0].embedding),
    ).toBeLessThanOrEqual(1e-6);
  });
});

describe('start-up checks of a remote model', () => {
  const peer = useEmbedder('remote-peer-checks');

  async function start(config: (dir: string) => EmbedderConfig) {
    const tmp = await tempDir('remote-check');
    try {
      const running = await startEmbedder(config(tmp.dir), { log: () => undefined });
      await running.close();
      return null;
    } catch (err) {
      return err;
    } finally {
      await tmp.remove();
    }
  }

  it('refuses a server whose vectors are not the registry model’s dimension', async () => {
    // minilm-l6-v2 (384 dimensions, tokenizer from the model cache) pointed at potion (64).
    const err = await start((dir) =>
      testConfig({
        dataDir: dir,
        model: {
          name: 'minilm-l6-v2',
          version: '1',
          dir: path.join(repoRoot, '.cache/models'),
          device: 'cpu',
          dtype: 'fp32',
        },
        remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`, { model: POTION }),
      }),
    );
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(
      /answered 64-dimensional vectors.*"minilm-l6-v2" makes 384/,
    );
    expect((err as Error).message).toContain('EMBEDDING_REMOTE_URL');
  });

  it('refuses a VECTOR_SIZE the remote model does not make', async () => {
    const err = await start((dir) => {
      const config = testConfig({
        dataDir: dir,
        remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`),
      });
      return { ...config, store: { ...config.store, vectorSize: 384 } } as EmbedderConfig;
    });
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(/VECTOR_SIZE=384 does not match .* 64-dimensional/);
  });

  it('refuses a wrong key and an unknown model, naming what the server said', async () => {
    const badKey = await start((dir) =>
      testConfig({
        dataDir: dir,
        remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`, {
          apiKey: 'not-the-service-token-0000',
        }),
      }),
    );
    expect(badKey).toBeInstanceOf(StartupError);
    expect((badKey as Error).message).toMatch(/refused the request: 401.*EMBEDDING_REMOTE_API_KEY/);
    const unknown = await start((dir) =>
      testConfig({
        dataDir: dir,
        remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`, { model: 'no-such-model' }),
      }),
    );
    expect(unknown).toBeInstanceOf(StartupError);
    expect((unknown as Error).message).toMatch(/refused the request: 400: .*no-such-model/);
  });

  it('needs EMBEDDING_REMOTE_MAX_TOKENS for a model without a local tokenizer', async () => {
    const err = await start((dir) =>
      testConfig({
        dataDir: dir,
        model: {
          name: 'text-embedding-3-small',
          version: '1',
          dir: null,
          device: 'cpu',
          dtype: 'fp32',
        },
        remoteEmbedding: remoteSettings(`${peer.embedder.url}/v1`),
      }),
    );
    expect(err).toBeInstanceOf(StartupError);
    expect((err as Error).message).toMatch(/EMBEDDING_REMOTE_MAX_TOKENS is required/);
  });
});
