/**
 * Chunking through the Worker: the `chunking` of a request, a batch segment and an organisation's
 * settings, resolved (segment > batch > organisation > the embedder's default) into the job key,
 * the queue message and the embedder call; the settings routes; the honest text limit (bytes of
 * UTF-8 one queue message carries) and the relay's sendBatch splitting; chunk counts in job results
 * and `group_by` in search. The queue is a recording one and the embedder is answered here where
 * what it receives is the point, so these tests check the Worker's side alone.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { and, eq, inArray, isNotNull } from 'drizzle-orm';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_CHUNK_TOKENS } from '../../contract/internal';
import type {
  EmbedItem,
  EmbedResponse,
  PointPayload,
  SearchHit,
  SearchRequest,
  SearchResponse,
} from '../../contract/internal';
import { jobs, outbox } from '../../db/schema';
import worker from '../src/index';
import { jsonBytes } from '../src/lib/chunk';
import { jobKey } from '../src/lib/hash';
import { TextCipher } from '../src/lib/text-cipher';
import {
  MAX_TEXT_BYTES,
  QUEUE_BATCH_MAX_BYTES,
  QUEUE_BATCH_MAX_MESSAGES,
  QUEUE_MESSAGE_BODY_MAX_BYTES,
  QUEUE_MESSAGE_ENVELOPE_BYTES,
  QUEUE_MESSAGE_MAX_BYTES,
  QUEUE_MESSAGE_METADATA_BYTES,
  TEXT_SEAL_BYTES,
} from '../src/limits';
import type { EmbedMessage } from '../src/queue/message';
import { recordOutcomes } from '../src/services/jobs';
import type { PendingMessage } from '../src/services/jobs';
import { sendBatches } from '../src/services/outbox';
import { baseEnv, call, checkProblem, envWith, queueMessage, token, uniqueOrg } from './helpers';
import { withDb } from './helpers';
import { expectFieldErrors } from './problem';
import { badRequests } from './routes';

const quiet = envWith({ QUEUE_SEND_DISABLED: 'true' });

/** An env whose EMBED_QUEUE records every sendBatch call (one array of bodies per call). */
function recording(overrides: Record<string, string> = {}) {
  const calls: EmbedMessage[][] = [];
  const env = envWith(overrides);
  (env as { EMBED_QUEUE: unknown }).EMBED_QUEUE = {
    async sendBatch(messages: Iterable<MessageSendRequest<EmbedMessage>>) {
      calls.push([...messages].map((m) => m.body));
    },
    async send(body: EmbedMessage) {
      calls.push([body]);
    },
  };
  const messages = () => calls.flat();
  const bySegment = (segment: string) => messages().find((m) => m.segment_id === segment)!;
  return { env, calls, messages, bySegment };
}

/**
 * Runs `fn` while the embedder's `path` is answered by `answer` (every other fetch goes through);
 * returns fn's result and the request bodies the Worker sent there.
 */
async function withEmbedder<Req, T>(
  path: string,
  answer: (body: Req) => unknown,
  fn: () => Promise<T>,
): Promise<{ result: T; requests: Req[] }> {
  const realFetch = globalThis.fetch;
  const url = (baseEnv.EMBEDDER_URL as string).replace(/\/+$/, '') + path;
  const requests: Req[] = [];
  const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const target = input instanceof Request ? input.url : String(input);
    if (target !== url) return realFetch(input, init);
    const body = JSON.parse(String(init?.body)) as Req;
    requests.push(body);
    return Response.json(answer(body));
  });
  try {
    return { result: await fn(), requests };
  } finally {
    spy.mockRestore();
  }
}

/** The embedder's answer to /internal/embed: every item stored as `chunks` chunks. */
const stored =
  (chunks: number) =>
  (body: { items: EmbedItem[] }): EmbedResponse => ({
    results: body.items.map((item) => ({
      job_id: item.job_id,
      status: 'ok' as const,
      point_id: crypto.randomUUID(),
      chunk_count: chunks,
      applied: true,
      text_len: item.text.length,
      token_count: 12,
      truncated: false,
      truncated_len: item.text.length,
      model: item.model,
      model_ver: item.model_ver,
    })),
    model: 'potion-base-2M',
    model_ver: '1',
  });

