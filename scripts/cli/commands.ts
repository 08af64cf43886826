/** The small commands: token, search, job, delete. (`ingest` has its own module.) */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../lib/paths.js';
import { loadDevSecrets } from '../lib/secrets.js';
import { mintDevToken } from '../lib/token.js';
import type { SearchMode } from '../../contract/internal.js';
import type { EmbeddingsResponse } from '../../contract/openai.js';
import type { EmbedArgs, RerankArgs, SearchArgs } from './args.js';
import type { ApiClient } from './client.js';
import { CliError } from './errors.js';
import { batchPath, describeJobError } from './ingest.js';
import type { BatchView } from './ingest.js';
import type { Io } from './io.js';
import { Progress } from './progress.js';
import { localText } from './segments.js';
import type { LocalText } from './segments.js';

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
    tenantClaim: io.env.AUTH_TENANT_CLAIM,
  });
  if (io.json) {
    const expires = new Date(Date.now() + c.ttlSeconds * 1000).toISOString();
    io.out(JSON.stringify({ token, org_id: c.org, expires_at: expires }));
  } else {
    io.out(token);
  }
  return 0;
}

/** A hit's place in one ranking (with --explain). */
interface RankInfo {
  rank: number;
  score: number;
}

interface SearchBody {
  results: Array<{
    point_id: string;
    score: number;
    payload: Record<string, unknown>;
    /** With --explain: the hit's rank and score in each ranking (null: not in that ranking). */
    explain?: { dense: RankInfo | null; keyword: RankInfo | null };
    /** Added here (never by the server): the hit's text as it reads now in the local file. */
    local?: LocalText;
  }>;
  /** The mode the server used (absent from servers that predate search modes). */
  mode?: SearchMode;
  query_model: string;
  query_model_ver: string;
  total: number;
}

/** What a result's score is, by the mode that ranked it. */
export const SCORE_KIND: Record<SearchMode, string> = {
  dense: 'cosine similarity',
  keyword: 'BM25',
  hybrid: 'fused score',
};

/** A score as printed: fused scores are small (RRF's are hundredths), so they get more decimals. */
export function formatScore(score: number, mode: SearchMode | undefined): string {
  return score.toFixed(mode === 'hybrid' ? 4 : 3);
}

/** One ranking's cell of --explain output: `#2 0.613`, or `-` where the ranking lacks the hit. */
function rankCell(r: RankInfo | null | undefined, mode: SearchMode): string {
  return r ? `#${r.rank} ${formatScore(r.score, mode)}` : '-';
}

/**
 * The line above the hits: how many, the mode used and what its score is (and the mode asked
 * for, where the server answered with another), and the query's model.
 */
export function searchSummary(body: SearchBody, asked: SearchMode | undefined): string {
  const n = body.results.length;
  const parts: string[] = [];
  if (body.mode !== undefined) {
    const other = asked !== undefined && asked !== body.mode;
    parts.push(
      `mode ${body.mode}${other ? `, not ${asked}: the store has no keyword index` : ''}`,
      `score: ${SCORE_KIND[body.mode]}`,
    );
  }
  parts.push(`model ${body.query_model}@${body.query_model_ver}`);
  return `${n} result${n === 1 ? '' : 's'} (${parts.join('; ')})`;
}

/** At most this many lines of a paragraph, each cut at this many characters, in text output. */
const SHOW_LINES = 6;
const SHOW_WIDTH = 160;

/** The lines printed under a hit for its local text. */
export function describeLocal(l: LocalText, segmentId: string): string[] {
  if (l.missing) return [`${l.file}: not found from this folder (run search where you ran ingest)`];
  if (l.text === undefined || l.line === undefined) {
    return [`${l.file}: ${segmentId} is no longer in the file (it changed since it was ingested)`];
  }
  const lines = l.text.split('\n');
  const shown = lines
    .slice(0, SHOW_LINES)
    .map((t) => `│ ${t.length > SHOW_WIDTH ? `${t.slice(0, SHOW_WIDTH - 1)}…` : t}`.trimEnd());
  if (lines.length > SHOW_LINES) shown.push(`│ … (${lines.length - SHOW_LINES} more lines)`);
  return [`${l.file}:${l.line}${l.changed ? '  (changed since it was ingested)' : ''}`, ...shown];
}

