/**
 * The queue message: one schema, owned here. The outbox stores exactly this (db/schema.ts types
 * its jsonb with it), the relay sends it, the consumers parse it. Its size is bounded by
 * Cloudflare's per-message limit: limits.ts MAX_TEXT_BYTES is the longest text that fits.
 */
import { z } from 'zod';
// .js: db/schema.ts (Node, nodenext resolution) imports this module too.
import { Chunking } from '../../../contract/internal.js';

export const EmbedMessageSchema = z
  .object({
    /** 2: the text travels encrypted (worker/src/lib/text-cipher.ts). */
    v: z.literal(2),
    job_id: z.uuid(),
    seq: z.number().int().positive(),
    org_id: z.string().min(1),
    asset_id: z.string().min(1),
    segment_id: z.string().min(1),
    model: z.string().min(1),
    model_ver: z.string().min(1),
    /** The text, AES-256-GCM encrypted and bound to (org_id, job_id, seq). Never in the clear. */
    text_enc: z.object({ kid: z.string().min(1), data: z.string().min(1) }).strict(),
    request_id: z.string(),
    /**
     * The job's chunking as resolved at submission (the request's, else the organisation's
     * setting); absent: the embedder's default. Optional, so messages queued before it parse.
     */
    chunking: Chunking.optional(),
  })
  .strict();

export type EmbedMessage = z.infer<typeof EmbedMessageSchema>;