/** Delivers `messages` to the embed consumer, the embedder answered by `stored(chunks)`. */
async function deliver(messages: EmbedMessage[], chunks = 3) {
  return withEmbedder('/internal/embed', stored(chunks), async () => {
    const batch = createMessageBatch(
      'heimdex-embed',
      messages.map((m) => queueMessage(m)),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch, quiet, ctx);
    return getQueueResult(batch, ctx);
  });
}

async function embed(t: string, body: unknown, env = quiet) {
  return call('POST', '/vectors/embed', { token: t, body, env });
}

async function embedBatch(t: string, body: unknown, env = quiet) {
  return call('POST', '/vectors/embed/batch', { token: t, body, env });
}

async function putSettings(t: string, chunking: unknown) {
  const res = await call('PUT', '/vectors/settings', { token: t, body: { chunking } });
  expect(res.status).toBe(200);
  return (await res.json()) as { chunking: unknown; updated_at: string | null };
}

async function getSettings(t: string) {
  const res = await call('GET', '/vectors/settings', { token: t });
  expect(res.status).toBe(200);
  return (await res.json()) as { chunking: unknown; updated_at: string | null };
}

const jobIdOf = async (res: Response) => ((await res.json()) as { job_id: string }).job_id;

describe('chunking in POST /vectors/embed', () => {
  it('travels, in canonical form, in the queue message and the embedder call; the result counts the chunks', async () => {
    const t = await token(uniqueOrg());
    const q = recording();
    const base = { asset_id: 'doc', text: 'A text of a few words' };
    for (const [segment_id, chunking] of [
      ['windows', { overlap_tokens: 16, max_tokens: 128 }],
      ['truncated', 'truncate'],
      ['defaults', {}],
      ['unset', undefined],
    ] as const) {
      const res = await embed(t, { ...base, segment_id, chunking }, q.env);
      expect(res.status).toBe(202);
    }
    const windows = q.bySegment('windows');
    expect(windows.chunking).toEqual({ max_tokens: 128, overlap_tokens: 16 });
    expect(Object.keys(windows.chunking!)).toEqual(['max_tokens', 'overlap_tokens']);
    expect(q.bySegment('truncated').chunking).toBe('truncate');
    expect(q.bySegment('defaults').chunking).toEqual({});
    // Nothing resolved: the message has no chunking at all (the shape of messages queued before it).
    expect('chunking' in q.bySegment('unset')).toBe(false);

    const { result, requests } = await deliver(q.messages(), 4);
    expect(result.explicitAcks).toHaveLength(4);
    const items = requests.flatMap((r) => r.items);
    const sent = (segment: string) => items.find((i) => i.segment_id === segment)!;
    expect(sent('windows').chunking).toEqual({ max_tokens: 128, overlap_tokens: 16 });
    expect(sent('truncated').chunking).toBe('truncate');
    expect(sent('defaults').chunking).toEqual({});
    expect('chunking' in sent('unset')).toBe(false);

    const job = await call('GET', `/jobs/${windows.job_id}`, { token: t });
    const view = (await job.json()) as { status: string; result: { chunk_count: number } };
    expect(view.status).toBe('SUCCEEDED');
    expect(view.result.chunk_count).toBe(4);
  });

  it('resolves segment > batch > organisation setting > the default', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    await putSettings(t, { max_tokens: 64 });
    const q = recording();
    const text = (s: string) => `Segment ${s} of the resolution test`;
    let res = await embedBatch(
      t,
      {
        asset_id: 'doc',
        chunking: { max_tokens: 200 },
        segments: [
          {
            segment_id: 'own',
            text: text('own'),
            chunking: { max_tokens: 100, overlap_tokens: 10 },
          },
          { segment_id: 'own-truncate', text: text('own-truncate'), chunking: 'truncate' },
          { segment_id: 'batch', text: text('batch') },
        ],
      },
      q.env,
    );
    expect(res.status).toBe(202);
    res = await embedBatch(
      t,
      {
        asset_id: 'doc',
        segments: [
          { segment_id: 'own-2', text: text('own-2'), chunking: {} },
          { segment_id: 'org', text: text('org') },
        ],
      },
      q.env,
    );
    expect(res.status).toBe(202);
    res = await embed(t, { asset_id: 'doc', segment_id: 'org-single', text: text('s') }, q.env);
    expect(res.status).toBe(202);
    await putSettings(t, null);
    res = await embed(t, { asset_id: 'doc', segment_id: 'default', text: text('d') }, q.env);
    expect(res.status).toBe(202);
    // Another organisation's setting never applies.
    const other = await token(uniqueOrg());
    res = await embed(other, { asset_id: 'doc', segment_id: 'stranger', text: text('x') }, q.env);
    expect(res.status).toBe(202);

    const expected: Record<string, unknown> = {
      own: { max_tokens: 100, overlap_tokens: 10 },
      'own-truncate': 'truncate',
      batch: { max_tokens: 200 },
      'own-2': {},
      org: { max_tokens: 64 },
      'org-single': { max_tokens: 64 },
      default: undefined,
      stranger: undefined,
    };
    for (const [segment, chunking] of Object.entries(expected)) {
      expect(q.bySegment(segment).chunking, segment).toEqual(chunking);
    }
    // The embedder is asked for exactly that.
    const { requests } = await deliver(q.messages());
    const items = requests.flatMap((r) => r.items);
    for (const [segment, chunking] of Object.entries(expected)) {
      expect(items.find((i) => i.segment_id === segment)!.chunking, segment).toEqual(chunking);
    }
  });

  it('is part of the job key: identical resubmissions stay one job, other chunking is a new job', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const item = { asset_id: 'doc', segment_id: 's1', text: 'Idempotent per chunking' };
    const submit = async (chunking: unknown, status: number) => {
      const res = await embed(t, chunking === undefined ? item : { ...item, chunking });
      expect(res.status, JSON.stringify(chunking)).toBe(status);
      return jobIdOf(res);
    };
    const plain = await submit(undefined, 202);
    expect(await submit(undefined, 200)).toBe(plain);
    const windows = await submit({ max_tokens: 128 }, 202);
    expect(windows).not.toBe(plain);
    expect(await submit({ max_tokens: 128 }, 200)).toBe(windows);
    const both = await submit({ max_tokens: 128, overlap_tokens: 16 }, 202);
    expect(new Set([plain, windows, both]).size).toBe(3);
    // The same chunking written in another key order is the same job.
    expect(await submit({ overlap_tokens: 16, max_tokens: 128 }, 200)).toBe(both);
    const truncate = await submit('truncate', 202);
    expect(await submit('truncate', 200)).toBe(truncate);
    const defaults = await submit({}, 202);
    expect(new Set([plain, windows, both, truncate, defaults]).size).toBe(5);

    // The organisation's setting resolves into the key as if the request had named it.
    const second = { ...item, segment_id: 's2' };
    const before = await jobIdOf(await embed(t, second));
    await putSettings(t, { max_tokens: 96 });
    const res = await embed(t, second);
    expect(res.status).toBe(202);
    const underSetting = await jobIdOf(res);
    expect(underSetting).not.toBe(before);
    const again = await embed(t, second);
    expect(again.status).toBe(200);
    expect(await jobIdOf(again)).toBe(underSetting);
    const named = await embed(t, { ...second, chunking: { max_tokens: 96 } });
    expect(named.status).toBe(200);
    expect(await jobIdOf(named)).toBe(underSetting);
    // Setting cleared: the first job's key again (re-queued, as a newer job replaced it).
    await putSettings(t, null);
    expect(await jobIdOf(await embed(t, second))).toBe(before);
  });

  it('keys a job without chunking as before chunking existed (no chunking field hashed)', async () => {
    const parts = {
      orgId: 'o',
      assetId: 'a',
      segmentId: 's',
      model: 'm',
      modelVer: '1',
      text: 'x',
    };
    const plain = await jobKey(parts);
    expect(await jobKey({ ...parts, chunking: undefined })).toBe(plain);
    expect(await jobKey({ ...parts, chunking: {} })).not.toBe(plain);
    expect(await jobKey({ ...parts, chunking: 'truncate' })).not.toBe(plain);
    expect(await jobKey({ ...parts, chunking: { overlap_tokens: 2, max_tokens: 32 } })).toBe(
      await jobKey({ ...parts, chunking: { max_tokens: 32, overlap_tokens: 2 } }),
    );
  });
});