/**
 * The part of a hit's local text that is its chunk: characters (code points) [start, end) of the
 * text, starting on the line it starts on. Only for a local text that reads as it was embedded.
 */
export function localChunk(l: LocalText, start: number, end: number): LocalText {
  if (l.text === undefined || l.line === undefined || l.changed) return l;
  const points = [...l.text];
  const before = points.slice(0, start).join('');
  // A JSONL row is one line of the file, whatever its text holds.
  const lines = l.file.endsWith('.jsonl') ? 0 : before.split('\n').length - 1;
  return { ...l, line: l.line + lines, text: points.slice(start, end).join('') };
}

/** `i/n`: which of a chunked text's chunks a hit is (empty for a text of one chunk). */
function chunkCell(payload: Record<string, unknown>): string {
  const { chunk_index: i, chunk_count: n } = payload;
  return typeof i === 'number' && typeof n === 'number' && n > 1 ? `${i + 1}/${n}` : '';
}

export async function searchCommand(io: Io, api: ApiClient, c: SearchArgs): Promise<number> {
  const { body } = await api.request<SearchBody>('POST', '/vectors/search', {
    query_text: c.query,
    limit: c.limit,
    ...(c.asset !== undefined ? { asset_id: c.asset } : {}),
    ...(c.segment !== undefined ? { segment_id: c.segment } : {}),
    ...(c.mode !== undefined ? { mode: c.mode } : {}),
    ...(c.fusion !== undefined ? { fusion: c.fusion } : {}),
    ...(c.explain ? { explain: true } : {}),
    ...(c.groupBy !== undefined ? { group_by: c.groupBy } : {}),
  });
  for (const r of body.results) {
    const { asset_id, segment_id, text_len, chunk_count, chunk_start, chunk_end } = r.payload;
    if (typeof asset_id !== 'string' || typeof segment_id !== 'string') continue;
    let local = await localText(
      asset_id,
      segment_id,
      typeof text_len === 'number' ? text_len : undefined,
      io.cwd,
    );
    // A hit on a chunk of a long text: show that chunk, not the text's beginning.
    if (
      local &&
      typeof chunk_count === 'number' &&
      chunk_count > 1 &&
      typeof chunk_start === 'number' &&
      typeof chunk_end === 'number'
    ) {
      local = localChunk(local, chunk_start, chunk_end);
    }
    if (local) r.local = local;
  }
  if (io.json) {
    io.out(JSON.stringify(body));
    return 0;
  }
  const n = body.results.length;
  io.out(searchSummary(body, c.mode));
  if (n === 0) return 0;
  const explain = c.explain === true || body.results.some((r) => r.explain !== undefined);
  // A `chunk` column (i/n) when some hit is a chunk of a text longer than the model's window.
  const chunked = body.results.some((r) => chunkCell(r.payload) !== '');
  const rows = body.results.map((r, i) => [
    String(i + 1),
    formatScore(r.score, body.mode),
    ...(explain
      ? [rankCell(r.explain?.dense, 'dense'), rankCell(r.explain?.keyword, 'keyword')]
      : []),
    `${String(r.payload.asset_id)} / ${String(r.payload.segment_id)}`,
    ...(chunked ? [chunkCell(r.payload)] : []),
    String(r.payload.token_count ?? ''),
    r.point_id,
  ]);
  const head = [
    '#',
    'score',
    ...(explain ? ['dense', 'keyword'] : []),
    'asset / segment',
    ...(chunked ? ['chunk'] : []),
  ];
  const [header, ...lines] = table([...head, 'tokens', 'point'], rows).split('\n');
  io.out(header!);
  const indent = ' '.repeat(String(n).length + 2);
  body.results.forEach((r, i) => {
    io.out(lines[i]!);
    if (r.local) {
      for (const l of describeLocal(r.local, String(r.payload.segment_id))) io.out(indent + l);
    }
  });
  return 0;
}

