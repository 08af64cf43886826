/**
 * Jobs and the transactional outbox. Everything here speaks in domain terms; routes and the queue
 * consumer map results to HTTP or to ack/retry.
 */
import { and, eq, exists, gt, inArray, isNull, lt, notInArray, sql } from 'drizzle-orm';
import type { SQL } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import { batches, jobs, outbox, TERMINAL_STATUSES } from '../../../db/schema';
import type { JobError, JobResult, JobRow } from '../../../db/schema';
import type { EmbedMessage } from '../queue/message';
import type { Db } from '../lib/db';
import type { TextCipher } from '../lib/text-cipher';
import { pointId } from '../../../contract/ids';
import { jobKey } from '../lib/hash';
import type { JobKeyParts } from '../lib/hash';
import { jsonBytes } from '../lib/chunk';
import { QUEUE_MESSAGE_BODY_MAX_BYTES } from '../limits';

/**
 * One segment's text to embed, in the caller's organisation: what the idempotency key hashes
 * (its chunking included: it travels in the queue message).
 */
export type NewJob = JobKeyParts;

/**
 * The queue message of item `index` would exceed Cloudflare's message limit: nothing is written
 * (the transaction rolls back). Texts within MAX_TEXT_BYTES never get here unless the envelope
 * outgrows its reserve (limits.ts QUEUE_MESSAGE_ENVELOPE_BYTES).
 */
export class MessageTooLargeError extends Error {
  constructor(
    readonly index: number,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`queue message of item ${index} is ${bytes} bytes (at most ${limit})`);
    this.name = 'MessageTooLargeError';
  }
}

export type SubmitOutcome = 'created' | 'requeued' | 'existing';

export interface SubmittedJob {
  jobId: string;
  assetId: string;
  segmentId: string;
  outcome: SubmitOutcome;
}

export interface PendingMessage {
  outboxId: number;
  message: EmbedMessage;
}

/** Another job of the same point, in "is there a later job" subqueries. */
const later = alias(jobs, 'later');

/** EXISTS a later job (higher seq) of the same point as the `jobs` row, meeting `conditions`. */
function laterJobExists(db: Db, ...conditions: SQL[]): SQL {
  return exists(
    db
      .select({ one: sql`1` })
      .from(later)
      .where(
        and(
          eq(later.orgId, jobs.orgId),
          eq(later.pointId, jobs.pointId),
          gt(later.seq, jobs.seq),
          ...conditions,
        ),
      ),
  );
}

/** SQLSTATEs of a transaction that lost a lock or serialization conflict: safe to run again. */
const RETRYABLE_SQLSTATE = new Set(['40P01', '40001']);
const TX_ATTEMPTS = 5;

function isRetryableConflict(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_SQLSTATE.has(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Runs `fn` in a transaction, again (up to TX_ATTEMPTS times, with a short jittered pause) when
 * Postgres aborts it for a deadlock or a serialization failure: those are the database choosing a
 * victim among concurrent writers, not a problem with the request.
 */
export async function transactionWithRetry<T>(
  db: Db,
  fn: (tx: Parameters<Parameters<Db['transaction']>[0]>[0]) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(fn);
    } catch (err) {
      if (attempt >= TX_ATTEMPTS || !isRetryableConflict(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20));
    }
  }
}

/**
 * Records one job per item and its outbox row in ONE transaction (and, for a batch, the batch row
 * that `GET /batches/{id}` reads).
 *
 * Idempotency: an identical item (same job_key) returns the existing job instead of a second one,
 * also under concurrent duplicates (unique index + ON CONFLICT DO NOTHING; the loser reads the
 * winner's row after it commits). The existing job is queued again, with a new seq, only when it
 * FAILED or when a newer job for the same point has been submitted since (A → B → A must end as A).
 * A job whose vector was deleted no longer holds its key (see retireJobs): the same text then
 * makes a new job.
 *
 * Rows are written and locked in job_key order, so two requests over the same segments in
 * different orders wait for each other instead of deadlocking; a conflict Postgres still aborts
 * is retried (transactionWithRetry), never answered as a 500.
 *
 * The common case (all new) costs two statements whatever the batch size.
 */