describe('the shared route table: chunking, settings, group_by and byte-limit cases', () => {
  const org = uniqueOrg('bad');
  let t: string;
  beforeAll(async () => {
    t = await token(org);
  });

  const cases = badRequests().filter((c) =>
    /chunking|settings|group_by|bytes of UTF-8/i.test(c.name),
  );

  it('has such cases for every route they concern', () => {
    expect(new Set(cases.map((c) => `${c.method} ${c.path}`))).toEqual(
      new Set([
        'POST /vectors/embed',
        'POST /vectors/embed/batch',
        'POST /vectors/search',
        'DELETE /vectors/settings',
        'PUT /vectors/settings',
      ]),
    );
  });

  it.each(cases.map((c) => [`${c.method} ${c.path}: ${c.name}`, c] as const))(
    '%s',
    async (_name, c) => {
      const headers: Record<string, string> = { ...c.headers };
      let rawBody: string | undefined;
      if (c.body !== undefined) {
        rawBody = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
        const type = c.contentType === undefined ? 'application/json' : c.contentType;
        if (type !== null) headers['content-type'] = type;
      }
      const res = await call(c.method, c.path, {
        token: c.anonymous ? undefined : t,
        rawBody,
        headers,
        env: quiet,
      });
      const problem = checkProblem(
        { status: res.status, headers: res.headers, body: await res.json() },
        c.status,
        c.code,
      );
      if (c.fields) expectFieldErrors(problem, c.fields);
      c.check?.(problem, res.headers);
    },
  );

  it('wrote no job and no settings for the tenant', async () => {
    expect(await withDb((db) => db.select().from(jobs).where(eq(jobs.orgId, org)))).toEqual([]);
    expect(await getSettings(t)).toEqual({ chunking: null, updated_at: null });
  });
});

