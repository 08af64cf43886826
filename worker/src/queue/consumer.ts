/**
 * Queue consumers. The embed consumer is a thin bridge: it parses each message, skips jobs that are
 * terminal or superseded, hands the rest to the embedder (concurrent calls of at most
 * EMBEDDER_CALL_ITEMS items), records every job's outcome in one statement, then acks or retries
 * each message with exponential backoff. Exhausted messages go to the dead-letter queue, whose
 * consumer marks the job FAILED with the reason.
 */
import { z } from 'zod';
import { TERMINAL_STATUSES } from '../../../db/schema';
import type { JobError } from '../../../db/schema';
import type { Config, Env } from '../env';
import { parseConfig } from '../env';
import { openDb } from '../lib/db';
import { createLogger, errorKind } from '../lib/log';
import type { Logger } from '../lib/log';
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

export const EmbedMessageSchema = z
  .object({
    v: z.literal(2),
    job_id: z.uuid(),
    seq: z.number().int().positive(),
    org_id: z.string().min(1),
    asset_id: z.string().min(1),
    segment_id: z.string().min(1),
    model: z.string().min(1),
    model_ver: z.string().min(1),
    text_enc: z.object({ kid: z.string().min(1), data: z.string().min(1) }).strict(),
    request_id: z.string(),
  })
  .strict();

type Parsed = { msg: Message<unknown>; body: z.infer<typeof EmbedMessageSchema> };

export function backoffSeconds(attempts: number, retry: Config['retry']): number {
  const exp = retry.baseSeconds * 2 ** Math.max(0, attempts - 1);
  const jitter = 0.8 + Math.random() * 0.4;
  return Math.min(retry.maxSeconds, Math.round(exp * jitter));
}

function parseAll(batch: MessageBatch<unknown>, log: Logger): Parsed[] {
  const out: Parsed[] = [];
  for (const msg of batch.messages) {
    const parsed = EmbedMessageSchema.safeParse(msg.body);
    if (parsed.success) out.push({ msg, body: parsed.data });
    else {
      // Unparseable: no retry can fix it. Ack so it does not loop; its id is logged, not its body.
      log.error('invalid queue message dropped', { message_id: msg.id });
      msg.ack();
    }
  }
  return out;
}

