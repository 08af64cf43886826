/**
 * The queue consumer, the dead-letter consumer and the cron sweep, driven with the Workers test
 * APIs (createMessageBatch, getQueueResult, createScheduledController) against real Postgres and
 * the real embedder.
 */
import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  waitOnExecutionContext,
} from 'cloudflare:test';
import { and, eq, isNull, sql } from 'drizzle-orm';
import { describe, expect, it, vi } from 'vitest';
import { jobs, outbox } from '../../db/schema';
import type { EmbedMessage } from '../src/queue/message';
import { TextCipher } from '../src/lib/text-cipher';
import { recordOutcomes } from '../src/services/jobs';
import worker from '../src/index';
import { baseEnv, call, envWith, queueMessage, token, uniqueOrg, withDb } from './helpers';
import { withUnreachable } from './helpers';

const quiet = envWith({ QUEUE_SEND_DISABLED: 'true' });

/** Creates jobs through the API (send switched off) and returns their outbox messages. */
async function createJobs(
  org: string,
  items: Array<{ asset_id: string; segment_id: string; text: string }>,
): Promise<EmbedMessage[]> {
  const t = await token(org);
  const ids: string[] = [];
  for (const item of items) {
    const res = await call('POST', '/vectors/embed', { token: t, body: item, env: quiet });
    expect(res.status).toBe(202);
    ids.push(((await res.json()) as { job_id: string }).job_id);
  }
  return withDb(async (db) => {
    const out: EmbedMessage[] = [];
    for (const id of ids) {
      const rows = await db.select().from(outbox).where(eq(outbox.jobId, id));
      out.push(rows.at(-1)!.payload);
    }
    return out;
  });
}