describe('GET and PUT /vectors/settings', () => {
  it("reads and replaces the caller's organisation's settings, and no one else's", async () => {
    const t = await token(uniqueOrg());
    const other = await token(uniqueOrg());
    expect(await getSettings(t)).toEqual({ chunking: null, updated_at: null });

    const put = await putSettings(t, { overlap_tokens: 8, max_tokens: 64 });
    expect(put.chunking).toEqual({ max_tokens: 64, overlap_tokens: 8 });
    expect(Object.keys(put.chunking as object)).toEqual(['max_tokens', 'overlap_tokens']);
    expect(Date.now() - Date.parse(put.updated_at!)).toBeLessThan(60_000);
    expect(await getSettings(t)).toEqual(put);

    expect(await getSettings(other)).toEqual({ chunking: null, updated_at: null });
    await putSettings(other, 'truncate');
    expect((await getSettings(t)).chunking).toEqual({ max_tokens: 64, overlap_tokens: 8 });
    expect((await getSettings(other)).chunking).toBe('truncate');

    for (const chunking of ['truncate', {}, { max_tokens: MAX_CHUNK_TOKENS }]) {
      expect((await putSettings(t, chunking)).chunking).toEqual(chunking);
      expect((await getSettings(t)).chunking).toEqual(chunking);
    }
    const cleared = await putSettings(t, null);
    expect(cleared.chunking).toBeNull();
    expect(cleared.updated_at).not.toBeNull();
    expect((await getSettings(t)).chunking).toBeNull();
    expect((await getSettings(other)).chunking).toBe('truncate');
  });
});

