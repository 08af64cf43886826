/**
 * Organisation settings (`GET`/`PUT /vectors/settings`): today, the default chunking of the
 * organisation's texts whose request names none. One row per organisation; no row is the same as
 * a row whose values are null (the embedder's defaults).
 */
import { eq, sql } from 'drizzle-orm';
import { Chunking } from '../../../contract/internal';
import { orgSettings } from '../../../db/schema';
import type { Db } from '../lib/db';
import { canonicalChunking } from '../lib/hash';

export interface OrgSettings {
  /** null: the embedder's default (windows of the model's size). */
  chunking: Chunking | null;
  /** When they were last written; null when never. */
  updatedAt: Date | null;
}

export async function getOrgSettings(db: Db, orgId: string): Promise<OrgSettings> {
  const [row] = await db
    .select({ chunking: orgSettings.chunking, updatedAt: orgSettings.updatedAt })
    .from(orgSettings)
    .where(eq(orgSettings.orgId, orgId))
    .limit(1);
  if (!row) return { chunking: null, updatedAt: null };
  // Written only through putOrgSettings; a value that no longer parses counts as unset.
  const chunking = Chunking.safeParse(row.chunking);
  return { chunking: chunking.success ? chunking.data : null, updatedAt: row.updatedAt };
}

/** Replaces the organisation's settings (null clears a value) and returns them as stored. */
export async function putOrgSettings(
  db: Db,
  orgId: string,
  settings: { chunking: Chunking | null },
): Promise<OrgSettings> {
  const chunking = settings.chunking === null ? null : canonicalChunking(settings.chunking);
  const [row] = await db
    .insert(orgSettings)
    .values({ orgId, chunking })
    .onConflictDoUpdate({
      target: orgSettings.orgId,
      set: { chunking, updatedAt: sql`now()` },
    })
    .returning({ chunking: orgSettings.chunking, updatedAt: orgSettings.updatedAt });
  return { chunking: row!.chunking ?? null, updatedAt: row!.updatedAt };
}
