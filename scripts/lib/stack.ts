/**
 * The whole local system, as `npm run dev` and the end-to-end tests run it: embedded PostgreSQL
 * (migrated), the WebSocket→TCP proxy for the Neon driver, the embedder, and `wrangler dev` with
 * the local Queue, plus a timer that fires the Worker's cron. DATABASE_URL and EMBEDDER_URL switch
 * a part to an external one; QDRANT_URL and EMBEDDING_MODEL_DIR pass through to the embedder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runMigrations } from '../../db/migrate.js';
import type { FaultFile } from '../../embedder/src/core/faults.js';
import { REPO_ROOT } from './paths.js';
import { startLocalPostgres } from './postgres.js';
import { freePort, startProcess, waitForHttp } from './procs.js';
import type { ManagedProcess } from './procs.js';
import { loadDevSecrets } from './secrets.js';
import { startWsProxy } from './wsproxy.js';
import type { WsProxy } from './wsproxy.js';

export { REPO_ROOT };

export interface StackOptions {
  /** Where Postgres data, vectors, queue state, secrets and logs live. */
  dataDir: string;
  /** Environment to read settings from (defaults to process.env). */
  env?: NodeJS.ProcessEnv;
  apiPort?: number;
  embedderPort?: number;
  pgPort?: number;
  /** Extra Worker variables (tests use these for short sweep ages or fault injection). */
  workerVars?: Record<string, string>;
  /** Extra embedder environment. */
  embedderEnv?: Record<string, string>;
  /** How often to fire the Worker's cron (the outbox sweep); 0 disables. Default 60 s. */
  cronIntervalMs?: number;
  onLine?: (source: string, line: string) => void;
  /** Progress messages (dev prints them). */
  onStatus?: (msg: string) => void;
  /**
   * A wrangler config to run instead of the repo's wrangler.toml (the reliability tests use a copy
   * with fewer queue retries). Its `main` must be the Worker entry point (worker/src/index.ts or a
   * copy of the sources).
   */
  wranglerConfig?: string;
  /**
   * Run the embedder with fault injection: EMBEDDER_FAULTS_FILE points at `<dataDir>/embedder-faults.json`,
   * which `Stack.setEmbedderFaults` rewrites. Off by default; never for production.
   */
  embedderFaults?: boolean;
  /** When the Worker counts as started (default: /healthz answers 2xx). */
  workerReady?: (res: Response) => boolean;
}

/** The embedder's fault-injection switches: the contents of EMBEDDER_FAULTS_FILE. */
export type EmbedderFaults = FaultFile;

