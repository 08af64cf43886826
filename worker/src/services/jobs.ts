/**
 * Jobs and the transactional outbox. Everything here speaks in domain terms; routes and the queue
 * consumer map results to HTTP or to ack/retry.
 */
import { and, eq, gt, inArray, notInArray, sql } from 'drizzle-orm';
import { jobs, outbox, TERMINAL_STATUSES } from '../../../db/schema';
import type { EmbedMessage, JobError, JobResult, JobRow } from '../../../db/schema';
import type { Db } from '../lib/db';
import type { TextCipher } from '../lib/text-cipher';
import { pointId } from '../../../embedder/src/core/ids';
import { jobKey } from '../lib/hash';

export interface NewJob {
  orgId: string;
  assetId: string;
  segmentId: string;
  model: string;
  modelVer: string;
  text: string;
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

/**
 * Records one job per item and its outbox row in ONE transaction.
 *
 * Idempotency: an identical item (same job_key) returns the existing job instead of a second one,
 * also under concurrent duplicates (unique index + ON CONFLICT DO NOTHING; the loser reads the
 * winner's row after it commits). The existing job is queued again, with a new seq, only when it
 * FAILED or when a newer job for the same point has been submitted since (A → B → A must end as A).
 *
 * The common case (all new) costs two statements whatever the batch size.
 */
export async function submitJobs(
  db: Db,
  cipher: TextCipher,
  items: NewJob[],
  requestId: string,
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
  return db.transaction(async (tx) => {
    const inserted = await tx
      .insert(jobs)
      .values(rows)
      .onConflictDoNothing({ target: jobs.jobKey })
      .returning({ id: jobs.id, seq: jobs.seq });
    const insertedSeq = new Map(inserted.map((r) => [r.id, r.seq]));

    const submitted: SubmittedJob[] = [];
    const toSend: Array<{ jobId: string; seq: number; item: NewJob }> = [];
    for (const [i, item] of items.entries()) {
      const row = rows[i]!;
      const seq = insertedSeq.get(row.id);
      const base = { assetId: item.assetId, segmentId: item.segmentId };
      if (seq !== undefined) {
        submitted.push({ ...base, jobId: row.id, outcome: 'created' });
        toSend.push({ jobId: row.id, seq, item });
        continue;
      }
      const [existing] = await tx
        .select({ id: jobs.id, seq: jobs.seq, status: jobs.status })
        .from(jobs)
        .where(eq(jobs.jobKey, row.jobKey))
        .for('update');
      if (!existing) throw new Error('job vanished during idempotent insert');
      const newer = await tx
        .select({ id: jobs.id })
        .from(jobs)
        .where(
          and(
            eq(jobs.orgId, item.orgId),
            eq(jobs.pointId, row.pointId),
            gt(jobs.seq, existing.seq),
          ),
        )
        .limit(1);
      const alreadyQueued = toSend.some((t) => t.jobId === existing.id);
      if (alreadyQueued || (existing.status !== 'FAILED' && newer.length === 0)) {
        submitted.push({ ...base, jobId: existing.id, outcome: 'existing' });
        continue;
      }
      const [bumped] = await tx
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
        .where(eq(jobs.id, existing.id))
        .returning({ seq: jobs.seq });
      submitted.push({ ...base, jobId: existing.id, outcome: 'requeued' });
      toSend.push({ jobId: existing.id, seq: bumped!.seq, item });
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
      })),
    );
    const outboxRows = await tx
      .insert(outbox)
      .values(messages.map((m) => ({ jobId: m.job_id, jobSeq: m.seq, payload: m })))
      .returning({ id: outbox.id });
    const pending = messages.map((message, i) => ({ outboxId: outboxRows[i]!.id, message }));
    return { jobs: submitted, pending };
  });
}

export const CANCELLED = 'cancelled';

/**
 * Cancels the unfinished jobs of an asset or a point (before its vectors are deleted): they become
 * FAILED with code `cancelled` and their outbox rows, and with them the text, are deleted.
 */
export async function cancelJobs(
  db: Db,
  orgId: string,
  target: { assetId: string } | { pointId: string },
): Promise<number> {
  return db.transaction(async (tx) => {
    const cancelled = await tx
      .update(jobs)
      .set({
        status: 'FAILED',
        error: { code: CANCELLED, message: 'the vector was deleted before this job finished' },
        completedAt: sql`now()`,
        updatedAt: sql`now()`,
      })
      .where(
        and(
          eq(jobs.orgId, orgId),
          'assetId' in target ? eq(jobs.assetId, target.assetId) : eq(jobs.pointId, target.pointId),
          notInArray(jobs.status, [...TERMINAL_STATUSES]),
        ),
      )
      .returning({ id: jobs.id });
    if (cancelled.length > 0) {
      await tx.delete(outbox).where(
        inArray(
          outbox.jobId,
          cancelled.map((c) => c.id),
        ),
      );
    }
    return cancelled.length;
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

export async function getJob(db: Db, orgId: string, jobId: string): Promise<JobRow | undefined> {
  const [row] = await db
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, jobId), eq(jobs.orgId, orgId)))
    .limit(1);
  return row;
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