export async function submitJobs(
  db: Db,
  cipher: TextCipher,
  items: NewJob[],
  requestId: string,
  options: { batchId?: string } = {},
): Promise<{ jobs: SubmittedJob[]; pending: PendingMessage[] }> {
  const rows = await Promise.all(
    items.map(async (item) => ({
      id: crypto.randomUUID(),
      orgId: item.orgId,
      assetId: item.assetId,
      segmentId: item.segmentId,
      model: item.model,
      modelVer: item.modelVer,
      pointId: await pointId({
        org_id: item.orgId,
        asset_id: item.assetId,
        segment_id: item.segmentId,
        model: item.model,
        model_ver: item.modelVer,
      }),
      jobKey: await jobKey(item),
    })),
  );
  // Lock order: every transaction touches the unique index and the rows in job_key order.
  const order = items.map((_, i) => i).sort((a, b) => compare(rows[a]!.jobKey, rows[b]!.jobKey));
  const sorted = order.map((i) => rows[i]!);
  return transactionWithRetry(db, async (tx) => {
    const inserted = await tx
      .insert(jobs)
      .values(sorted)
      .onConflictDoNothing({ target: jobs.jobKey })
      .returning({ id: jobs.id, seq: jobs.seq });
    const insertedSeq = new Map(inserted.map((r) => [r.id, r.seq]));

    const submitted: SubmittedJob[] = new Array<SubmittedJob>(items.length);
    const toSend: Array<{ jobId: string; seq: number; item: NewJob }> = [];
    const clashes: number[] = [];
    for (const i of order) {
      const seq = insertedSeq.get(rows[i]!.id);
      if (seq === undefined) {
        clashes.push(i);
        continue;
      }
      const item = items[i]!;
      submitted[i] = {
        assetId: item.assetId,
        segmentId: item.segmentId,
        jobId: rows[i]!.id,
        outcome: 'created',
      };
      toSend.push({ jobId: rows[i]!.id, seq, item });
    }
    if (clashes.length > 0) {
      // The jobs that already hold these keys, locked in key order, and which of them have a
      // newer job for the same point: three statements whatever the number of resubmissions.
      const keys = [...new Set(clashes.map((i) => rows[i]!.jobKey))];
      const existing = await tx
        .select({ id: jobs.id, seq: jobs.seq, status: jobs.status, jobKey: jobs.jobKey })
        .from(jobs)
        .where(inArray(jobs.jobKey, keys))
        .orderBy(jobs.jobKey)
        .for('update');
      const byKey = new Map(existing.map((e) => [e.jobKey, e]));
      const superseded = new Set(
        (
          await tx
            .select({ id: jobs.id })
            .from(jobs)
            .where(
              and(
                inArray(
                  jobs.id,
                  existing.map((e) => e.id),
                ),
                laterJobExists(tx),
              ),
            )
        ).map((r) => r.id),
      );
      const requeue = new Set<string>();
      for (const i of clashes) {
        const item = items[i]!;
        const found = byKey.get(rows[i]!.jobKey);
        if (!found) throw new Error('job vanished during idempotent insert');
        const base = { assetId: item.assetId, segmentId: item.segmentId, jobId: found.id };
        const ours = insertedSeq.has(found.id) || requeue.has(found.id);
        if (ours || (found.status !== 'FAILED' && !superseded.has(found.id))) {
          submitted[i] = { ...base, outcome: 'existing' };
          continue;
        }
        submitted[i] = { ...base, outcome: 'requeued' };
        requeue.add(found.id);
        toSend.push({ jobId: found.id, seq: 0, item });
      }
      if (requeue.size > 0) {
        const bumped = await tx
          .update(jobs)
          .set({
            seq: sql`nextval('job_seq')`,
            status: 'QUEUED',
            attempts: 0,
            result: null,
            error: null,
            completedAt: null,
            updatedAt: sql`now()`,
          })
          .where(inArray(jobs.id, [...requeue]))
          .returning({ id: jobs.id, seq: jobs.seq });
        const newSeq = new Map(bumped.map((b) => [b.id, b.seq]));
        for (const t of toSend) if (t.seq === 0) t.seq = newSeq.get(t.jobId)!;
      }
    }

    if (options.batchId !== undefined) {
      await tx.insert(batches).values({
        id: options.batchId,
        orgId: items[0]!.orgId,
        jobIds: submitted.map((j) => j.jobId),
      });
    }
    if (toSend.length === 0) return { jobs: submitted, pending: [] };
    const messages = await Promise.all(
      toSend.map(async ({ jobId, seq, item }): Promise<EmbedMessage> => ({
        v: 2,
        job_id: jobId,
        seq,
        org_id: item.orgId,
        asset_id: item.assetId,
        segment_id: item.segmentId,
        model: item.model,
        model_ver: item.modelVer,
        text_enc: await cipher.encrypt(item.text, { org_id: item.orgId, job_id: jobId, seq }),
        request_id: requestId,
        ...(item.chunking !== undefined ? { chunking: item.chunking } : {}),
      })),
    );
    messages.forEach((m, k) => {
      const bytes = jsonBytes(m);
      if (bytes > QUEUE_MESSAGE_BODY_MAX_BYTES) {
        throw new MessageTooLargeError(
          items.indexOf(toSend[k]!.item),
          bytes,
          QUEUE_MESSAGE_BODY_MAX_BYTES,
        );
      }
    });
    const outboxRows = await tx
      .insert(outbox)
      .values(messages.map((m) => ({ jobId: m.job_id, jobSeq: m.seq, payload: m })))
      .returning({ id: outbox.id });
    const pending = messages.map((message, i) => ({ outboxId: outboxRows[i]!.id, message }));
    return { jobs: submitted, pending };
  });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export const CANCELLED = 'cancelled';

/**
 * Before and after the vectors of an asset or a point are deleted: its unfinished jobs become
 * FAILED with code `cancelled` (their outbox rows, and with them the text, are deleted), and every
 * job of the target is marked deleted and gives up its idempotency key, so that the same text
 * submitted again makes a new job whose vector is stored (not the old job, whose vector is gone).
 *
 * The delete route runs this before the store delete (nothing in flight can write the vector back
 * afterwards) and once more after it (a job submitted while the delete ran is either cancelled or,
 * if it already finished, retired too: at worst one redundant re-embedding, never a lost vector).
 */
export async function retireJobs(
  db: Db,
  orgId: string,
  target: { assetId: string } | { pointId: string },
): Promise<{ cancelled: number }> {
  const scope = and(
    eq(jobs.orgId, orgId),
    'assetId' in target ? eq(jobs.assetId, target.assetId) : eq(jobs.pointId, target.pointId),
  );
  return transactionWithRetry(db, async (tx) => {
    const cancelled = await tx
      .update(jobs)
      .set({
        status: 'FAILED',
        error: { code: CANCELLED, message: 'the vector was deleted before this job finished' },
        completedAt: sql`now()`,
        updatedAt: sql`now()`,
      })
      .where(and(scope, notInArray(jobs.status, [...TERMINAL_STATUSES])))
      .returning({ id: jobs.id });
    if (cancelled.length > 0) {
      await tx.delete(outbox).where(
        inArray(
          outbox.jobId,
          cancelled.map((c) => c.id),
        ),
      );
    }
    await tx
      .update(jobs)
      .set({ deletedAt: sql`now()`, jobKey: sql`'deleted:' || ${jobs.id}::text` })
      .where(and(scope, isNull(jobs.deletedAt)));
    return { cancelled: cancelled.length };
  });
}

/** Whether the org has any job for this point (to tell "deleted nothing" from "no such point"). */
export async function pointKnown(db: Db, orgId: string, point: string): Promise<boolean> {
  const rows = await db
    .select({ id: jobs.id })
    .from(jobs)
    .where(and(eq(jobs.orgId, orgId), eq(jobs.pointId, point)))
    .limit(1);
  return rows.length > 0;
}

/** Of the given jobs, those cancelled while they were being embedded, with their points. */
export async function cancelledAmong(
  db: Db,
  ids: string[],
): Promise<Array<{ id: string; orgId: string; pointId: string }>> {
  if (ids.length === 0) return [];
  return db
    .select({ id: jobs.id, orgId: jobs.orgId, pointId: jobs.pointId })
    .from(jobs)
    .where(
      and(
        inArray(jobs.id, ids),
        eq(jobs.status, 'FAILED'),
        sql`${jobs.error}->>'code' = ${CANCELLED}`,
      ),
    );
}

export interface JobView extends JobRow {
  /**
   * Whether the segment's stored vector is this job's: it SUCCEEDED, its vector was not deleted,
   * and no later job for the same point has succeeded. A newer job that FAILED does not take the
   * place of the last one that succeeded.
   */
  current: boolean;
}

export async function getJob(db: Db, orgId: string, jobId: string): Promise<JobView | undefined> {
  const newerSuccess = laterJobExists(db, eq(later.status, 'SUCCEEDED'), isNull(later.deletedAt));
  const [row] = await db
    .select({
      job: jobs,
      current: sql<boolean>`(${jobs.status} = 'SUCCEEDED' AND ${jobs.deletedAt} IS NULL AND NOT ${newerSuccess})`,
    })
    .from(jobs)
    .where(and(eq(jobs.id, jobId), eq(jobs.orgId, orgId)))
    .limit(1);
  return row ? { ...row.job, current: row.current } : undefined;
}

export interface BatchStatus {
  id: string;
  createdAt: Date;
  total: number;
  counts: Record<JobRow['status'], number>;
  /** The batch's FAILED jobs, in request order. */
  failed: Array<{ id: string; assetId: string; segmentId: string; error: JobError | null }>;
}

/** How long a batch handle answers (`GET /batches/{id}`); its jobs stay readable by id. */
export const BATCH_RETENTION_DAYS = 7;

/** Deletes batch handles older than BATCH_RETENTION_DAYS (the cron sweep calls it). */
export async function pruneBatches(db: Db): Promise<number> {
  const gone = await db
    .delete(batches)
    .where(lt(batches.createdAt, sql`now() - make_interval(days => ${BATCH_RETENTION_DAYS})`))
    .returning({ id: batches.id });
  return gone.length;
}

/** A batch's progress in one query: counts by status and its failed jobs. */
export async function getBatchStatus(
  db: Db,
  orgId: string,
  batchId: string,
): Promise<BatchStatus | undefined> {
  const rows = await db
    .select({
      createdAt: batches.createdAt,
      ord: sql<number>`m.ord`.mapWith(Number),
      id: jobs.id,
      assetId: jobs.assetId,
      segmentId: jobs.segmentId,
      status: jobs.status,
      error: jobs.error,
    })
    .from(batches)
    .innerJoin(sql`unnest(${batches.jobIds}) WITH ORDINALITY AS m(job_id, ord)`, sql`true`)
    .innerJoin(jobs, sql`${jobs.id} = m.job_id`)
    .where(and(eq(batches.id, batchId), eq(batches.orgId, orgId)))
    .orderBy(sql`m.ord`);
  if (rows.length === 0) return undefined;
  const counts: BatchStatus['counts'] = { QUEUED: 0, PROCESSING: 0, SUCCEEDED: 0, FAILED: 0 };
  for (const r of rows) counts[r.status]++;
  return {
    id: batchId,
    createdAt: rows[0]!.createdAt,
    total: rows.length,
    counts,
    failed: rows
      .filter((r) => r.status === 'FAILED')
      .map((r) => ({ id: r.id, assetId: r.assetId, segmentId: r.segmentId, error: r.error })),
  };
}

export interface JobState {
  id: string;
  seq: number;
  status: JobRow['status'];
  /** Deliveries that reached the consumer (markProcessing), and the last recorded error. */
  attempts: number;
  error: JobError | null;
}

export async function loadJobStates(db: Db, ids: string[]): Promise<Map<string, JobState>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .select({
      id: jobs.id,
      seq: jobs.seq,
      status: jobs.status,
      attempts: jobs.attempts,
      error: jobs.error,
    })
    .from(jobs)
    .where(inArray(jobs.id, ids));
  return new Map(rows.map((r) => [r.id, r]));
}

