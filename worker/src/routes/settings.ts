import { createRoute, z } from '@hono/zod-openapi';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { DEFAULT_CHUNK_OVERLAP_TOKENS } from '../../../contract/internal';
import type { AppBindings } from '../middleware/context';
import { getOrgSettings, putOrgSettings } from '../services/settings';
import type { OrgSettings } from '../services/settings';
import {
  INGEST_ERRORS,
  NullableChunking,
  authenticated,
  json,
  jsonBody,
  operation,
} from './common';

const ORG_CHUNKING = NullableChunking.openapi({
  description:
    "The organisation's default chunking, for texts whose request names none (a batch " +
    "segment's own, else its batch's, comes first). null: the embedder's default (windows of " +
    `the model's size with a ${DEFAULT_CHUNK_OVERLAP_TOKENS}-token overlap). It applies to texts ` +
    "submitted after it is set, and is part of their jobs' idempotency key.",
  example: { max_tokens: 128, overlap_tokens: 16 },
});

export const Settings = z
  .object({
    chunking: ORG_CHUNKING,
    updated_at: z.iso
      .datetime()
      .nullable()
      .openapi({ description: 'when the settings were last written; null: never' }),
  })
  .openapi('Settings');

export const SettingsUpdate = z
  .object({ chunking: ORG_CHUNKING })
  .strict()
  .openapi('SettingsUpdate', {
    description: 'The whole settings document: `chunking` is required (null clears it).',
  });

const view = (s: OrgSettings) => ({
  chunking: s.chunking,
  updated_at: s.updatedAt?.toISOString() ?? null,
});

export const getSettingsRoute = createRoute({
  summary: "Get the caller's organisation settings (default chunking)",
  ...operation('get', '/vectors/settings', 'getSettings', 'settings'),
  ...authenticated([], {}, { 200: json("The organisation's settings", Settings) }),
});

export const putSettingsRoute = createRoute({
  summary: "Replace the caller's organisation settings (default chunking)",
  ...operation('put', '/vectors/settings', 'putSettings', 'settings'),
  ...authenticated(INGEST_ERRORS, jsonBody(SettingsUpdate), {
    200: json('The settings as stored', Settings),
  }),
});

export function registerSettings(app: OpenAPIHono<AppBindings>): void {
  app.openapi(getSettingsRoute, async (c) => {
    return c.json(view(await getOrgSettings(c.var.db(), c.var.auth.orgId)), 200);
  });

  app.openapi(putSettingsRoute, async (c) => {
    const body = c.req.valid('json');
    return c.json(view(await putOrgSettings(c.var.db(), c.var.auth.orgId, body)), 200);
  });
}
