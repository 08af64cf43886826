/**
 * Command-line parsing: `heimdex [global options] <command> [arguments] [options]`. Global options
 * may appear anywhere. Every value is checked here, so commands receive typed, valid settings.
 */
import { parseArgs } from 'node:util';
import {
  DEFAULT_CHUNK_OVERLAP_TOKENS,
  DEFAULT_DBSF,
  DEFAULT_FUSION,
  DEFAULT_RRF,
  DEFAULT_SEARCH_MODE,
  FUSION_METHODS,
  GROUP_BY,
  MAX_CHUNK_TOKENS,
  MIN_CHUNK_TOKENS,
  SEARCH_MODES,
} from '../../contract/internal.js';
import type { Chunking, FusionMethod, GroupBy, SearchMode } from '../../contract/internal.js';
import { MAX_EMBEDDING_INPUTS } from '../../contract/openai.js';
import { MAX_RERANK_DOCUMENTS } from '../../contract/rerank.js';
import { MAX_BATCH_SEGMENTS } from '../../contract/rules.js';
import { CliError } from './errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:8787';
/** `heimdex embed`'s model when neither --model nor HEIMDEX_MODEL names one (the default model). */
export const DEFAULT_EMBED_MODEL = 'minilm-l6-v2';

export interface Globals {
  /** Not parsed yet: only the commands that call the API need it (see parseUrl). */
  url: string;
  token: string | undefined;
  json: boolean;
  quiet: boolean;
}

/** What `heimdex ingest` is told to do (ingest.ts). */
export interface IngestArgs {
  paths: string[];
  asset?: string;
  batchSize: number;
  concurrency: number;
  wait: boolean;
  timeoutSeconds: number;
  /** Unset: the organisation's setting, else the server's default. */
  chunking?: Chunking;
}

/** What `heimdex search` is told to look for (commands.ts). */
export interface SearchArgs {
  query: string;
  limit: number;
  asset?: string;
  segment?: string;
  /** Unset: the server's default (DEFAULT_SEARCH_MODE). */
  mode?: SearchMode;
  /** Hybrid mode's fusion options (only the ones given). */
  fusion?: { method?: FusionMethod; k?: number; weight?: number };
  explain?: true;
  /** Unset: the server's default (one result per segment). */
  groupBy?: GroupBy;
}

/** What `heimdex rerank` is told to rank (commands.ts). */
export interface RerankArgs {
  query: string;
  documents: string[];
  /** --limit: the best N only (top_n). */
  limit?: number;
  /** --model: the server's reranker by name (optional: the server's own). */
  model?: string;
}

/** What `heimdex embed` is told to embed (commands.ts). */
export interface EmbedArgs {
  texts: string[];
  model: string;
}

export type Command =
  | { name: 'help'; topic?: string }
  | { name: 'version' }
  | { name: 'token'; org: string; subject: string; ttlSeconds: number; secret?: string }
  | ({ name: 'ingest'; retries: number } & IngestArgs)
  | ({ name: 'search' } & SearchArgs)
  | ({ name: 'embed' } & EmbedArgs)
  | ({ name: 'rerank' } & RerankArgs)
  | { name: 'job'; jobId: string }
  | { name: 'batch'; batchId: string; wait: boolean; timeoutSeconds: number }
  | { name: 'delete'; asset?: string; point?: string };

export interface Parsed {
  globals: Globals;
  command: Command;
}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  // token
  org: { type: 'string' },
  sub: { type: 'string' },
  ttl: { type: 'string' },
  secret: { type: 'string' },
  // ingest, search, delete
  asset: { type: 'string' },
  segment: { type: 'string' },
  point: { type: 'string' },
  limit: { type: 'string' },
  mode: { type: 'string' },
  'fusion-method': { type: 'string' },
  'fusion-k': { type: 'string' },
  'fusion-weight': { type: 'string' },
  explain: { type: 'boolean' },
  'group-by': { type: 'string' },
  model: { type: 'string' },
  query: { type: 'string' },
  chunking: { type: 'string' },
  'batch-size': { type: 'string' },
  concurrency: { type: 'string' },
  'no-wait': { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
} as const;