describe('the text limit: what one queue message carries', () => {
  /** A text of exactly `bytes` bytes of UTF-8, mostly 4-byte characters (few code points). */
  const textOfBytes = (bytes: number) => 'a'.repeat(bytes % 4) + '😀'.repeat(Math.floor(bytes / 4));

  it('is derived from Cloudflare Queues limits (128 KB = 128,000 bytes a message)', () => {
    expect(QUEUE_MESSAGE_MAX_BYTES).toBe(128_000);
    expect(QUEUE_BATCH_MAX_BYTES).toBe(256_000);
    expect(QUEUE_MESSAGE_BODY_MAX_BYTES).toBe(128_000 - QUEUE_MESSAGE_METADATA_BYTES);
    expect(MAX_TEXT_BYTES).toBe(92_897);
  });

  it('fits the largest text in one message with the largest envelope validation lets through', async () => {
    const cipher = await TextCipher.create(
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
    );
    const binding = {
      org_id: 'o'.repeat(128),
      job_id: crypto.randomUUID(),
      seq: Number.MAX_SAFE_INTEGER,
    };
    const text = textOfBytes(MAX_TEXT_BYTES);
    const text_enc = await cipher.encrypt(text, binding);
    // base64url of IV + ciphertext + tag: TEXT_SEAL_BYTES around the text, 4 characters per 3.
    expect(text_enc.data.length).toBe(Math.ceil(((MAX_TEXT_BYTES + TEXT_SEAL_BYTES) * 4) / 3));
    const message: EmbedMessage = {
      v: 2,
      ...binding,
      // Ids of 256 UTF-16 units of 3-byte characters: the most UTF-8 an id can be.
      asset_id: '語'.repeat(256),
      segment_id: '\u2028'.repeat(256),
      model: 'm'.repeat(128),
      model_ver: 'v'.repeat(64),
      text_enc,
      request_id: 'r'.repeat(128),
      chunking: { max_tokens: MAX_CHUNK_TOKENS, overlap_tokens: MAX_CHUNK_TOKENS - 1 },
    };
    const bytes = jsonBytes(message);
    const envelope = bytes - text_enc.data.length;
    expect(envelope).toBeLessThanOrEqual(QUEUE_MESSAGE_ENVELOPE_BYTES);
    expect(bytes).toBeLessThanOrEqual(QUEUE_MESSAGE_BODY_MAX_BYTES);
    expect(bytes + QUEUE_MESSAGE_METADATA_BYTES).toBeLessThanOrEqual(QUEUE_MESSAGE_MAX_BYTES);
  });

  it(`accepts a text of exactly ${MAX_TEXT_BYTES} bytes and refuses one byte more (413 naming the field)`, async () => {
    const t = await token(uniqueOrg());
    const q = recording();
    const at = textOfBytes(MAX_TEXT_BYTES);
    const ok = await embed(t, { asset_id: 'doc', segment_id: 'at', text: at }, q.env);
    expect(ok.status).toBe(202);
    const [message] = q.messages();
    expect(jsonBytes(message)).toBeLessThanOrEqual(QUEUE_MESSAGE_BODY_MAX_BYTES);

    const over = textOfBytes(MAX_TEXT_BYTES + 1);
    // Under the character limit: only the byte limit refuses it.
    expect([...over].length).toBeLessThan(32_000);
    const res = await embed(t, { asset_id: 'doc', segment_id: 'over', text: over });
    const problem = checkProblem(
      { status: res.status, headers: res.headers, body: await res.json() },
      413,
      'payload_too_large',
    );
    expectFieldErrors(problem, ['text']);
    expect(problem.detail).toContain(`at most ${MAX_TEXT_BYTES} bytes`);
    expect(problem.errors![0]!.message).toContain(String(MAX_TEXT_BYTES + 1));

    // Whatever MAX_TEXT_CHARS allows, the byte limit holds (here for ASCII).
    const roomy = envWith({ QUEUE_SEND_DISABLED: 'true', MAX_TEXT_CHARS: '500000' });
    const ascii = await embed(
      t,
      { asset_id: 'doc', segment_id: 'ascii', text: 'x'.repeat(MAX_TEXT_BYTES + 1) },
      roomy,
    );
    expect(ascii.status).toBe(413);
    const fits = await embed(
      t,
      { asset_id: 'doc', segment_id: 'ascii', text: 'x'.repeat(MAX_TEXT_BYTES) },
      roomy,
    );
    expect(fits.status).toBe(202);
  });

  it('refuses, writing nothing, a text whose message would still not fit (an outsized configured model name)', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    // A model name no request may choose (at most 128 characters), but the Worker's own default.
    const outsized = envWith({
      QUEUE_SEND_DISABLED: 'true',
      EMBEDDING_MODEL_NAME: 'm'.repeat(QUEUE_MESSAGE_ENVELOPE_BYTES),
    });
    const res = await embedBatch(
      t,
      {
        asset_id: 'doc',
        segments: [
          { segment_id: 'short', text: 'Fits anyway' },
          { segment_id: 'long', text: textOfBytes(MAX_TEXT_BYTES) },
        ],
      },
      outsized,
    );
    const problem = checkProblem(
      { status: res.status, headers: res.headers, body: await res.json() },
      413,
      'payload_too_large',
    );
    expectFieldErrors(problem, ['segments.1.text']);
    expect(await withDb((db) => db.select().from(jobs).where(eq(jobs.orgId, org)))).toEqual([]);
  });
});