export async function handleEmbedBatch(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  const config = parseConfig(env);
  const log = createLogger(config.logLevel, { queue: batch.queue });
  const { db, close } = openDb(config);
  // Phase durations for the batch log line (workerd advances the clock across I/O only, which is
  // what these measure).
  const started = Date.now();
  try {
    const parsed = parseAll(batch, log);
    const states = await loadJobStates(
      db,
      parsed.map((p) => p.body.job_id),
    );
    const loaded = Date.now();
    const work: Parsed[] = [];
    for (const p of parsed) {
      const s = states.get(p.body.job_id);
      const stale = !s || p.body.seq < s.seq;
      const done = s && p.body.seq === s.seq && TERMINAL_STATUSES.includes(s.status);
      if (stale || done) p.msg.ack();
      else work.push(p);
    }
    if (work.length === 0) return;

    // Recorded while the batch is decrypted and embedded (one round trip off the critical path);
    // awaited before any outcome is recorded, so a failure still retries the whole batch.
    const marking = markProcessing(
      db,
      work.map((w) => w.body.job_id),
    );
    marking.catch(() => undefined);
    const client = new EmbedderClient(
      config.embedder,
      work[0]!.body.request_id || crypto.randomUUID(),
    );
    // The text is decrypted here, just before the embedder call, and nowhere else. A text that
    // does not decrypt (its key was rotated away, or the message was tampered with) can never
    // succeed: its job fails with a reason; the rest of the batch goes on.
    const cipher = await textCipher(config.textKeys.current, config.textKeys.previous);
    const texts = await Promise.all(
      work.map(({ body }) =>
        cipher.decrypt(body.text_enc, body).catch((err: unknown) => {
          if (err instanceof TextDecryptError) return null;
          throw err;
        }),
      ),
    );
    const unreadable = (i: number): Outcome | null =>
      texts[i] === null
        ? {
            kind: 'failed',
            jobId: work[i]!.body.job_id,
            seq: work[i]!.body.seq,
            error: {
              code: 'text_unreadable',
              message: 'the queued text could not be decrypted with the configured keys',
            },
          }
        : null;
    const items: EmbedItem[] = work.flatMap(({ body }, i) => {
      const text = texts[i];
      if (text === null || text === undefined) return [];
      return [
        {
          job_id: body.job_id,
          seq: body.seq,
          org_id: body.org_id,
          asset_id: body.asset_id,
          segment_id: body.segment_id,
          model: body.model,
          model_ver: body.model_ver,
          text,
        },
      ];
    });

    const embedStarted = Date.now();
    // The batch goes to the embedder as concurrent calls of at most `callItems` items: a call
    // that fails retries only its own jobs; the others' vectors are written and recorded.
    const calls = chunkEmbedItems(items, config.embedder.callItems);
    const answers = await Promise.allSettled(calls.map((chunk) => client.embed(chunk)));
    const byJob = new Map<string, EmbedItemResult>();
    const callError = new Map<string, JobError>();
    answers.forEach((answer, k) => {
      if (answer.status === 'fulfilled') {
        for (const r of answer.value.results) byJob.set(r.job_id, r);
        return;
      }
      const err: unknown = answer.reason;
      let error: JobError;
      if (err instanceof EmbedderUnavailableError) {
        error = { code: 'embedder_unavailable', message: `embedder unavailable (${err.reason})` };
      } else if (err instanceof EmbedderRejectedError) {
        error = { code: 'embedder_rejected', message: `embedder rejected the call (${err.code})` };
      } else {
        throw err;
      }
      for (const item of calls[k]!) callError.set(item.job_id, error);
    });
    const outcomes = work.map((w, i): Outcome => {
      const failed = unreadable(i);
      if (failed) return failed;
      const base = { jobId: w.body.job_id, seq: w.body.seq };
      const error = callError.get(w.body.job_id);
      if (error) return { ...base, kind: 'retrying', error };
      const r = byJob.get(w.body.job_id);
      if (!r) {
        return {
          ...base,
          kind: 'retrying',
          error: { code: 'missing_result', message: 'no result' },
        };
      }
      if (r.status === 'ok') {
        return {
          ...base,
          kind: 'succeeded',
          result: {
            point_id: r.point_id,
            // The job's own model: one batch may mix models (the embedder serves several).
            model: w.body.model,
            model_ver: w.body.model_ver,
            text_len: r.text_len,
            token_count: r.token_count,
            truncated: r.truncated,
            truncated_len: r.truncated_len,
            applied: r.applied,
          },
        };
      }
      const rejected = { code: r.code, message: r.message };
      return r.retryable
        ? { ...base, kind: 'retrying', error: rejected }
        : { ...base, kind: 'failed', error: rejected };
    });

    const embedded = Date.now();
    await marking;
    try {
      await recordOutcomes(db, outcomes);
    } catch (err) {
      // The outcome is not recorded: deliver again (embedding is idempotent).
      log.error('recording outcomes failed; retrying batch', { error: errorKind(err) });
      for (const w of work)
        w.msg.retry({ delaySeconds: backoffSeconds(w.msg.attempts, config.retry) });
      return;
    }
    // A job deleted (cancelled) while its embedding was in flight: remove the vector it just wrote.
    const cancelled = await cancelledAmong(
      db,
      outcomes.filter((o) => o.kind === 'succeeded').map((o) => o.jobId),
    );
    for (const job of cancelled) {
      await client.delete({ org_id: job.orgId, point_id: job.pointId }).catch((err: unknown) => {
        log.warn('compensating delete failed', { job_id: job.id, error: errorKind(err) });
      });
    }
    let ok = 0;
    let failed = 0;
    let retried = 0;
    work.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.kind === 'retrying') {
        retried++;
        w.msg.retry({ delaySeconds: backoffSeconds(w.msg.attempts, config.retry) });
      } else {
        if (o.kind === 'succeeded') ok++;
        else failed++;
        w.msg.ack();
      }
    });
    log.info('embed batch', {
      messages: batch.messages.length,
      ok,
      failed,
      retried,
      load_ms: loaded - started,
      decrypt_ms: embedStarted - loaded,
      embed_ms: embedded - embedStarted,
      record_ms: Date.now() - embedded,
    });
  } finally {
    ctx.waitUntil(close().catch(() => undefined));
  }
}

export async function handleDeadLetters(
  batch: MessageBatch<unknown>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  const config = parseConfig(env);
  const log = createLogger(config.logLevel, { queue: batch.queue });
  const { db, close } = openDb(config);
  try {
    const parsed = parseAll(batch, log);
    const states = await loadJobStates(
      db,
      parsed.map((p) => p.body.job_id),
    );
    const outcomes: Outcome[] = parsed
      .filter((p) => states.get(p.body.job_id)?.seq === p.body.seq)
      .map((p): Outcome => {
        // A dead-lettered message starts its attempts again on the DLQ: the job row counts the
        // deliveries it had. The last error is a code from a fixed vocabulary, never text.
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
    await recordOutcomes(db, outcomes);
    for (const p of parsed) p.msg.ack();
    log.warn('dead-lettered jobs failed', { jobs: outcomes.length });
  } finally {
    ctx.waitUntil(close().catch(() => undefined));
  }
}