type OptionName = keyof typeof OPTIONS;
const GLOBAL: OptionName[] = ['url', 'token', 'json', 'quiet', 'help', 'version'];

const COMMANDS: Record<Exclude<Command['name'], 'help' | 'version'>, OptionName[]> = {
  token: ['org', 'sub', 'ttl', 'secret'],
  ingest: ['asset', 'chunking', 'batch-size', 'concurrency', 'no-wait', 'timeout', 'retries'],
  search: [
    'limit',
    'asset',
    'segment',
    'mode',
    'fusion-method',
    'fusion-k',
    'fusion-weight',
    'explain',
    'group-by',
  ],
  embed: ['model'],
  rerank: ['query', 'limit', 'model'],
  job: [],
  batch: ['wait', 'timeout'],
  delete: ['asset', 'point'],
};

export const USAGE = `Usage: heimdex [--url URL] [--token JWT] [--json] [--quiet] <command> …

Commands:
  token   [--org ID] [--sub ID] [--ttl SECONDS] [--secret S]
          Print a dev token (AUTH_PROVIDER=dev). The secret comes from --secret, DEV_JWT_SECRET,
          or the dev stack's .data/dev-secrets.json (HEIMDEX_DATA_DIR moves it).
  ingest  <file|folder>… [--asset NAME] [--chunking truncate|MAX[:OVERLAP]] [--batch-size N]
          [--concurrency N] [--no-wait] [--timeout SECONDS] [--retries N]
          Embed .txt/.md files (one segment per paragraph, ids p1, p2, …; a markdown heading
          goes with the paragraph after it) and .jsonl files (one per line: {"asset_id"?,
          "segment_id"?, "text"}). Each file is an asset named by its path from the current
          folder (notes/today.md); --asset NAME puts every file under asset NAME instead
          (segment ids notes/today.md#p1, …), so that delete --asset NAME removes them all.
          Follows each batch until its jobs finish and prints a summary (exit 1 if any failed).
          A text longer than the model's window is embedded as overlapping chunks of its
          tokens: --chunking MAX[:OVERLAP] sets their size (${MIN_CHUNK_TOKENS}-${MAX_CHUNK_TOKENS} tokens, at most the
          model's window) and overlap (default ${DEFAULT_CHUNK_OVERLAP_TOKENS}, less than MAX); --chunking truncate
          embeds the first window only. Default: the organisation's setting (PUT
          /vectors/settings), else windows of the model's size.
  search  "<query>" [--limit N] [--asset ID] [--segment ID] [--mode MODE] [--explain]
          [--fusion-method dbsf|rrf] [--fusion-k N] [--fusion-weight W] [--group-by segment|chunk]
          Ranked hits; for a hit from a file ingested here, the file, line and paragraph as
          they read now on this disk (the server keeps no text). --mode dense (by meaning;
          score: cosine similarity), keyword (by the query's words; score: BM25) or hybrid
          (both rankings fused; score: the fused score); default ${DEFAULT_SEARCH_MODE}.
          --fusion-method (default ${DEFAULT_FUSION.method}): dbsf sums each ranking's scores normalised by
          their spread, rrf its reciprocal ranks; --fusion-k N (rrf only, 1-1000, default ${DEFAULT_RRF.k})
          and --fusion-weight W (the dense ranking's share, 0-1, default ${DEFAULT_DBSF.weight} for dbsf,
          ${DEFAULT_RRF.weight} for rrf) tune it. --explain shows each hit's
          rank and score in the dense and keyword rankings. --group-by segment (the default):
          one hit per segment, at its best chunk; chunk: every matching chunk of a long text.
  embed   "<text>"… [--model NAME]
          Embed texts now, stored nowhere (POST /v1/embeddings, OpenAI's protocol): one vector
          per text, in order, each a JSON array on its own line; a summary on stderr. --model:
          a model the server serves (default $HEIMDEX_MODEL or ${DEFAULT_EMBED_MODEL}); --json
          prints the whole response.
  rerank  --query "<query>" "<document>"… [--limit N] [--model NAME]
          Rerank documents against a query with the server's cross-encoder, stored nowhere
          (POST /v1/rerank): one line per document, best first: score, its position among the
          arguments (from 1), the document. --limit N: the best N only; --json prints the response.
  job     <job_id>
  batch   <batch_id> [--wait] [--timeout SECONDS]
          Job counts of one ingest request (by status) and its failed jobs; --wait follows it
          until every job has finished (exit 1 if any failed).
  delete  --asset ID | --point POINT_ID

Global options:
  --url URL      API base URL (default $HEIMDEX_URL or ${DEFAULT_URL})
  --token JWT    bearer token (default $HEIMDEX_TOKEN)
  --json         machine-readable output on stdout
  --quiet, -q    no progress output on stderr
`;