async function deliver(queue: string, messages: EmbedMessage[], env = quiet, attempts = 1) {
  const batch = createMessageBatch(
    queue,
    messages.map((m) => queueMessage(m, attempts)),
  );
  // getQueueResult reports which messages were retried but not the delay asked for: record it.
  const delays = new Map<string, number | undefined>();
  for (const m of batch.messages) {
    const retry = m.retry.bind(m);
    Object.defineProperty(m, 'retry', {
      value: (opts?: QueueRetryOptions) => {
        delays.set(m.id, opts?.delaySeconds);
        retry(opts);
      },
    });
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  const result = await getQueueResult(batch, ctx);
  return { batch, result, delays };
}

async function jobRow(id: string) {
  return withDb(async (db) => (await db.select().from(jobs).where(eq(jobs.id, id)))[0]!);
}

async function outboxRows(jobId: string) {
  return withDb((db) => db.select().from(outbox).where(eq(outbox.jobId, jobId)));
}

async function search(org: string, query_text: string, extra: Record<string, unknown> = {}) {
  const res = await call('POST', '/vectors/search', {
    token: await token(org),
    body: { query_text, mode: 'dense', ...extra },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    results: Array<{ point_id: string; score: number; payload: Record<string, unknown> }>;
  };
}

describe('embed queue consumer', () => {
  it('embeds a batch, acks each message, marks jobs SUCCEEDED and drops the text', async () => {
    const org = uniqueOrg();
    const msgs = await createJobs(org, [
      { asset_id: 'a', segment_id: '1', text: 'Mountains covered in fresh snow' },
      { asset_id: 'a', segment_id: '2', text: 'A bowl of hot tomato soup' },
    ]);
    const { batch, result } = await deliver('heimdex-embed', msgs);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks.sort()).toEqual(batch.messages.map((m) => m.id).sort());
    for (const m of msgs) {
      const row = await jobRow(m.job_id);
      expect(row.status).toBe('SUCCEEDED');
      expect(row.attempts).toBe(1);
      expect(row.result).toMatchObject({
        model: 'potion-base-2M',
        truncated: false,
        applied: true,
      });
      expect(row.completedAt).toBeInstanceOf(Date);
      expect(await outboxRows(m.job_id)).toEqual([]);
    }
    const found = await search(org, 'snowy mountain peaks');
    expect(found.results[0]!.payload).toMatchObject({ asset_id: 'a', segment_id: '1' });
  });

  it('acks a redelivered message of a finished job without touching it', async () => {
    const org = uniqueOrg();
    const [msg] = await createJobs(org, [
      { asset_id: 'a', segment_id: '1', text: 'Redelivery is harmless' },
    ]);
    await deliver('heimdex-embed', [msg!]);
    const before = await jobRow(msg!.job_id);
    const { result } = await deliver('heimdex-embed', [msg!]);
    expect(result.explicitAcks).toHaveLength(1);
    const after = await jobRow(msg!.job_id);
    expect(after.attempts).toBe(before.attempts);
    expect(after.status).toBe('SUCCEEDED');
  });

  it('acks (drops) a message that does not parse, without retrying it', async () => {
    const bad = { v: 1, job_id: 'nope' } as unknown as EmbedMessage;
    const { result } = await deliver('heimdex-embed', [bad]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(result.retryMessages).toEqual([]);
  });

  it('marks a job FAILED for an item the embedder rejects, while the rest of the batch succeeds', async () => {
    const org = uniqueOrg();
    const msgs = await createJobs(org, [
      { asset_id: 'a', segment_id: 'ok', text: 'A perfectly normal sentence' },
      { asset_id: 'a', segment_id: 'bad', text: '∰∰∰ ⌘⌘' },
    ]);
    const { result } = await deliver('heimdex-embed', msgs);
    expect(result.explicitAcks).toHaveLength(2);
    expect((await jobRow(msgs[0]!.job_id)).status).toBe('SUCCEEDED');
    const failed = await jobRow(msgs[1]!.job_id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error?.code).toBe('empty_embedding');
    expect(JSON.stringify(failed.error)).not.toContain('∰');
    expect(await outboxRows(msgs[1]!.job_id)).toEqual([]);
  });

  it('retries every message with backoff when the embedder is unreachable', async () => {
    const org = uniqueOrg();
    const msgs = await createJobs(org, [
      { asset_id: 'a', segment_id: '1', text: 'Try again later' },
    ]);
    // The embedder's address refuses connections (withUnreachable).
    const unreachable = 'http://embedder.unreachable.test';
    const down = envWith({ QUEUE_SEND_DISABLED: 'true', EMBEDDER_URL: unreachable });
    const {
      result: [first, third],
      attempts,
    } = await withUnreachable(unreachable, async () => [
      await deliver('heimdex-embed', msgs, down, 1),
      await deliver('heimdex-embed', msgs, down, 4),
    ]);
    expect(attempts).toEqual([`${unreachable}/internal/embed`, `${unreachable}/internal/embed`]);
    expect(first.result.explicitAcks).toEqual([]);
    expect(first.result.retryMessages).toHaveLength(1);
    const d1 = [...first.delays.values()][0]!;
    expect(third.result.retryMessages).toHaveLength(1);
    const d3 = [...third.delays.values()][0]!;
    expect(d1).toBeGreaterThanOrEqual(1);
    expect(d3).toBeGreaterThan(d1);
    const row = await jobRow(msgs[0]!.job_id);
    expect(row.status).toBe('QUEUED');
    expect(row.error?.code).toBe('embedder_unavailable');
    expect(await outboxRows(msgs[0]!.job_id)).toHaveLength(1);
  });

  it('waits for a slow embedder past the API timeout (EMBEDDER_QUEUE_TIMEOUT_MS), without a retry', async () => {
    const org = uniqueOrg();
    const msgs = await createJobs(org, [
      { asset_id: 'a', segment_id: 'slow', text: 'A slow but healthy embedder' },
    ]);
    // The embedder answers after 600 ms: past the API's 200 ms, within the queue's 10 s.
    const slow = 'http://embedder.slow.test';
    const realFetch = globalThis.fetch;
    const realUrl = baseEnv.EMBEDDER_URL as string;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.startsWith(slow)) return realFetch(input, init);
      await new Promise((r) => setTimeout(r, 600));
      if (init?.signal?.aborted) throw new DOMException('timed out', 'TimeoutError');
      return realFetch(realUrl + url.slice(slow.length), { ...init, signal: null });
    });
    const env = envWith({
      QUEUE_SEND_DISABLED: 'true',
      EMBEDDER_URL: slow,
      EMBEDDER_TIMEOUT_MS: '200',
      EMBEDDER_QUEUE_TIMEOUT_MS: '10000',
    });
    let delivered;
    try {
      delivered = await deliver('heimdex-embed', msgs, env);
    } finally {
      spy.mockRestore();
    }
    expect(delivered.result.retryMessages).toEqual([]);
    expect((await jobRow(msgs[0]!.job_id)).status).toBe('SUCCEEDED');
  });

  it('splits a batch into concurrent embedder calls; a refused call retries only its own jobs', async () => {
    const org = uniqueOrg();
    const msgs = await createJobs(
      org,
      ['Red apples in a basket', 'A rusty bicycle', 'Waves on a beach', 'A paper kite'].map(
        (text, i) => ({ asset_id: 'a', segment_id: `s${i}`, text }),
      ),
    );
    // The message's segment id is not covered by the text's ciphertext binding: a control
    // character in it passes the queue schema but makes the embedder refuse the whole call (400).
    const tampered = msgs.map((m, i) => (i === 1 ? { ...m, segment_id: 'bad\u0007id' } : m));
    const twoPerCall = envWith({ QUEUE_SEND_DISABLED: 'true', EMBEDDER_CALL_ITEMS: '2' });
    const { batch, result } = await deliver('heimdex-embed', tampered, twoPerCall);
    // Calls of two: [0, 1] is refused, [2, 3] succeeds.
    const retried = new Set(result.retryMessages.map((r) => r.msgId));
    const ids = batch.messages.map((m) => m.id);
    expect([...retried].sort()).toEqual([ids[0], ids[1]].sort());
    expect(result.explicitAcks.sort()).toEqual([ids[2], ids[3]].sort());
    for (const i of [0, 1]) {
      const row = await jobRow(msgs[i]!.job_id);
      expect(row.status).toBe('QUEUED');
      expect(row.error?.code).toBe('embedder_rejected');
    }
    for (const i of [2, 3]) expect((await jobRow(msgs[i]!.job_id)).status).toBe('SUCCEEDED');

    // Delivered again untampered, the refused call's jobs succeed too.
    const again = await deliver('heimdex-embed', msgs.slice(0, 2), twoPerCall, 2);
    expect(again.result.explicitAcks).toHaveLength(2);
    for (const i of [0, 1]) expect((await jobRow(msgs[i]!.job_id)).status).toBe('SUCCEEDED');
    const found = await search(org, 'a red apple');
    expect(found.results[0]!.payload).toMatchObject({ segment_id: 's0' });
  });

  it('embeds a full batch of 100 (the consumer maximum) in calls of 32', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const segments = Array.from({ length: 100 }, (_, i) => ({
      segment_id: `s${i}`,
      text: `Catalogue entry number ${i} describes item ${i * 7} in the warehouse`,
    }));
    const res = await call('POST', '/vectors/embed/batch', {
      token: t,
      body: { asset_id: 'catalogue', segments },
      env: quiet,
    });
    expect(res.status).toBe(202);
    const jobIds = ((await res.json()) as { jobs: { job_id: string }[] }).jobs.map((j) => j.job_id);
    const msgs = await withDb(async (db) => {
      const out: EmbedMessage[] = [];
      for (const id of jobIds) {
        const rows = await db.select().from(outbox).where(eq(outbox.jobId, id));
        out.push(rows.at(-1)!.payload);
      }
      return out;
    });
    const { result } = await deliver('heimdex-embed', msgs);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(100);
    const done = await withDb((db) =>
      db
        .select({ n: sql<number>`count(*)::int` })
        .from(jobs)
        .where(and(eq(jobs.orgId, org), eq(jobs.status, 'SUCCEEDED'))),
    );
    expect(done[0]!.n).toBe(100);
  });

  it('latest wins: an older job delivered after a newer one does not overwrite its vector', async () => {
    const org = uniqueOrg();
    const [older] = await createJobs(org, [
      { asset_id: 'doc', segment_id: 'title', text: 'Penguins live in Antarctica' },
    ]);
    const [newer] = await createJobs(org, [
      { asset_id: 'doc', segment_id: 'title', text: 'Volcanoes erupt molten lava' },
    ]);
    expect(newer!.seq).toBeGreaterThan(older!.seq);
    await deliver('heimdex-embed', [newer!]);
    await deliver('heimdex-embed', [older!]);

    const olderRow = await jobRow(older!.job_id);
    const newerRow = await jobRow(newer!.job_id);
    expect(newerRow.result).toMatchObject({ applied: true });
    expect(olderRow.status).toBe('SUCCEEDED');
    expect(olderRow.result).toMatchObject({ applied: false, point_id: newerRow.result!.point_id });

    const found = await search(org, 'Volcanoes erupt molten lava', { asset_id: 'doc' });
    expect(found.results).toHaveLength(1);
    expect(found.results[0]!.score).toBeGreaterThan(0.99);
    expect(found.results[0]!.payload.job_id).toBe(newer!.job_id);
  });

  it('re-queues an identical resubmission when a newer text replaced it (A → B → A ends as A)', async () => {
    const org = uniqueOrg();
    const t = await token(org);
    const A = { asset_id: 'doc', segment_id: 'x', text: 'Alpha text about gardening tools' };
    const B = { asset_id: 'doc', segment_id: 'x', text: 'Beta text about jet engines' };
    const [a1] = await createJobs(org, [A]);
    await deliver('heimdex-embed', [a1!]);
    const [b] = await createJobs(org, [B]);
    await deliver('heimdex-embed', [b!]);
    const again = await call('POST', '/vectors/embed', { token: t, body: A, env: quiet });
    expect(again.status).toBe(202);
    expect(((await again.json()) as { job_id: string }).job_id).toBe(a1!.job_id);
    const rows = await outboxRows(a1!.job_id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.jobSeq).toBeGreaterThan(b!.seq);
    await deliver('heimdex-embed', [rows[0]!.payload]);
    const found = await search(org, A.text, { asset_id: 'doc' });
    expect(found.results[0]!.score).toBeGreaterThan(0.99);
  });
});

