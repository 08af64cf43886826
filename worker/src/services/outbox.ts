/**
 * The outbox relay. After a commit the route sends the new rows to the Queue and marks them sent;
 * the cron sweep re-sends rows left unsent (a crash or failed send between commit and mark),
 * locking them with SKIP LOCKED so concurrent sweeps never send the same row twice. Delivery is
 * at least once; the consumer is idempotent.
 */
import { and, asc, inArray, isNull, lt, or, sql } from 'drizzle-orm';
import { outbox } from '../../../db/schema';
import type { EmbedMessage } from '../queue/message';
import type { Config } from '../env';
import { chunkBySize, jsonBytes } from '../lib/chunk';
import type { Db } from '../lib/db';
import type { Logger } from '../lib/log';
import { errorKind } from '../lib/log';
import {
  QUEUE_BATCH_BUDGET_BYTES,
  QUEUE_BATCH_MAX_MESSAGES,
  QUEUE_MESSAGE_METADATA_BYTES,
} from '../limits';
import type { PendingMessage } from './jobs';

/**
 * The sendBatch calls for `items`, in order: Cloudflare takes at most 100 messages and 256 KB
 * (256,000 bytes) per call (limits.ts). Each message counts as its JSON body plus Cloudflare's
 * per-message metadata, and a call stays within QUEUE_BATCH_BUDGET_BYTES; every message is at
 * most 128 KB (ingest refuses longer texts), so one always fits a call of its own.
 */
export function sendBatches(items: PendingMessage[]): PendingMessage[][] {
  return chunkBySize(
    items,
    QUEUE_BATCH_MAX_MESSAGES,
    QUEUE_BATCH_BUDGET_BYTES,
    (p) => jsonBytes(p.message) + QUEUE_MESSAGE_METADATA_BYTES,
  );
}

async function send(
  queue: Queue<EmbedMessage>,
  config: Config,
  batch: PendingMessage[],
): Promise<void> {
  if (config.dropQueueSend) throw new Error('fault injection: queue send dropped');
  await queue.sendBatch(batch.map((p) => ({ body: p.message, contentType: 'json' as const })));
}

/** Sends freshly committed rows and marks them sent. Never throws: the sweep is the safety net. */
export async function relay(
  db: Db,
  queue: Queue<EmbedMessage>,
  config: Config,
  log: Logger,
  pending: PendingMessage[],
): Promise<void> {
  for (const batch of sendBatches(pending)) {
    const ids = batch.map((p) => p.outboxId);
    try {
      await send(queue, config, batch);
    } catch (err) {
      log.warn('outbox relay send failed; the sweep will retry', {
        rows: ids.length,
        error: errorKind(err),
      });
      await db
        .update(outbox)
        .set({ sendAttempts: sql`${outbox.sendAttempts} + 1`, lastError: 'queue_send_failed' })
        .where(inArray(outbox.id, ids))
        .catch(() => undefined);
      continue;
    }
    await db
      .update(outbox)
      .set({ sentAt: sql`now()`, sendAttempts: sql`${outbox.sendAttempts} + 1`, lastError: null })
      .where(inArray(outbox.id, ids))
      .catch((err: unknown) =>
        log.warn('outbox mark-sent failed; message may be sent twice', { error: errorKind(err) }),
      );
  }
}

/**
 * Re-sends, oldest first, (a) rows still unsent after the sweep age (a crash or failed send between
 * commit and mark) and (b) rows sent longer ago than the redelivery age: a job's outbox row is
 * deleted when the job becomes terminal, so such a row means its message was lost after the send
 * (a queue outage, a consumer that kept failing outside the retry path). The redelivery age is
 * longer than the queue's whole retry schedule, so a message still being retried is rarely sent
 * twice, and if it is, the consumer is idempotent. Returns how many rows were sent.
 */
export async function sweep(
  db: Db,
  queue: Queue<EmbedMessage>,
  config: Config,
  log: Logger,
): Promise<number> {
  return db.transaction(async (tx) => {
    const rows = await tx
      .select({ id: outbox.id, payload: outbox.payload, sentAt: outbox.sentAt })
      .from(outbox)
      .where(
        or(
          and(
            isNull(outbox.sentAt),
            lt(
              outbox.createdAt,
              sql`now() - make_interval(secs => ${config.outbox.sweepAgeSeconds})`,
            ),
          ),
          lt(
            outbox.sentAt,
            sql`now() - make_interval(secs => ${config.outbox.redeliverAfterSeconds})`,
          ),
        ),
      )
      .orderBy(asc(outbox.createdAt))
      .limit(config.outbox.sweepLimit)
      .for('update', { skipLocked: true });
    if (rows.length === 0) return 0;
    const lost = rows.filter((r) => r.sentAt !== null).length;
    if (lost > 0) {
      log.warn('outbox redelivering messages whose jobs did not finish', {
        rows: lost,
        after_seconds: config.outbox.redeliverAfterSeconds,
      });
    }
    let sent = 0;
    for (const batch of sendBatches(rows.map((r) => ({ outboxId: r.id, message: r.payload })))) {
      const ids = batch.map((p) => p.outboxId);
      try {
        // The sweep is the recovery path: it ignores the fault-injection switch on purpose.
        await queue.sendBatch(
          batch.map((p) => ({ body: p.message, contentType: 'json' as const })),
        );
      } catch (err) {
        log.warn('outbox sweep send failed', { rows: ids.length, error: errorKind(err) });
        await tx
          .update(outbox)
          .set({ sendAttempts: sql`${outbox.sendAttempts} + 1`, lastError: 'queue_send_failed' })
          .where(inArray(outbox.id, ids));
        continue;
      }
      await tx
        .update(outbox)
        .set({ sentAt: sql`now()`, sendAttempts: sql`${outbox.sendAttempts} + 1`, lastError: null })
        .where(inArray(outbox.id, ids));
      sent += ids.length;
    }
    return sent;
  });
}