/** A decimal number in [min, max] (no exponents, hex or Infinity). */
function decimal(name: string, raw: string | undefined, min: number, max: number) {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d*\.?\d+$|^\d+\.$/.test(raw.trim()) || n < min || n > max) {
    throw new CliError(`--${name} must be a number from ${min} to ${max} (got "${raw}")`);
  }
  return n;
}

function searchMode(raw: string | undefined): SearchMode | undefined {
  if (raw === undefined) return undefined;
  const mode = SEARCH_MODES.find((m) => m === raw.trim().toLowerCase());
  if (mode === undefined) {
    throw new CliError(`--mode must be one of ${SEARCH_MODES.join(', ')} (got "${raw}")`);
  }
  return mode;
}

function fusionMethod(value: string | undefined): FusionMethod | undefined {
  if (value === undefined) return undefined;
  const method = value.toLowerCase();
  if (!(FUSION_METHODS as readonly string[]).includes(method)) {
    throw new CliError(
      `--fusion-method must be one of ${FUSION_METHODS.join(', ')} (got ${JSON.stringify(value)})`,
    );
  }
  return method as FusionMethod;
}

function groupBy(raw: string | undefined): GroupBy | undefined {
  if (raw === undefined) return undefined;
  const value = GROUP_BY.find((g) => g === raw.trim().toLowerCase());
  if (value === undefined) {
    throw new CliError(`--group-by must be one of ${GROUP_BY.join(', ')} (got "${raw}")`);
  }
  return value;
}

/** `--chunking truncate` or `--chunking MAX[:OVERLAP]` (model tokens), checked as the API would. */
export function chunkingOption(raw: string | undefined): Chunking | undefined {
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (value === 'truncate') return 'truncate';
  const m = /^(\d+)(?::(\d+))?$/.exec(value);
  const usage = `--chunking must be truncate or MAX[:OVERLAP] in model tokens, e.g. 256:32 (got "${raw}")`;
  if (!m) throw new CliError(usage);
  const max = Number(m[1]);
  if (max < MIN_CHUNK_TOKENS || max > MAX_CHUNK_TOKENS) {
    throw new CliError(
      `--chunking: MAX must be from ${MIN_CHUNK_TOKENS} to ${MAX_CHUNK_TOKENS} tokens (got "${raw}")`,
    );
  }
  if (m[2] === undefined) return { max_tokens: max };
  const overlap = Number(m[2]);
  if (overlap >= max) {
    throw new CliError(`--chunking: OVERLAP must be less than MAX (got "${raw}")`);
  }
  return { max_tokens: max, overlap_tokens: overlap };
}

function int(name: string, raw: string | undefined, def: number, min: number, max: number) {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(`--${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  }
  return n;
}

export function parseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(`invalid --url "${raw}": expected an http(s) URL such as ${DEFAULT_URL}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`invalid --url "${raw}": only http:// and https:// URLs are supported`);
  }
  if (url.search || url.hash) {
    throw new CliError(`invalid --url "${raw}": give the API's base URL, without ? or #`);
  }
  return url;
}