describe('the outbox relay: sendBatch calls within Cloudflare limits', () => {
  const withinLimits = (calls: EmbedMessage[][]) => {
    for (const batch of calls) {
      expect(batch.length).toBeGreaterThan(0);
      expect(batch.length).toBeLessThanOrEqual(QUEUE_BATCH_MAX_MESSAGES);
      const bytes = batch.reduce((n, m) => n + jsonBytes(m) + QUEUE_MESSAGE_METADATA_BYTES, 0);
      expect(bytes).toBeLessThanOrEqual(QUEUE_BATCH_MAX_BYTES);
      for (const m of batch) expect(jsonBytes(m)).toBeLessThanOrEqual(QUEUE_MESSAGE_BODY_MAX_BYTES);
    }
  };

  it('splits by count and by bytes, in order, one message never split or dropped', () => {
    const message = (i: number, dataChars: number): PendingMessage => ({
      outboxId: i,
      message: {
        v: 2,
        job_id: crypto.randomUUID(),
        seq: i + 1,
        org_id: 'org',
        asset_id: 'a',
        segment_id: `s${i}`,
        model: 'm',
        model_ver: '1',
        text_enc: { kid: 'kid', data: 'A'.repeat(dataChars) },
        request_id: 'req-00000001',
      },
    });
    const largest = QUEUE_MESSAGE_BODY_MAX_BYTES - jsonBytes(message(0, 0).message) - 10;
    const items = [
      ...Array.from({ length: 250 }, (_, i) => message(i, 50)),
      ...Array.from({ length: 5 }, (_, i) => message(250 + i, largest)),
      ...Array.from({ length: 30 }, (_, i) => message(255 + i, 20_000)),
    ];
    const calls = sendBatches(items);
    withinLimits(calls.map((c) => c.map((p) => p.message)));
    expect(calls.flat()).toEqual(items);
    // 250 small ones: three calls by count (100, 100, then 50 with what follows).
    expect(calls[0]).toHaveLength(100);
    expect(calls[1]).toHaveLength(100);
    // A message near 128 KB never shares a call with another of its size.
    for (const c of calls) {
      expect(c.filter((p) => jsonBytes(p.message) > 100_000).length).toBeLessThanOrEqual(1);
    }
  });

  it('sends a batch of long texts in as many calls as the limits need, and marks every row sent', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const q = recording();
    // 8 texts of 90,000 bytes (30,000 three-byte characters) and 40 short ones: under the 1 MiB
    // body limit, far over what one sendBatch call takes.
    const segments = [
      ...Array.from({ length: 8 }, (_, i) => ({
        segment_id: `long-${i}`,
        text: `${i}${'語'.repeat(29_999)}`,
      })),
      ...Array.from({ length: 40 }, (_, i) => ({ segment_id: `short-${i}`, text: `Short ${i}` })),
    ];
    const res = await embedBatch(t, { asset_id: 'doc', segments }, q.env);
    expect(res.status).toBe(202);
    expect(q.messages()).toHaveLength(48);
    expect(q.calls.length).toBeGreaterThanOrEqual(4);
    withinLimits(q.calls);
    const { jobs: made } = (await (
      await embedBatch(t, { asset_id: 'doc', segments }, quiet)
    ).json()) as { jobs: Array<{ job_id: string; existing: boolean }> };
    expect(made.every((j) => j.existing)).toBe(true);
    const sent = await withDb((db) =>
      db
        .select({ id: outbox.id })
        .from(outbox)
        .where(
          and(
            inArray(
              outbox.jobId,
              made.map((j) => j.job_id),
            ),
            isNotNull(outbox.sentAt),
          ),
        ),
    );
    expect(sent).toHaveLength(48);
  });
});