/**
 * `heimdex embed <text…>`: the texts' vectors from POST /v1/embeddings, one JSON array per line
 * on stdout (in order, ready for a pipe), the model, size and token counts on stderr.
 */
export async function embedCommand(io: Io, api: ApiClient, c: EmbedArgs): Promise<number> {
  const { body } = await api.request<EmbeddingsResponse>('POST', '/v1/embeddings', {
    input: c.texts,
    model: c.model,
  });
  if (io.json) {
    io.out(JSON.stringify(body));
    return 0;
  }
  for (const d of body.data) io.out(JSON.stringify(d.embedding));
  if (!io.quiet) {
    const n = body.data.length;
    const dim = Array.isArray(body.data[0]?.embedding) ? body.data[0].embedding.length : 0;
    const truncated = body.usage.truncated_inputs ?? 0;
    io.err(
      `${n} embedding${n === 1 ? '' : 's'} of ${dim} dimensions (model ${body.model}; ` +
        `${body.usage.prompt_tokens} tokens` +
        (truncated > 0 ? `; ${truncated} cut to the model's window)` : ')'),
    );
  }
  return 0;
}

interface RerankBody {
  results: Array<{ index: number; relevance_score: number }>;
  model: string;
}

/**
 * `heimdex rerank --query Q <document…>`: the documents best first from POST /v1/rerank, one line
 * each (score, the document's position among the arguments from 1, the document), the model on
 * stderr. The documents are the command line's own: the server sends none back.
 */
export async function rerankCommand(io: Io, api: ApiClient, c: RerankArgs): Promise<number> {
  const { body } = await api.request<RerankBody>('POST', '/v1/rerank', {
    query: c.query,
    documents: c.documents,
    ...(c.limit !== undefined ? { top_n: c.limit } : {}),
    ...(c.model !== undefined ? { model: c.model } : {}),
  });
  if (io.json) {
    io.out(JSON.stringify(body));
    return 0;
  }
  for (const r of body.results) {
    const doc = c.documents[r.index] ?? '';
    const oneLine = doc.replace(/\s+/g, ' ').trim();
    const shown = oneLine.length > 100 ? `${oneLine.slice(0, 99)}…` : oneLine;
    io.out(`${r.relevance_score.toFixed(4)}  [${r.index + 1}]  ${shown}`);
  }
  if (!io.quiet) {
    io.err(`${body.results.length} of ${c.documents.length} documents (reranker ${body.model})`);
  }
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

/** `heimdex batch <id> [--wait]`: one ingest request's job counts and failed jobs. */
export async function batchCommand(
  io: Io,
  api: ApiClient,
  c: { batchId: string; wait: boolean; timeoutSeconds: number; pollIntervalMs?: number },
): Promise<number> {
  const get = async () => (await api.request<BatchView>('GET', batchPath(c.batchId))).body;
  let view = await get();
  if (c.wait && !view.done) {
    const deadline = Date.now() + c.timeoutSeconds * 1000;
    const bar = new Progress(io.progress, 'embedding', view.total, 'job', !io.quiet);
    const settled = (v: BatchView) => v.counts.succeeded + v.counts.failed;
    bar.set(settled(view));
    while (!view.done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, c.pollIntervalMs ?? 500));
      view = await get();
      bar.set(settled(view));
    }
    bar.finish(view.done ? '' : `timed out, ${view.total - settled(view)} unfinished`);
  }
  const code = view.counts.failed > 0 || (c.wait && !view.done) ? 1 : 0;
  if (io.json) {
    io.out(JSON.stringify(view));
    return code;
  }
  const { queued, processing, succeeded, failed } = view.counts;
  io.out(`batch    ${view.batch_id} (created ${view.created_at})`);
  io.out(
    `jobs     ${view.total}: ${queued} queued, ${processing} processing, ${succeeded} succeeded, ${failed} failed` +
      (view.done ? ' (done)' : ''),
  );
  for (const f of view.failed_jobs) {
    io.out(
      `failed   ${f.asset_id} / ${f.segment_id} (job ${f.job_id}): ${describeJobError(f.error)}`,
    );
  }
  return code;
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