export function parseCli(argv: string[], env: NodeJS.ProcessEnv): Parsed {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const unknown = /^Unknown option '([^']+)'/.exec(msg);
    const missing = /^Option '([^']+?)(?: <value>)?' argument missing/.exec(msg);
    const ambiguous = /^Option '([^']+)' argument is ambiguous/.exec(msg);
    const short = unknown
      ? `unknown option ${unknown[1]}`
      : missing
        ? `option ${missing[1]!.replace(/^-\w, /, '')} needs a value`
        : ambiguous
          ? `option ${ambiguous[1]!.replace(/^-\w, /, '')} needs a value (write ${ambiguous[1]!.replace(/^-\w, /, '')}=VALUE for one that starts with -)`
          : msg.split(/\.\s/)[0]!;
    throw new CliError(`${short} (see heimdex --help)`);
  }
  const { values: v, positionals } = parsed;
  const [name, ...args] = positionals;

  const globals: Globals = {
    url: v.url ?? (env.HEIMDEX_URL || DEFAULT_URL),
    token: v.token ?? (env.HEIMDEX_TOKEN || undefined),
    json: v.json ?? false,
    quiet: v.quiet ?? false,
  };
  if (v.version) return { globals, command: { name: 'version' } };
  if (v.help || name === undefined || name === 'help') {
    return { globals, command: { name: 'help', topic: name === 'help' ? args[0] : name } };
  }
  if (!Object.hasOwn(COMMANDS, name)) {
    throw new CliError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
  }
  const allowed = new Set<string>([...GLOBAL, ...COMMANDS[name as keyof typeof COMMANDS]]);
  for (const key of Object.keys(v)) {
    if (!allowed.has(key)) throw new CliError(`${name} does not take --${key}`);
  }
  const positional = (count: number, what: string) => {
    if (args.length !== count) {
      throw new CliError(
        count === 0
          ? `${name} takes no arguments (got ${args.length})`
          : `${name} needs ${what} (got ${args.length} argument${args.length === 1 ? '' : 's'})`,
      );
    }
  };

  switch (name) {
    case 'token': {
      positional(0, '');
      return {
        globals,
        command: {
          name,
          org: v.org ?? 'acme',
          subject: v.sub ?? 'dev-user',
          ttlSeconds: int('ttl', v.ttl, 3600, 1, 31 * 86_400),
          ...(v.secret !== undefined ? { secret: v.secret } : {}),
        },
      };
    }
    case 'ingest': {
      if (args.length === 0) throw new CliError('ingest needs at least one file or folder');
      return {
        globals,
        command: {
          name,
          paths: args,
          ...(v.asset !== undefined ? { asset: v.asset } : {}),
          batchSize: int('batch-size', v['batch-size'], 64, 1, MAX_BATCH_SEGMENTS),
          concurrency: int('concurrency', v.concurrency, 2, 1, 16),
          wait: !v['no-wait'],
          timeoutSeconds: int('timeout', v.timeout, 600, 1, 86_400),
          retries: int('retries', v.retries, 6, 0, 20),
          ...(v.chunking !== undefined ? { chunking: chunkingOption(v.chunking)! } : {}),
        },
      };
    }
    case 'search': {
      positional(1, 'one query (quote it)');
      if (!args[0]!.trim()) throw new CliError('search needs a non-empty query');
      const mode = searchMode(v.mode);
      const group = groupBy(v['group-by']);
      const method = fusionMethod(v['fusion-method']);
      const k =
        v['fusion-k'] === undefined ? undefined : int('fusion-k', v['fusion-k'], 0, 1, 1000);
      const weight = decimal('fusion-weight', v['fusion-weight'], 0, 1);
      const fusion = {
        ...(method !== undefined ? { method } : {}),
        ...(k !== undefined ? { k } : {}),
        ...(weight !== undefined ? { weight } : {}),
      };
      const fused = Object.keys(fusion).length > 0;
      if (k !== undefined && (method ?? DEFAULT_FUSION.method) !== 'rrf') {
        throw new CliError(
          `--fusion-k is reciprocal rank fusion's: add --fusion-method rrf (the default method is ${DEFAULT_FUSION.method})`,
        );
      }
      if (fused && (mode ?? DEFAULT_SEARCH_MODE) !== 'hybrid') {
        const given =
          method !== undefined
            ? '--fusion-method'
            : k !== undefined
              ? '--fusion-k'
              : '--fusion-weight';
        const used =
          mode === undefined ? `the default mode, ${DEFAULT_SEARCH_MODE}` : `--mode ${mode}`;
        throw new CliError(`${given} applies to --mode hybrid only (got ${used})`);
      }
      return {
        globals,
        command: {
          name,
          query: args[0]!,
          limit: int('limit', v.limit, 10, 1, 100),
          ...(v.asset !== undefined ? { asset: v.asset } : {}),
          ...(v.segment !== undefined ? { segment: v.segment } : {}),
          ...(mode !== undefined ? { mode } : {}),
          ...(fused ? { fusion } : {}),
          ...(v.explain ? { explain: true as const } : {}),
          ...(group !== undefined ? { groupBy: group } : {}),
        },
      };
    }
    case 'embed': {
      if (args.length === 0) throw new CliError('embed needs at least one text (quote each)');
      if (args.length > MAX_EMBEDDING_INPUTS) {
        throw new CliError(
          `embed takes at most ${MAX_EMBEDDING_INPUTS} texts (got ${args.length})`,
        );
      }
      const blank = args.findIndex((t) => !t.trim());
      if (blank >= 0)
        throw new CliError(`embed needs non-empty texts (text ${blank + 1} is blank)`);
      const model = (v.model ?? (env.HEIMDEX_MODEL || DEFAULT_EMBED_MODEL)).trim();
      if (!model) throw new CliError('--model needs a model name');
      return { globals, command: { name, texts: args, model } };
    }
    case 'rerank': {
      const query = v.query?.trim() ? v.query : undefined;
      if (query === undefined) throw new CliError('rerank needs --query "<query>"');
      if (args.length === 0) throw new CliError('rerank needs at least one document (quote each)');
      if (args.length > MAX_RERANK_DOCUMENTS) {
        throw new CliError(
          `rerank takes at most ${MAX_RERANK_DOCUMENTS} documents (got ${args.length})`,
        );
      }
      const blank = args.findIndex((t) => !t.trim());
      if (blank >= 0) {
        throw new CliError(`rerank needs non-empty documents (document ${blank + 1} is blank)`);
      }
      return {
        globals,
        command: {
          name,
          query,
          documents: args,
          ...(v.limit !== undefined
            ? { limit: int('limit', v.limit, 0, 1, MAX_RERANK_DOCUMENTS) }
            : {}),
          ...(v.model?.trim() ? { model: v.model.trim() } : {}),
        },
      };
    }
    case 'job': {
      positional(1, 'a job id');
      return { globals, command: { name, jobId: args[0]! } };
    }
    case 'batch': {
      positional(1, 'a batch id');
      return {
        globals,
        command: {
          name,
          batchId: args[0]!,
          wait: v.wait ?? false,
          timeoutSeconds: int('timeout', v.timeout, 600, 1, 86_400),
        },
      };
    }
    case 'delete': {
      positional(0, '');
      if ((v.asset === undefined) === (v.point === undefined)) {
        throw new CliError('delete needs exactly one of --asset ID or --point POINT_ID');
      }
      return {
        globals,
        command: {
          name,
          ...(v.asset !== undefined ? { asset: v.asset } : {}),
          ...(v.point !== undefined ? { point: v.point } : {}),
        },
      };
    }
    default:
      throw new CliError(`unknown command "${name}"`);
  }
}