describe('job results', () => {
  it('report chunk_count, 1 for a job that finished before texts were chunked', async () => {
    const t = await token(uniqueOrg());
    const res = await embed(t, { asset_id: 'doc', segment_id: 'old', text: 'Embedded long ago' });
    const jobId = await jobIdOf(res);
    const seq = await withDb(
      async (db) => (await db.select().from(jobs).where(eq(jobs.id, jobId)))[0]!.seq,
    );
    // The result as a Worker before chunking recorded it: no chunk_count.
    await withDb((db) =>
      recordOutcomes(db, [
        {
          kind: 'succeeded',
          jobId,
          seq,
          result: {
            point_id: crypto.randomUUID(),
            model: 'potion-base-2M',
            model_ver: '1',
            text_len: 17,
            token_count: 5,
            truncated: false,
            truncated_len: 17,
            applied: true,
          },
        },
      ]),
    );
    const job = await call('GET', `/jobs/${jobId}`, { token: t });
    expect(((await job.json()) as { result: { chunk_count: number } }).result.chunk_count).toBe(1);
  });
});

describe('POST /vectors/search group_by', () => {
  const segmentPoint = crypto.randomUUID();
  const chunkPoint = crypto.randomUUID();
  const payload = (chunk: number): PointPayload => ({
    org_id: 'org',
    asset_id: 'doc',
    segment_id: 'long',
    modality: 'text',
    model: 'potion-base-2M',
    model_ver: '1',
    text_len: 4000,
    token_count: 256,
    truncated: false,
    truncated_len: 1200,
    segment_point_id: segmentPoint,
    chunk_index: chunk,
    chunk_count: 5,
    chunk_start: chunk * 900,
    chunk_end: chunk * 900 + 1200,
    job_id: crypto.randomUUID(),
    seq: 7,
    embedded_at: new Date().toISOString(),
  });
  /** The embedder's answer: by segment, the segment's best chunk (2); by chunk, chunks 2 and 0. */
  const answer = (req: SearchRequest): SearchResponse => {
    const hits: SearchHit[] =
      req.group_by === 'chunk'
        ? [
            { point_id: chunkPoint, score: 0.8, payload: payload(2) },
            { point_id: segmentPoint, score: 0.5, payload: payload(0) },
          ]
        : [{ point_id: chunkPoint, score: 0.8, payload: payload(2) }];
    return {
      results: hits,
      mode: 'dense',
      query_model: 'potion-base-2M',
      query_model_ver: '1',
      total: hits.length,
    };
  };

  async function search(body: Record<string, unknown>) {
    const t = await token(uniqueOrg());
    return withEmbedder('/internal/search', answer, async () => {
      const res = await call('POST', '/vectors/search', {
        token: t,
        body: { query_text: 'long', mode: 'dense', ...body },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as {
        results: Array<{ point_id: string; score: number; payload: Record<string, unknown> }>;
      };
    });
  }

  it('passes group_by to the embedder only when given', async () => {
    const plain = await search({});
    expect('group_by' in plain.requests[0]!).toBe(false);
    for (const group_by of ['segment', 'chunk'] as const) {
      const { requests } = await search({ group_by });
      expect(requests[0]!.group_by).toBe(group_by);
    }
  });

  it("answers per segment with the segment's point id and its best chunk's fields", async () => {
    for (const body of [{}, { group_by: 'segment' }]) {
      const { result } = await search(body);
      expect(result.results).toHaveLength(1);
      const [hit] = result.results;
      expect(hit!.point_id).toBe(segmentPoint);
      expect(hit!.payload).toMatchObject({
        segment_point_id: segmentPoint,
        chunk_index: 2,
        chunk_count: 5,
        chunk_start: 1800,
        chunk_end: 3000,
        text_len: 4000,
      });
      expect('seq' in hit!.payload).toBe(false);
    }
  });

  it('answers raw chunks with their own point ids with group_by chunk', async () => {
    const { result } = await search({ group_by: 'chunk' });
    expect(result.results.map((r) => [r.point_id, r.payload.chunk_index])).toEqual([
      [chunkPoint, 2],
      [segmentPoint, 0],
    ]);
    for (const r of result.results) {
      expect(r.payload.segment_point_id).toBe(segmentPoint);
      expect('seq' in r.payload).toBe(false);
    }
  });

  it('documents group_by, the chunk fields and the text byte limit in the OpenAPI schema', async () => {
    const doc = JSON.stringify(await (await call('GET', '/openapi.json')).json());
    for (const s of [
      'group_by',
      'segment_point_id',
      'chunk_index',
      'chunk_start',
      '"Chunking"',
      '/vectors/settings',
      `at most ${MAX_TEXT_BYTES} bytes of UTF-8`,
    ]) {
      expect(doc).toContain(s);
    }
  });
});
