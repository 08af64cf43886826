/**
 * Postgres schema: jobs, the transactional outbox, batch handles and organisation settings.
 *
 * PII rule: no column ever holds a text in the clear. The text travels only in `outbox.payload`,
 * encrypted (AES-256-GCM, bound to its job: worker/src/lib/text-cipher.ts), and an outbox row
 * lives only until its job is terminal (SUCCEEDED or FAILED): it is deleted in the same statement
 * that records the outcome.
 */
import { sql } from 'drizzle-orm';
import type { Chunking, EmbedSuccess } from '../contract/internal.js';
import type { EmbedMessage } from '../worker/src/queue/message.js';
import {
  bigint,
  bigserial,
  index,
  integer,
  jsonb,
  pgEnum,
  pgSequence,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

export const JOB_STATUSES = ['QUEUED', 'PROCESSING', 'SUCCEEDED', 'FAILED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_STATUSES: readonly JobStatus[] = ['SUCCEEDED', 'FAILED'];

export const jobStatus = pgEnum('job_status', JOB_STATUSES);

/**
 * Global, monotonically increasing version of a job's content. The vector store keeps the point
 * with the highest seq (latest wins), so a job re-queued for a newer submission takes a new seq.
 */
export const jobSeq = pgSequence('job_seq', { startWith: 1, increment: 1 });

/**
 * What a successful job reports: the embedder's per-item result (the wire contract). No text.
 * `chunk_count` is absent from the results of jobs that finished before texts were chunked (each
 * wrote one point).
 */
export type JobResult = Omit<EmbedSuccess, 'chunk_count'> &
  Partial<Pick<EmbedSuccess, 'chunk_count'>>;

/** Why a job failed: a stable code and a message that never contains the text. */
export interface JobError {
  code: string;
  message: string;
}

export const jobs = pgTable(
  'jobs',
  {
    id: uuid('id').primaryKey(),
    seq: bigint('seq', { mode: 'number' })
      .notNull()
      .default(sql`nextval('job_seq')`),
    orgId: text('org_id').notNull(),
    assetId: text('asset_id').notNull(),
    segmentId: text('segment_id').notNull(),
    model: text('model').notNull(),
    modelVer: text('model_ver').notNull(),
    /** Deterministic id of the segment's vector (see contract/ids.ts). */
    pointId: uuid('point_id').notNull(),
    /** sha256 over (org, asset, segment, model, model_ver, sha256(text), point format): idempotency. */
    jobKey: text('job_key').notNull(),
    status: jobStatus('status').notNull().default('QUEUED'),
    attempts: integer('attempts').notNull().default(0),
    result: jsonb('result').$type<JobResult>(),
    error: jsonb('error').$type<JobError>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
    /**
     * When the vector(s) this job wrote were deleted (DELETE by point or asset). A deleted job's
     * `job_key` is retired (made unique to the job), so the same text submitted again makes a
     * new job instead of answering with this one.
     */
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('jobs_job_key_uq').on(t.jobKey),
    index('jobs_org_point_idx').on(t.orgId, t.pointId),
    index('jobs_org_asset_status_idx').on(t.orgId, t.assetId, t.status),
    index('jobs_segment_seq_idx').on(t.orgId, t.assetId, t.segmentId, t.model, t.modelVer, t.seq),
  ],
);

export const outbox = pgTable(
  'outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    jobId: uuid('job_id')
      .notNull()
      .references(() => jobs.id, { onDelete: 'cascade' }),
    /** The job seq this message carries; an outcome for seq N deletes rows with job_seq <= N. */
    jobSeq: bigint('job_seq', { mode: 'number' }).notNull(),
    payload: jsonb('payload').$type<EmbedMessage>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    sendAttempts: integer('send_attempts').notNull().default(0),
    /** A short error code from the last failed send; never message content. */
    lastError: text('last_error'),
  },
  (t) => [
    index('outbox_unsent_idx')
      .on(t.createdAt)
      .where(sql`${t.sentAt} IS NULL`),
    index('outbox_job_idx').on(t.jobId),
    // The sweep's redelivery of rows sent long ago whose job never finished.
    index('outbox_sent_idx')
      .on(t.sentAt)
      .where(sql`${t.sentAt} IS NOT NULL`),
  ],
);

/**
 * A batch submission (`POST /vectors/embed/batch`): its job ids, in request order, so that one
 * request (`GET /batches/{id}`) reports the progress of the whole batch.
 */
export const batches = pgTable(
  'batches',
  {
    id: uuid('id').primaryKey(),
    orgId: text('org_id').notNull(),
    jobIds: uuid('job_ids').array().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('batches_org_created_idx').on(t.orgId, t.createdAt)],
);

/**
 * An organisation's settings (`GET`/`PUT /vectors/settings`): its default chunking of texts whose
 * request names none (null or no row: the embedder's default).
 */
export const orgSettings = pgTable('org_settings', {
  orgId: text('org_id').primaryKey(),
  chunking: jsonb('chunking').$type<Chunking>(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export type JobRow = typeof jobs.$inferSelect;
export type OutboxRow = typeof outbox.$inferSelect;
