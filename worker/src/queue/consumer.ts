/**
 * Queue consumers. The embed consumer is a thin bridge, in five steps: parse each message and skip
 * jobs that are terminal or superseded; decrypt the texts; call the embedder (concurrent calls of
 * at most EMBEDDER_CALL_ITEMS items); record every job's outcome in one statement; ack or retry
 * each message with exponential backoff. Exhausted messages go to the dead-letter queue, whose
 * consumer marks the job FAILED with the reason.
 */
import { TERMINAL_STATUSES } from '../../../db/schema';
import type { JobError } from '../../../db/schema';
import type { Config, Env } from '../env';
import { errorKind } from '../lib/log';
import type { Logger } from '../lib/log';
import { withInvocation } from '../lib/invocation';
import type { Invocation } from '../lib/invocation';
import {
  EmbedderClient,
  EmbedderRejectedError,
  EmbedderUnavailableError,
  chunkEmbedItems,
} from '../services/embedder';
import type { EmbedItem, EmbedItemResult } from '../services/embedder';
import { TextDecryptError, textCipher } from '../lib/text-cipher';
import { cancelledAmong, loadJobStates, markProcessing, recordOutcomes } from '../services/jobs';
import type { Outcome } from '../services/jobs';
import { EmbedMessageSchema } from './message';
import type { EmbedMessage } from './message';

type Parsed = { msg: Message<unknown>; body: EmbedMessage };

export function backoffSeconds(attempts: number, retry: Config['retry']): number {
  const exp = retry.baseSeconds * 2 ** Math.max(0, attempts - 1);
  const jitter = 0.8 + Math.random() * 0.4;
  return Math.min(retry.maxSeconds, Math.round(exp * jitter));
}

/** Step 1a: the messages that parse. An unparseable one is acked (no retry can fix it). */
function parseAll(batch: MessageBatch<unknown>, log: Logger): Parsed[] {
  const out: Parsed[] = [];
  for (const msg of batch.messages) {
    const parsed = EmbedMessageSchema.safeParse(msg.body);
    if (parsed.success) out.push({ msg, body: parsed.data });
    else {
      // Its id is logged, never its body.
      log.error('invalid queue message dropped', { message_id: msg.id });
      msg.ack();
    }
  }
  return out;
}

/** Step 1b: the messages whose job still waits for this delivery; the others are acked. */
async function pendingWork(inv: Invocation, parsed: Parsed[]): Promise<Parsed[]> {
  const states = await loadJobStates(
    inv.db,
    parsed.map((p) => p.body.job_id),
  );
  return parsed.filter((p) => {
    const s = states.get(p.body.job_id);
    const stale = !s || p.body.seq < s.seq;
    const done = s && p.body.seq === s.seq && TERMINAL_STATUSES.includes(s.status);
    if (stale || done) p.msg.ack();
    return !(stale || done);
  });
}

/**
 * Step 2: the texts, decrypted here, just before the embedder call, and nowhere else. A text
 * that does not decrypt (its key was rotated away, or the message was tampered with) can never
 * succeed: its job fails with a reason (null here); the rest of the batch goes on.
 */
async function decrypt(config: Config, work: Parsed[]): Promise<Array<string | null>> {
  const cipher = await textCipher(config.textKeys.current, config.textKeys.previous);
  return Promise.all(
    work.map(({ body }) =>
      cipher.decrypt(body.text_enc, body).catch((err: unknown) => {
        if (err instanceof TextDecryptError) return null;
        throw err;
      }),
    ),
  );
}

/** What the embedder said of each job: its item result, or the error of the call it was in. */
type Answers = Map<string, EmbedItemResult | { callError: JobError }>;

/**
 * Step 3: the items as concurrent calls of at most `callItems` items. A call that fails retries
 * only its own jobs; the other calls' vectors are written and recorded.
 */
async function callEmbedder(
  client: EmbedderClient,
  config: Config,
  items: EmbedItem[],
): Promise<Answers> {
  const calls = chunkEmbedItems(items, config.embedder.callItems);
  const settled = await Promise.allSettled(calls.map((chunk) => client.embed(chunk)));
  const answers: Answers = new Map();
  settled.forEach((answer, k) => {
    if (answer.status === 'fulfilled') {
      for (const r of answer.value.results) answers.set(r.job_id, r);
      return;
    }
    const err: unknown = answer.reason;
    let callError: JobError;
    if (err instanceof EmbedderUnavailableError) {
      callError = { code: 'embedder_unavailable', message: `embedder unavailable (${err.reason})` };
    } else if (err instanceof EmbedderRejectedError) {
      callError = {
        code: 'embedder_rejected',
        message: `embedder rejected the call (${err.code})`,
      };
    } else {
      throw err;
    }
    for (const item of calls[k]!) answers.set(item.job_id, { callError });
  });
  return answers;
}

const UNREADABLE: JobError = {
  code: 'text_unreadable',
  message: 'the queued text could not be decrypted with the configured keys',
};

/** A job's outcome from its text (null: unreadable) and the embedder's answer. */
function outcomeOf(w: Parsed, text: string | null, answers: Answers): Outcome {
  const base = { jobId: w.body.job_id, seq: w.body.seq };
  if (text === null) return { ...base, kind: 'failed', error: UNREADABLE };
  const r = answers.get(w.body.job_id);
  if (!r)
    return { ...base, kind: 'retrying', error: { code: 'missing_result', message: 'no result' } };
  if ('callError' in r) return { ...base, kind: 'retrying', error: r.callError };
  if (r.status === 'error') {
    const error = { code: r.code, message: r.message };
    return r.retryable ? { ...base, kind: 'retrying', error } : { ...base, kind: 'failed', error };
  }
  const { job_id: _job, status: _status, ...result } = r;
  // The job's own model: one batch may mix models (the embedder serves several).
  return {
    ...base,
    kind: 'succeeded',
    result: { ...result, model: w.body.model, model_ver: w.body.model_ver },
  };
}