export async function markProcessing(db: Db, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db
    .update(jobs)
    .set({ status: 'PROCESSING', attempts: sql`${jobs.attempts} + 1`, updatedAt: sql`now()` })
    .where(and(inArray(jobs.id, ids), notInArray(jobs.status, [...TERMINAL_STATUSES])));
}

export type Outcome =
  | { kind: 'succeeded'; jobId: string; seq: number; result: JobResult }
  | { kind: 'failed'; jobId: string; seq: number; error: JobError }
  | { kind: 'retrying'; jobId: string; seq: number; error: JobError };

/**
 * Records the outcomes of one delivery in one statement. Each update is guarded by the job's seq,
 * so an outcome for a superseded delivery changes nothing. A terminal outcome deletes the outbox
 * rows up to that seq: the raw text leaves Postgres when the job is terminal.
 */
export async function recordOutcomes(db: Db, outcomes: Outcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  // One statement for the whole batch (atomic on its own, one round trip): the rows travel as
  // one JSON parameter. Postgres runs every data-modifying CTE to completion whether or not the
  // final SELECT reads it. A job with both a terminal and a retrying outcome in one batch (two
  // deliveries of it) ends terminal.
  const rows = outcomes.map((o) => ({
    id: o.jobId,
    seq: o.seq,
    kind: o.kind,
    result: o.kind === 'succeeded' ? o.result : null,
    error: o.kind === 'succeeded' ? null : o.error,
  }));
  const terminalStatuses = sql.join(
    TERMINAL_STATUSES.map((status) => sql`${status}`),
    sql`, `,
  );
  await db.execute(sql`
    WITH v AS (
      SELECT * FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        AS x(id uuid, seq bigint, kind text, result jsonb, error jsonb)
    ),
    terminal AS (
      UPDATE jobs SET
        status = (CASE v.kind WHEN 'succeeded' THEN 'SUCCEEDED' ELSE 'FAILED' END)::job_status,
        result = v.result, error = v.error, updated_at = now(), completed_at = now()
      FROM v
      WHERE v.kind <> 'retrying' AND jobs.id = v.id AND jobs.seq = v.seq
        AND jobs.status::text NOT IN (${terminalStatuses})
    ),
    retrying AS (
      UPDATE jobs SET status = 'QUEUED', error = v.error, updated_at = now()
      FROM v
      WHERE v.kind = 'retrying' AND jobs.id = v.id AND jobs.seq = v.seq
        AND jobs.status::text NOT IN (${terminalStatuses})
        AND NOT EXISTS (SELECT 1 FROM v t WHERE t.id = v.id AND t.kind <> 'retrying')
    ),
    gone AS (
      DELETE FROM outbox USING v
      WHERE v.kind <> 'retrying' AND outbox.job_id = v.id AND outbox.job_seq <= v.seq
    )
    SELECT 1`);
}
