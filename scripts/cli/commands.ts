/** The small commands: token, search, job, delete. (`ingest` has its own module.) */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDevSecrets } from '../lib/secrets.js';
import { mintDevToken } from '../lib/token.js';
import type { ApiClient } from './client.js';
import { CliError } from './errors.js';
import type { Io } from './io.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** --secret, else DEV_JWT_SECRET, else the dev stack's secrets file (never created here). */
export function resolveDevSecret(secret: string | undefined, env: NodeJS.ProcessEnv): string {
  let value = secret ?? (env.DEV_JWT_SECRET || undefined);
  if (value === undefined) {
    const dataDir = path.resolve(REPO_ROOT, env.HEIMDEX_DATA_DIR ?? '.data');
    const file = path.join(dataDir, 'dev-secrets.json');
    if (!fs.existsSync(file)) {
      throw new CliError(
        `no dev JWT secret: pass --secret, set DEV_JWT_SECRET, or start the dev stack (npm run dev), which writes ${file}`,
      );
    }
    try {
      value = loadDevSecrets(dataDir, env).devJwtSecret;
    } catch (err) {
      throw new CliError(
        `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  if (value.length < 32) {
    throw new CliError(
      'the dev JWT secret must be at least 32 characters (as the Worker requires)',
    );
  }
  return value;
}

export async function tokenCommand(
  io: Io,
  c: { org: string; subject: string; ttlSeconds: number; secret?: string },
): Promise<number> {
  const secret = resolveDevSecret(c.secret, io.env);
  const token = await mintDevToken({
    secret,
    org: c.org,
    subject: c.subject,
    ttlSeconds: c.ttlSeconds,
  });
  if (io.json) {
    const expires = new Date(Date.now() + c.ttlSeconds * 1000).toISOString();
    io.out(JSON.stringify({ token, org_id: c.org, expires_at: expires }));
  } else {
    io.out(token);
  }
  return 0;
}

interface SearchBody {
  results: Array<{ point_id: string; score: number; payload: Record<string, unknown> }>;
  query_model: string;
  query_model_ver: string;
  total: number;
}

export async function searchCommand(
  io: Io,
  api: ApiClient,
  c: { query: string; limit: number; asset?: string; segment?: string },
): Promise<number> {
  const { body } = await api.request<SearchBody>('POST', '/vectors/search', {
    query_text: c.query,
    limit: c.limit,
    ...(c.asset !== undefined ? { asset_id: c.asset } : {}),
    ...(c.segment !== undefined ? { segment_id: c.segment } : {}),
  });
  if (io.json) {
    io.out(JSON.stringify(body));
    return 0;
  }
  const n = body.results.length;
  io.out(`${n} result${n === 1 ? '' : 's'} (model ${body.query_model}@${body.query_model_ver})`);
  if (n === 0) return 0;
  const rows = body.results.map((r, i) => [
    String(i + 1),
    r.score.toFixed(3),
    `${String(r.payload.asset_id)} / ${String(r.payload.segment_id)}`,
    String(r.payload.token_count ?? ''),
    r.point_id,
  ]);
  io.out(table(['#', 'score', 'asset / segment', 'tokens', 'point'], rows));
  return 0;
}

export async function jobCommand(io: Io, api: ApiClient, jobId: string): Promise<number> {
  const { body } = await api.request<Record<string, unknown>>(
    'GET',
    `/jobs/${encodeURIComponent(jobId)}`,
  );
  if (io.json) {
    io.out(JSON.stringify(body));
    return body.status === 'FAILED' ? 1 : 0;
  }
  for (const [k, v] of Object.entries(body)) {
    if (v !== null && typeof v === 'object') {
      for (const [k2, v2] of Object.entries(v)) io.out(`${`${k}.${k2}`.padEnd(20)} ${String(v2)}`);
    } else {
      io.out(`${k.padEnd(20)} ${v === null ? '-' : String(v)}`);
    }
  }
  return body.status === 'FAILED' ? 1 : 0;
}

export async function deleteCommand(
  io: Io,
  api: ApiClient,
  c: { asset?: string; point?: string },
): Promise<number> {
  const target =
    c.asset !== undefined
      ? { path: `/vectors/assets/${encodeURIComponent(c.asset)}`, label: `asset ${c.asset}` }
      : { path: `/vectors/points/${encodeURIComponent(c.point!)}`, label: `point ${c.point!}` };
  const { body } = await api.request<{ deleted: number; cancelled_jobs: number }>(
    'DELETE',
    target.path,
  );
  if (io.json) io.out(JSON.stringify(body));
  else {
    io.out(
      `deleted ${body.deleted} vector${body.deleted === 1 ? '' : 's'} and cancelled ${body.cancelled_jobs} unfinished job${body.cancelled_jobs === 1 ? '' : 's'} (${target.label})`,
    );
  }
  return 0;
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