describe('recordOutcomes (one statement per batch)', () => {
  it('applies each kind, guards by seq and terminal state, and lets terminal beat retrying', async () => {
    const org = uniqueOrg('outcomes');
    const msgs = await createJobs(
      org,
      ['ok', 'bad', 'again', 'both', 'stale', 'done'].map((s) => ({
        asset_id: 'a',
        segment_id: s,
        text: `outcome text ${s}`,
      })),
    );
    const [ok, bad, again, both, stale, done] = msgs as [
      EmbedMessage,
      EmbedMessage,
      EmbedMessage,
      EmbedMessage,
      EmbedMessage,
      EmbedMessage,
    ];
    const result = (m: EmbedMessage) => ({
      point_id: crypto.randomUUID(),
      model: m.model,
      model_ver: m.model_ver,
      text_len: 1,
      token_count: 1,
      truncated: false,
      truncated_len: 1,
      applied: true,
    });
    const error = { code: 'x', message: 'y' };
    await withDb(async (db) => {
      await recordOutcomes(db, [
        { kind: 'succeeded', jobId: done.job_id, seq: done.seq, result: result(done) },
      ]);
      await recordOutcomes(db, [
        { kind: 'succeeded', jobId: ok.job_id, seq: ok.seq, result: result(ok) },
        { kind: 'failed', jobId: bad.job_id, seq: bad.seq, error },
        { kind: 'retrying', jobId: again.job_id, seq: again.seq, error },
        { kind: 'retrying', jobId: both.job_id, seq: both.seq, error },
        { kind: 'succeeded', jobId: both.job_id, seq: both.seq, result: result(both) },
        { kind: 'failed', jobId: stale.job_id, seq: stale.seq - 1, error },
        { kind: 'failed', jobId: done.job_id, seq: done.seq, error },
      ]);
      const rows = await db
        .select({
          id: jobs.id,
          status: jobs.status,
          error: jobs.error,
          completedAt: jobs.completedAt,
        })
        .from(jobs)
        .where(eq(jobs.orgId, org));
      const status = new Map(rows.map((r) => [r.id, r]));
      expect(status.get(ok.job_id)?.status).toBe('SUCCEEDED');
      expect(status.get(bad.job_id)).toMatchObject({ status: 'FAILED', error });
      expect(status.get(again.job_id)).toMatchObject({
        status: 'QUEUED',
        error,
        completedAt: null,
      });
      expect(status.get(both.job_id)?.status).toBe('SUCCEEDED');
      expect(status.get(stale.job_id)?.status).toBe('QUEUED'); // an older seq changes nothing
      expect(status.get(done.job_id)?.status).toBe('SUCCEEDED'); // terminal stays terminal
      // Terminal jobs' texts left the outbox; the others' are still there.
      const left = await db
        .select({ jobId: outbox.jobId })
        .from(outbox)
        .where(
          sql`${outbox.jobId} IN (${sql.join(
            msgs.map((m) => sql`${m.job_id}::uuid`),
            sql`, `,
          )})`,
        );
      expect(new Set(left.map((r) => r.jobId))).toEqual(new Set([again.job_id, stale.job_id]));
    });
  });
});

