/**
 * The queue message: one schema, owned here. The outbox stores exactly this (db/schema.ts types
 * its jsonb with it), the relay sends it, the consumers parse it.
 */
import { z } from 'zod';

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
  })
  .strict();

export type EmbedMessage = z.infer<typeof EmbedMessageSchema>;