export interface Stack {
  apiUrl: string;
  embedderUrl: string;
  databaseUrl: string;
  devJwtSecret: string;
  /** The key (base64) the Worker encrypts queued texts with. */
  textEncryptionKey: string;
  embedderToken: string;
  /** The embedder's KEYWORD_INDEX_KEY (keys the keyword index's term ids). */
  keywordIndexKey: string;
  logs: { embedder?: string; worker: string };
  /** Folder holding every process log of this stack (embedder, worker, postgres). */
  logDir: string;
  /** The embedded vector store's folder (LanceDB), when the embedder is local. */
  vectorDataDir: string | undefined;
  /** The process id of the local embedder while it runs. */
  embedderPid(): number | undefined;
  /** Rewrites the embedder's fault file (needs `embedderFaults: true`). */
  setEmbedderFaults(faults: EmbedderFaults): void;
  /** Fires the Worker's scheduled handler once (as the cron would). */
  triggerCron(): Promise<void>;
  stopEmbedder(): Promise<void>;
  startEmbedder(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the parts in order (each one's address is the next one's setting) and returns the
 * running stack; when a part fails, the parts already started are stopped again.
 */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const run = prepareRun(opts);
  try {
    const database = await startDatabase(run);
    const databaseUrl = database.url;
    const proxy = await startNeonProxy(run, database.local);
    const embedder = await startStackEmbedder(run);
    const worker = await startWorker(run, { databaseUrl, embedderUrl: embedder.url, proxy });
    const triggerCron = scheduleCron(run, worker.apiUrl);
    return {
      apiUrl: worker.apiUrl,
      embedderUrl: embedder.url,
      databaseUrl,
      devJwtSecret: run.secrets.devJwtSecret,
      textEncryptionKey: run.secrets.textEncryptionKey,
      embedderToken: run.secrets.embedderToken,
      keywordIndexKey: run.secrets.keywordIndexKey,
      logs: { embedder: embedder.logFile, worker: worker.logFile },
      logDir: run.logDir,
      vectorDataDir: embedder.vectorDataDir,
      embedderPid: embedder.pid,
      setEmbedderFaults: embedder.setFaults,
      triggerCron,
      stopEmbedder: embedder.stop,
      startEmbedder: embedder.start,
      stop: run.stopAll,
    };
  } catch (err) {
    await run.stopAll();
    throw err;
  }
}

/** What every part of one stack start shares: settings, folders, secrets, and the cleanups. */
interface StackRun {
  opts: StackOptions;
  env: NodeJS.ProcessEnv;
  dataDir: string;
  logDir: string;
  secrets: ReturnType<typeof loadDevSecrets>;
  status: (msg: string) => void;
  /** Registers how to stop a part; `stopAll` runs them in reverse order. */
  onStop(fn: () => Promise<void>): void;
  stopAll(): Promise<void>;
}

function prepareRun(opts: StackOptions): StackRun {
  const env = opts.env ?? process.env;
  const dataDir = path.resolve(opts.dataDir);
  const logDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const cleanups: Array<() => Promise<void>> = [];
  return {
    opts,
    env,
    dataDir,
    logDir,
    secrets: loadDevSecrets(dataDir, env),
    status: opts.onStatus ?? (() => undefined),
    onStop: (fn) => void cleanups.push(fn),
    stopAll: async () => {
      for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
      cleanups.length = 0;
    },
  };
}

/** 1. PostgreSQL: external (DATABASE_URL) or embedded, then migrations. */
async function startDatabase(run: StackRun): Promise<{ url: string; local: boolean }> {
  let databaseUrl = run.env.DATABASE_URL;
  const local = !databaseUrl;
  if (!databaseUrl) {
    const pgPort = run.opts.pgPort ?? (await freePort());
    run.status(`starting embedded PostgreSQL on port ${pgPort}`);
    const pgLog = fs.createWriteStream(path.join(run.logDir, 'postgres.log'), { flags: 'a' });
    run.onStop(() => new Promise<void>((resolve) => pgLog.end(() => resolve())));
    const pg = await startLocalPostgres({
      dataDir: path.join(run.dataDir, 'pg'),
      port: pgPort,
      log: (line) => {
        if (pgLog.writable) pgLog.write(line + '\n');
      },
    });
    run.onStop(() => pg.stop());
    databaseUrl = pg.url;
  }
  run.status('applying database migrations');
  await runMigrations(databaseUrl);
  return { url: databaseUrl, local };
}

/** 2. The Neon driver speaks WebSocket: locally (embedded Postgres) it goes through our proxy. */
async function startNeonProxy(run: StackRun, localPostgres: boolean): Promise<WsProxy | undefined> {
  if (!localPostgres && run.env.NEON_WS_PROXY !== 'local') return undefined;
  const proxy = await startWsProxy();
  run.onStop(() => proxy.close());
  return proxy;
}

/** The stack's embedder: its URL, and the handles on the local process (none when external). */
interface StackEmbedder {
  url: string;
  logFile: string | undefined;
  vectorDataDir: string | undefined;
  pid(): number | undefined;
  setFaults(faults: EmbedderFaults): void;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** 3. The embedder: external (EMBEDDER_URL) or a local process, started and ready. */
async function startStackEmbedder(run: StackRun): Promise<StackEmbedder> {
  const { opts, env } = run;
  const external = env.EMBEDDER_URL?.replace(/\/+$/, '');
  const port = opts.embedderPort ?? (await freePort());
  const url = external || `http://127.0.0.1:${port}`;
  const logFile = path.join(run.logDir, 'embedder.log');
  const vectorDataDir = env.VECTOR_DATA_DIR ?? path.join(run.dataDir, 'vectors');
  const faultsFile = path.join(run.dataDir, 'embedder-faults.json');
  let proc: ManagedProcess | undefined;
  const running = () =>
    proc !== undefined && proc.child.exitCode === null && proc.child.signalCode === null;
  const setFaults = (faults: EmbedderFaults) => {
    if (!opts.embedderFaults) throw new Error('start the stack with embedderFaults: true');
    // Write then rename, so the embedder never reads a half-written file.
    fs.writeFileSync(faultsFile + '.tmp', JSON.stringify(faults) + '\n');
    fs.renameSync(faultsFile + '.tmp', faultsFile);
  };
  if (opts.embedderFaults) setFaults({});
  const launch = async () => {
    run.status('starting the embedder (loading the model)');
    proc = spawnEmbedder({
      env,
      port,
      token: run.secrets.embedderToken,
      keywordIndexKey: run.secrets.keywordIndexKey,
      vectorDataDir,
      logFile,
      extraEnv: {
        ...(opts.embedderFaults ? { EMBEDDER_FAULTS_FILE: faultsFile } : {}),
        ...opts.embedderEnv,
      },
      onLine: (l) => opts.onLine?.('embedder', l),
    });
    await waitForHttp(`${url}/readyz`, proc, 180_000);
  };
  if (!external) {
    await launch();
    run.onStop(() => proc?.stop() ?? Promise.resolve());
  }
  return {
    url,
    logFile: proc ? logFile : undefined,
    vectorDataDir: proc ? vectorDataDir : undefined,
    pid: () => (running() ? proc?.child.pid : undefined),
    setFaults,
    stop: async () => {
      await proc?.stop();
    },
    start: async () => {
      if (!running()) await launch();
    },
  };
}

/** 4. The Worker under wrangler dev, with the local Queue; resolves once it answers. */
async function startWorker(
  run: StackRun,
  parts: { databaseUrl: string; embedderUrl: string; proxy: WsProxy | undefined },
): Promise<{ apiUrl: string; logFile: string }> {
  const { opts } = run;
  const apiPort = opts.apiPort ?? (await freePort());
  const varsFile = path.join(run.dataDir, 'worker.env');
  fs.writeFileSync(
    varsFile,
    Object.entries(workerVars(run, parts))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  run.status(`starting the Worker (wrangler dev) on port ${apiPort}`);
  const logFile = path.join(run.logDir, 'worker.log');
  const wrangler = startProcess({
    name: 'wrangler',
    command: process.execPath,
    args: [
      path.join(REPO_ROOT, 'node_modules/wrangler/bin/wrangler.js'),
      'dev',
      ...(opts.wranglerConfig ? ['--config', path.resolve(opts.wranglerConfig)] : []),
      '--local',
      '--ip',
      '127.0.0.1',
      '--port',
      String(apiPort),
      '--test-scheduled',
      '--env-file',
      varsFile,
      '--persist-to',
      path.join(run.dataDir, 'wrangler'),
      '--show-interactive-dev-session=false',
      '--log-level',
      'log',
    ],
    cwd: REPO_ROOT,
    env: {
      ...run.env,
      WRANGLER_SEND_METRICS: 'false',
      CI: 'true',
      NO_COLOR: '1',
      // Miniflare fetches a real `Request.cf` from workers.cloudflare.com at every start and
      // prints a stack trace when offline; the Worker reads nothing from request.cf.
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      // No dev registry (it links wrangler dev sessions on this machine, for cross-session
      // service bindings and queues): this stack's Worker is its own producer and consumer, and
      // another stack's Worker named "heimdex" must not be linked to it. Without it, wrangler
      // also prints the bindings table once, not again when the registry sees this Worker.
      WRANGLER_REGISTRY_PATH: '',
    },
    logFile,
    onLine: (l) => opts.onLine?.('worker', l),
  });
  run.onStop(() => wrangler.stop());
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  await waitForHttp(`${apiUrl}/healthz`, wrangler, 120_000, opts.workerReady);
  return { apiUrl, logFile };
}

/** The Worker's variables: the stack's addresses and secrets, the passed-through settings. */
function workerVars(
  run: StackRun,
  parts: { databaseUrl: string; embedderUrl: string; proxy: WsProxy | undefined },
): Record<string, string> {
  const { env, secrets } = run;
  const { databaseUrl, embedderUrl, proxy } = parts;
  return {
    ENVIRONMENT: 'development',
    AUTH_PROVIDER: env.AUTH_PROVIDER ?? 'dev',
    DEV_JWT_SECRET: secrets.devJwtSecret,
    TEXT_ENCRYPTION_KEY: secrets.textEncryptionKey,
    DATABASE_URL: databaseUrl,
    EMBEDDER_URL: embedderUrl,
    EMBEDDER_TOKEN: secrets.embedderToken,
    EMBEDDING_MODEL_NAME: env.EMBEDDING_MODEL_NAME ?? 'minilm-l6-v2',
    EMBEDDING_MODEL_VER: env.EMBEDDING_MODEL_VER ?? '1',
    ...(proxy ? { NEON_WS_PROXY: proxy.address } : {}),
    ...pick(env, [
      'AUTH_JWKS_URL',
      'AUTH_ISSUER',
      'AUTH_AUDIENCE',
      'AUTH_TENANT_CLAIM',
      'MAX_TEXT_CHARS',
      'LOG_LEVEL',
    ]),
    ...run.opts.workerVars,
  };
}

/** 5. Cron: miniflare does not fire scheduled handlers by itself. Returns the manual trigger. */
function scheduleCron(run: StackRun, apiUrl: string): () => Promise<void> {
  const triggerCron = async () => {
    const res = await fetch(`${apiUrl}/__scheduled?cron=*+*+*+*+*`);
    await res.body?.cancel();
  };
  const interval = run.opts.cronIntervalMs ?? 60_000;
  if (interval > 0) {
    const timer = setInterval(() => void triggerCron().catch(() => undefined), interval);
    timer.unref();
    run.onStop(async () => clearInterval(timer));
  }
  return triggerCron;
}

/**
 * Starts one embedder process on 127.0.0.1:`port`, as the stack runs it (the stack waits for its
 * /readyz). Tests start more than one over a shared Qdrant (replicas behind a load balancer).
 */
export function spawnEmbedder(o: {
  env: NodeJS.ProcessEnv;
  port: number;
  token: string;
  /** KEYWORD_INDEX_KEY: keys the keyword index's term ids. */
  keywordIndexKey: string;
  vectorDataDir: string;
  logFile: string;
  extraEnv?: Record<string, string>;
  onLine?: (line: string) => void;
  name?: string;
}): ManagedProcess {
  return startProcess({
    name: o.name ?? 'embedder',
    command: process.execPath,
    args: ['--import', 'tsx', 'embedder/src/main.ts'],
    cwd: REPO_ROOT,
    env: {
      ...o.env,
      EMBEDDER_HOST: '127.0.0.1',
      EMBEDDER_PORT: String(o.port),
      EMBEDDER_TOKEN: o.token,
      KEYWORD_INDEX_KEY: o.keywordIndexKey,
      VECTOR_DATA_DIR: o.vectorDataDir,
      // Every process of the stack shares this machine's cores: onnxruntime's threads must
      // not busy-wait between passes (they would take the Worker's and Postgres's CPU).
      EMBEDDING_CPU_SPINNING: o.env.EMBEDDING_CPU_SPINNING ?? 'false',
      // As the images set it: glibc's default arenas let LanceDB's writes grow RSS.
      MALLOC_ARENA_MAX: o.env.MALLOC_ARENA_MAX ?? '2',
      ...o.extraEnv,
    },
    logFile: o.logFile,
    ...(o.onLine ? { onLine: o.onLine } : {}),
  });
}

function pick(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (env[k]) out[k] = env[k]!;
  return out;
}