describe('dead-letter queue consumer', () => {
  it('marks the job FAILED with a reason and removes its text', async () => {
    const org = uniqueOrg();
    const [msg] = await createJobs(org, [
      { asset_id: 'a', segment_id: '1', text: 'Never delivered' },
    ]);
    const { result } = await deliver('heimdex-embed-dlq', [msg!], quiet, 9);
    expect(result.explicitAcks).toHaveLength(1);
    const row = await jobRow(msg!.job_id);
    expect(row.status).toBe('FAILED');
    expect(row.error).toEqual({
      code: 'retries_exhausted',
      message: 'gave up after 9 delivery attempts',
    });
    expect(await outboxRows(msg!.job_id)).toEqual([]);
  });
});

describe('cron: outbox sweep', () => {
  it('re-sends rows that were committed but never sent', async () => {
    const org = uniqueOrg();
    const [msg] = await createJobs(org, [{ asset_id: 'a', segment_id: '1', text: 'Left behind' }]);
    const unsent = await withDb((db) =>
      db
        .select()
        .from(outbox)
        .where(and(eq(outbox.jobId, msg!.job_id))),
    );
    expect(unsent[0]!.sentAt).toBeNull();
    expect(unsent[0]!.lastError).toBe('queue_send_failed');

    // Other tests leave unsent rows behind too (their sends are switched off), and one sweep
    // takes at most OUTBOX_SWEEP_LIMIT of them, oldest first: sweep until the backlog is drained.
    const unsentRows = () =>
      withDb((db) =>
        db
          .select({ id: outbox.id })
          .from(outbox)
          .where(and(eq(outbox.jobId, msg!.job_id), isNull(outbox.sentAt))),
      );
    for (let i = 0; i < 50 && (await unsentRows()).length > 0; i++) {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron: '* * * * *' }), envWith(), ctx);
      await waitOnExecutionContext(ctx);
    }
    // Sent (or already processed by the local queue consumer, which deletes the row).
    expect(await unsentRows()).toEqual([]);
  });

  it('never sends a row twice when sweeps run concurrently (SKIP LOCKED)', async () => {
    const org = uniqueOrg();
    const mine = await createJobs(
      org,
      Array.from({ length: 6 }, (_, i) => ({
        asset_id: 'a',
        segment_id: `s${i}`,
        text: `Row ${i}`,
      })),
    );
    // A queue that records what it is given and holds each send long enough for the two sweeps'
    // transactions to overlap.
    const sent: string[] = [];
    const slowQueue = {
      async sendBatch(messages: Iterable<MessageSendRequest<EmbedMessage>>) {
        for (const m of messages) sent.push(m.body.job_id);
        await new Promise((r) => setTimeout(r, 300));
      },
      async send(body: EmbedMessage) {
        sent.push(body.job_id);
      },
    };
    const env = envWith({ OUTBOX_SWEEP_LIMIT: '1000' });
    (env as { EMBED_QUEUE: unknown }).EMBED_QUEUE = slowQueue;
    const sweepOnce = async () => {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron: '* * * * *' }), env, ctx);
      await waitOnExecutionContext(ctx);
    };
    await Promise.all([sweepOnce(), sweepOnce()]);

    const counts = new Map<string, number>();
    for (const id of sent) counts.set(id, (counts.get(id) ?? 0) + 1);
    // Every row, ours and any other test's leftovers, went out at most once across both sweeps…
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    // …and ours exactly once.
    for (const m of mine) expect(counts.get(m.job_id)).toBe(1);
  });

  it('redelivers a message that was sent but lost (its job never finished), once per period', async () => {
    const org = uniqueOrg();
    const [msg] = await createJobs(org, [
      { asset_id: 'a', segment_id: '1', text: 'Lost in transit' },
    ]);
    // Sent an hour ago, and nothing came of it: the queue lost the message.
    await withDb((db) =>
      db
        .update(outbox)
        .set({ sentAt: sql`now() - interval '1 hour'` })
        .where(eq(outbox.jobId, msg!.job_id)),
    );
    const sent: string[] = [];
    const recording = {
      async sendBatch(messages: Iterable<MessageSendRequest<EmbedMessage>>) {
        for (const m of messages) sent.push(m.body.job_id);
      },
      async send(body: EmbedMessage) {
        sent.push(body.job_id);
      },
    };
    const env = envWith({ OUTBOX_SWEEP_LIMIT: '1000', OUTBOX_REDELIVER_AFTER_SECONDS: '600' });
    (env as { EMBED_QUEUE: unknown }).EMBED_QUEUE = recording;
    const sweepOnce = async () => {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron: '* * * * *' }), env, ctx);
      await waitOnExecutionContext(ctx);
    };
    await sweepOnce();
    expect(sent.filter((id) => id === msg!.job_id)).toHaveLength(1);
    const [row] = await outboxRows(msg!.job_id);
    expect(Date.now() - row!.sentAt!.getTime()).toBeLessThan(60_000);
    // Just redelivered: the next sweep leaves it alone for another period.
    await sweepOnce();
    expect(sent.filter((id) => id === msg!.job_id)).toHaveLength(1);
    // Delivered for real, the job finishes and its row (and text) is gone: nothing to redeliver.
    await deliver('heimdex-embed', [msg!]);
    expect((await jobRow(msg!.job_id)).status).toBe('SUCCEEDED');
    expect(await outboxRows(msg!.job_id)).toEqual([]);
  });

  it('keeps only ciphertext in the outbox, and fails a job whose text no key can decrypt', async () => {
    const org = uniqueOrg();
    const canary = `outbox-canary-${crypto.randomUUID()}`;
    const [good, lost] = await createJobs(org, [
      { asset_id: 'a', segment_id: 'good', text: `Readable ${canary}` },
      { asset_id: 'a', segment_id: 'lost', text: `Key rotated away ${canary}` },
    ]);
    const rows = await withDb((db) => db.select().from(outbox));
    expect(JSON.stringify(rows)).not.toContain(canary);

    // Encrypted under a key the Worker no longer has (rotated out, or never its own).
    const foreign = await TextCipher.create(
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32)))),
    );
    const orphan: EmbedMessage = {
      ...lost!,
      text_enc: await foreign.encrypt('Key rotated away', lost!),
    };
    const { result } = await deliver('heimdex-embed', [good!, orphan]);
    expect(result.explicitAcks).toHaveLength(2);
    expect((await jobRow(good!.job_id)).status).toBe('SUCCEEDED');
    const failed = await jobRow(lost!.job_id);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatchObject({ code: 'text_unreadable' });
  });
});