/**
 * Step 4b: a job deleted (cancelled) while its embedding was in flight: remove the vector it
 * just wrote.
 */
async function removeCancelledVectors(
  inv: Invocation,
  client: EmbedderClient,
  outcomes: Outcome[],
): Promise<void> {
  const succeeded = outcomes.filter((o) => o.kind === 'succeeded').map((o) => o.jobId);
  for (const job of await cancelledAmong(inv.db, succeeded)) {
    await client.delete({ org_id: job.orgId, point_id: job.pointId }).catch((err: unknown) => {
      inv.log.warn('compensating delete failed', { job_id: job.id, error: errorKind(err) });
    });
  }
}

/** Step 5: ack terminal outcomes, retry the others with backoff; returns the counts. */
function ackOrRetry(work: Parsed[], outcomes: Outcome[], retry: Config['retry']) {
  const counts = { ok: 0, failed: 0, retried: 0 };
  work.forEach((w, i) => {
    const o = outcomes[i]!;
    if (o.kind === 'retrying') {
      counts.retried++;
      w.msg.retry({ delaySeconds: backoffSeconds(w.msg.attempts, retry) });
      return;
    }
    if (o.kind === 'succeeded') counts.ok++;
    else counts.failed++;
    w.msg.ack();
  });
  return counts;
}

/** A queue handler that runs `fn` with the batch's per-invocation context. */
function queueHandler(fn: (inv: Invocation, batch: MessageBatch<unknown>) => Promise<void>) {
  return (batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> =>
    withInvocation(env, { queue: batch.queue }, (inv) => fn(inv, batch), ctx);
}

export const handleEmbedBatch = queueHandler(async (inv, batch) => {
  // Phase durations for the batch log line (workerd advances the clock across I/O only,
  // which is what these measure).
  const t0 = Date.now();
  const work = await pendingWork(inv, parseAll(batch, inv.log));
  if (work.length === 0) return;
  const t1 = Date.now();
  // Recorded while the batch is decrypted and embedded (one round trip off the critical
  // path); awaited before any outcome is recorded, so a failure still retries the batch.
  const marking = markProcessing(
    inv.db,
    work.map((w) => w.body.job_id),
  );
  marking.catch(() => undefined);
  // Nobody waits on these calls: they get the long queue timeout (EMBEDDER_QUEUE_TIMEOUT_MS).
  const client = new EmbedderClient(
    { ...inv.config.embedder, timeoutMs: inv.config.embedder.queueTimeoutMs },
    work[0]!.body.request_id || crypto.randomUUID(),
  );
  const texts = await decrypt(inv.config, work);
  const t2 = Date.now();
  const items = work.flatMap(({ body }, i): EmbedItem[] => {
    const text = texts[i];
    if (text === null || text === undefined) return [];
    const { v: _v, text_enc: _enc, request_id: _rid, ...item } = body;
    return [{ ...item, text }];
  });
  const answers = await callEmbedder(client, inv.config, items);
  const t3 = Date.now();
  const outcomes = work.map((w, i) => outcomeOf(w, texts[i] ?? null, answers));

  await marking;
  try {
    await recordOutcomes(inv.db, outcomes);
  } catch (err) {
    // The outcome is not recorded: deliver again (embedding is idempotent).
    inv.log.error('recording outcomes failed; retrying batch', { error: errorKind(err) });
    for (const w of work) {
      w.msg.retry({ delaySeconds: backoffSeconds(w.msg.attempts, inv.config.retry) });
    }
    return;
  }
  await removeCancelledVectors(inv, client, outcomes);
  const counts = ackOrRetry(work, outcomes, inv.config.retry);
  inv.log.info('embed batch', {
    messages: batch.messages.length,
    ...counts,
    load_ms: t1 - t0,
    decrypt_ms: t2 - t1,
    embed_ms: t3 - t2,
    record_ms: Date.now() - t3,
  });
});

export const handleDeadLetters = queueHandler(async (inv, batch) => {
  const parsed = parseAll(batch, inv.log);
  const states = await loadJobStates(
    inv.db,
    parsed.map((p) => p.body.job_id),
  );
  const outcomes: Outcome[] = parsed
    .filter((p) => states.get(p.body.job_id)?.seq === p.body.seq)
    .map((p): Outcome => {
      // A dead-lettered message starts its attempts again on the DLQ: the job row counts
      // the deliveries it had. The last error is a code from a fixed vocabulary, never text.
      const state = states.get(p.body.job_id)!;
      const last = state.error?.code;
      return {
        kind: 'failed',
        jobId: p.body.job_id,
        seq: p.body.seq,
        error: {
          code: 'retries_exhausted',
          message:
            `gave up after ${Math.max(state.attempts, p.msg.attempts)} delivery attempts` +
            (last ? `; last error: ${last}` : ''),
        },
      };
    });
  await recordOutcomes(inv.db, outcomes);
  for (const p of parsed) p.msg.ack();
  inv.log.warn('dead-lettered jobs failed', { jobs: outcomes.length });
});
