/**
 * The scale section (`--sections scale`): the cost curve of the vector stores from 1,000 to
 * 1,000,000 points in one organisation, and with many organisations in one collection, through
 * the embedder's own store classes (LanceDbStore, QdrantStore), 384 dimensions, vectors and terms
 * from scale-data.ts. Each cell is a fresh table/collection:
 *
 * 1. fill: the points are written in bulk (LanceDB: appended to the store's own table in its own
 *    schema, as LanceDbStore writes rows; Qdrant: QdrantStore.upsert, several batches in flight),
 *    while the bench scores every block against the queries (exact top-k, brute force);
 * 2. the store is opened as the embedder opens it and left to index (LanceDB: the store's own
 *    maintenance builds its ANN index; Qdrant: until the collection is green);
 * 3. dense and hybrid searches, one at a time, timed; recall@10 against the exact top 10 (dense)
 *    and against the exact fusion (hybrid: exact dense ⊕ the store's keyword ranking, which is
 *    exact BM25 in both stores);
 * 4. memory (RSS of the process holding the store), disk per point, and the ingest rate of the
 *    store's own upsert at that size (batches of UPSERT_BATCH new points);
 * 5. tenant isolation from the store's own evidence: LanceDB's analyzePlan of a tenant's query,
 *    Qdrant's collection config and its search telemetry.
 */
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { EXACT_SCOPE_MAX_ROWS, LanceDbStore, toRow } from '../../embedder/src/store/lancedb.js';
import { DEFAULT_FUSION, hybridCandidates } from '../../embedder/src/store/fusion.js';
import { QdrantStore } from '../../embedder/src/store/qdrant.js';
import type { VectorPoint, VectorStore } from '../../embedder/src/store/types.js';
import { loadAverage } from './envelope.js';
import { progress } from './progress.js';
import {
  QUERY_TERMS,
  SCALE_DIM,
  TERMS_PER_POINT,
  generate,
  pointId,
  pointIndex,
} from './scale-data.js';
import type { Generated, ScaleBases } from './scale-data.js';
import { TopK, exactHybrid, mean, recallAt, scanBlock } from './scale-exact.js';
import { round, roundSummary, summarize } from './stats.js';
import type { Summary } from './stats.js';

export type ScaleStore = 'embedded' | 'qdrant';
export const SCALE_STORES: readonly ScaleStore[] = ['embedded', 'qdrant'];

export interface ScaleOptions {
  workDir: string;
  bases: ScaleBases;
  /** Points of the one organisation, per cell. */
  sizes: readonly number[];
  stores: readonly ScaleStore[];
  queries: number;
  /** The many-organisations cell: `orgs` organisations of `orgPoints` points (0: skip it). */
  orgs: number;
  orgPoints: number;
  qdrant: { url: string; apiKey: string | null; pid: number | null; storage: string | null } | null;
  /** Called with the results so far after each cell (the bench writes them as it goes). */
  onCell?: (partial: ScaleResult) => Promise<void>;
}

export type Scenario = 'one org' | 'many orgs';

export interface ScaleCell {
  store: ScaleStore;
  scenario: Scenario;
  /** Points in the collection, and organisations. */
  points: number;
  orgs: number;
  /** Points of the organisation each query searches. */
  orgPoints: number;
  /** What answered the dense searches. */
  index: string;
  dense: Summary;
  hybrid: Summary | null;
  recallDense: number;
  recallHybrid: number | null;
  /** Points per second of the bulk fill (LanceDB: table appends; Qdrant: the store's upsert). */
  fillPointsPerSecond: number;
  /** Seconds from the end of the fill until the store answered from its index. */
  indexSeconds: number;
  /** Seconds the store took to open over the filled table (LanceDB loads its in-memory indexes). */
  openSeconds: number;
  /** The store's own upsert at this size: points per second over UPSERT_BATCHES batches. */
  upsertPointsPerSecond: number;
  /** RSS of the process that holds the store (the bench's for LanceDB; Qdrant's server). */
  rssBytes: number | null;
  /** That RSS minus the same process's before the cell (null where there is no baseline). */
  rssDeltaBytes: number | null;
  diskBytes: number | null;
  /** Tenant isolation: what the store itself reports for one tenant's query. */
  isolation: Isolation | null;
  loadAverage: number[];
}

export interface Isolation {
  /** LanceDB: rows the plan read / compared; Qdrant: search paths the telemetry counted. */
  evidence: Record<string, number | string | boolean>;
  /** Whether the evidence shows no other tenant's point was scanned. */
  scopedToTenant: boolean;
  /** The plan or telemetry excerpt. */
  excerpt: string;
}

const UPSERT_BATCH = 512;
const UPSERT_BATCHES = 6;
const FILL_BLOCK = 20_000;
const WARMUP = 10;
/** QdrantStore.upsert calls in flight during the fill. */
const QDRANT_FILL_CONCURRENCY = 4;
/** How long the bench waits for Qdrant's indexing before it measures the collection as it is. */
const QDRANT_GREEN_TIMEOUT_MS = 12 * 60_000;
const ORG = 'scale-org';
const MODEL = 'bench-model';
const orgName = (o: number) => `scale-org-${o}`;

/**
 * A call to Qdrant, retried (twice) when the connection failed before an answer: the client
 * reuses pooled keep-alive connections, and one the server closed while the bench was computing
 * fails once ("fetch failed"). Upserts are latest-wins and searches read-only: a retry is safe.
 */
async function retried<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= 2 || !String(err).includes('fetch failed')) throw err;
    }
  }
}
const K = 10;
const CANDIDATES = hybridCandidates(K);

interface Workload {
  scenario: Scenario;
  points: number;
  orgs: number;
  orgPoints: number;
  /** Query q searches organisation orgOf(q). */
  orgOf(q: number): number;
  /** The collection's points in blocks: organisation, first index, count. */
  blocks(): Generator<{ org: number; from: number; n: number }>;
}

function oneOrg(size: number): Workload {
  return {
    scenario: 'one org',
    points: size,
    orgs: 1,
    orgPoints: size,
    orgOf: () => 0,
    *blocks() {
      for (let from = 0; from < size; from += FILL_BLOCK) {
        const n = Math.min(FILL_BLOCK, size - from);
        yield { org: 0, from, n };
      }
    },
  };
}

function manyOrgs(orgs: number, orgPoints: number): Workload {
  return {
    scenario: 'many orgs',
    points: orgs * orgPoints,
    orgs,
    orgPoints,
    // Spread over the organisations (7919 is prime, coprime with any org count it does not divide).
    orgOf: (q) => (q * 7919) % orgs,
    *blocks() {
      const perBlock = Math.max(1, Math.floor(FILL_BLOCK / orgPoints));
      for (let o = 0; o < orgs; o += perBlock) {
        for (let k = o; k < Math.min(orgs, o + perBlock); k++) {
          yield { org: k, from: 0, n: orgPoints };
        }
      }
    },
  };
}

/** A workload's points as the store's VectorPoints (payload as the embedder writes it). */
function toPoints(org: number, from: number, data: Generated, stamp: string): VectorPoint[] {
  const orgId = org === -1 ? ORG : orgName(org);
  return data.terms.map((terms, i) => {
    const index = from + i;
    const id = pointId(index, org + 1);
    const textLen = 400 + (index % 900);
    return {
      id,
      vector: data.vectors.subarray(i * SCALE_DIM, (i + 1) * SCALE_DIM),
      terms,
      payload: {
        org_id: orgId,
        asset_id: `asset-${Math.floor(index / 20)}`,
        segment_id: `seg-${index}`,
        modality: 'text',
        model: MODEL,
        model_ver: '1',
        text_len: textLen,
        token_count: Math.round(textLen / 4.5),
        truncated: false,
        truncated_len: textLen,
        job_id: pointId(index, 0xffff),
        seq: index + 1,
        embedded_at: stamp,
        segment_point_id: id,
        chunk_index: 0,
        chunk_count: 1,
        chunk_start: 0,
        chunk_end: textLen,
      },
    };
  });
}

/** Query vectors and terms (held-out bases), and each query's exact top CANDIDATES. */
interface Truth {
  queries: Generated;
  tops: TopK[];
}

/** Generates the workload block by block, calling `write` for each, and scores it exactly. */
async function fill(
  w: Workload,
  bases: ScaleBases,
  queries: Generated,
  write: (points: VectorPoint[]) => Promise<void>,
): Promise<{ tops: TopK[]; seconds: number; writeSeconds: number }> {
  const tops = Array.from({ length: queries.terms.length }, () => new TopK(CANDIDATES));
  const byOrg = new Map<number, number[]>();
  queries.terms.forEach((_, q) => {
    const o = w.orgOf(q);
    byOrg.set(o, [...(byOrg.get(o) ?? []), q]);
  });
  const stamp = new Date().toISOString();
  let writeSeconds = 0;
  const t0 = performance.now();
  let done = 0;
  let nextReport = 0;
  for (const block of w.blocks()) {
    const stream = w.scenario === 'one org' ? 1 : 100 + block.org;
    const data = generate(bases.corpus, block.from, block.n, stream, TERMS_PER_POINT);
    const qs = byOrg.get(block.org) ?? [];
    if (qs.length > 0) {
      const qv = new Float32Array(qs.length * SCALE_DIM);
      qs.forEach((q, k) =>
        qv.set(queries.vectors.subarray(q * SCALE_DIM, (q + 1) * SCALE_DIM), k * SCALE_DIM),
      );
      scanBlock(
        qv,
        qs.map((q) => tops[q] as TopK),
        data.vectors,
        block.n,
        SCALE_DIM,
        block.from,
      );
    }
    const w0 = performance.now();
    await write(toPoints(w.scenario === 'one org' ? -1 : block.org, block.from, data, stamp));
    writeSeconds += (performance.now() - w0) / 1000;
    done += block.n;
    if (done >= nextReport) {
      progress(`    ${done.toLocaleString('en')} / ${w.points.toLocaleString('en')} points`);
      nextReport += Math.max(FILL_BLOCK, Math.floor(w.points / 10));
    }
  }
  return { tops, seconds: (performance.now() - t0) / 1000, writeSeconds };
}

function queriesFor(bases: ScaleBases, n: number): Generated {
  return generate(bases.heldOut, 0, n, 7, QUERY_TERMS);
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirBytes(p);
    else if (entry.isFile()) total += statSync(p).size;
  }
  return total;
}

function procRss(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Times WARMUP + n searches of each mode and computes recall against the exact rankings. */
async function measureSearch(
  store: VectorStore,
  w: Workload,
  truth: Truth,
): Promise<Pick<ScaleCell, 'dense' | 'hybrid' | 'recallDense' | 'recallHybrid'>> {
  const n = truth.tops.length;
  const orgId = (q: number) => (w.scenario === 'one org' ? ORG : orgName(w.orgOf(q)));
  const params = (q: number) => ({
    orgId: orgId(q),
    model: MODEL,
    modelVer: '1',
    vector: truth.queries.vectors.subarray(q * SCALE_DIM, (q + 1) * SCALE_DIM),
    terms: truth.queries.terms[q],
  });
  const ids = (hits: { id: string }[]) => hits.map((h) => pointIndex(h.id));
  const denseTimes: number[] = [];
  const denseRecall: number[] = [];
  for (let i = 0; i < WARMUP + n; i++) {
    const q = i % n;
    const t0 = performance.now();
    const hits = await retried(() => store.search({ ...params(q), mode: 'dense', limit: K }));
    const ms = performance.now() - t0;
    if (i < WARMUP) continue;
    denseTimes.push(ms);
    denseRecall.push(recallAt((truth.tops[q] as TopK).top(K), ids(hits), K));
  }
  if (!store.keywordIndex) {
    return {
      dense: roundSummary(summarize(denseTimes)),
      hybrid: null,
      recallDense: round(mean(denseRecall)),
      recallHybrid: null,
    };
  }
  const hybridTimes: number[] = [];
  const hybridRecall: number[] = [];
  for (let i = 0; i < WARMUP + n; i++) {
    const q = i % n;
    const t0 = performance.now();
    const hits = await retried(() => store.search({ ...params(q), mode: 'hybrid', limit: K }));
    const ms = performance.now() - t0;
    if (i < WARMUP) continue;
    hybridTimes.push(ms);
    const keyword = await retried(() =>
      store.search({ ...params(q), mode: 'keyword', limit: CANDIDATES }),
    );
    const exact = exactHybrid(
      (truth.tops[q] as TopK).entries(),
      keyword.map((h) => ({ index: pointIndex(h.id), score: h.score })),
      DEFAULT_FUSION,
      K,
    );
    hybridRecall.push(recallAt(exact, ids(hits), K));
  }
  return {
    dense: roundSummary(summarize(denseTimes)),
    hybrid: roundSummary(summarize(hybridTimes)),
    recallDense: round(mean(denseRecall)),
    recallHybrid: round(mean(hybridRecall)),
  };
}

/** The store's own upsert at this size: UPSERT_BATCHES batches of new points, one at a time. */
async function upsertRate(store: VectorStore, w: Workload, bases: ScaleBases): Promise<number> {
  const stamp = new Date().toISOString();
  let points = 0;
  const t0 = performance.now();
  for (let b = 0; b < UPSERT_BATCHES; b++) {
    const from = w.orgPoints + 1_000_000_000 + b * UPSERT_BATCH;
    const data = generate(bases.corpus, from, UPSERT_BATCH, 3, TERMS_PER_POINT);
    const org = w.scenario === 'one org' ? -1 : w.orgOf(b);
    const batch = toPoints(org, from, data, stamp);
    const applied = await retried(() => store.upsert(batch));
    if (applied.some((a) => !a)) throw new Error(`${store.kind}: an upsert was not applied`);
    points += UPSERT_BATCH;
  }
  return round(points / ((performance.now() - t0) / 1000));
}

// ---------------------------------------------------------------- LanceDB (the embedded store)

async function lancedbCell(w: Workload, o: ScaleOptions, queries: Generated): Promise<ScaleCell> {
  const dir = path.join(o.workDir, `scale-lancedb-${w.scenario.replace(' ', '-')}-${w.points}`);
  rmSync(dir, { recursive: true, force: true });
  const rss0 = process.memoryUsage().rss;
  // The table as the store creates it; then appended to in the store's own row shape.
  const creator = new LanceDbStore({ dataDir: dir });
  await creator.init(SCALE_DIM);
  await creator.close();
  const db = await lancedb.connect(dir);
  const table = await db.openTable('points');
  const schema = await table.schema();
  progress(`  embedded, ${w.scenario}: ${w.points.toLocaleString('en')} points`);
  const filled = await fill(w, o.bases, queries, async (points) => {
    await table.add(lancedb.makeArrowTable(points.map(toRow), { schema }));
  });
  table.close();
  db.close();
  const fillPointsPerSecond = round(w.points / filled.writeSeconds);
  const o0 = performance.now();
  const store = new LanceDbStore({ dataDir: dir });
  await store.init(SCALE_DIM);
  const openSeconds = (performance.now() - o0) / 1000;
  try {
    // One write (a point rewritten with its own seq: the table's content does not change) starts
    // the store's maintenance, which builds the ANN index once the table is large enough.
    const first = toPoints(
      w.scenario === 'one org' ? -1 : 0,
      0,
      generate(o.bases.corpus, 0, 1, w.scenario === 'one org' ? 1 : 100, TERMS_PER_POINT),
      new Date().toISOString(),
    );
    await store.upsert(first);
    const i0 = performance.now();
    await store.idle();
    const indexSeconds = (performance.now() - i0) / 1000;
    const ann = await store.hasAnnIndex();
    // Scopes up to EXACT_SCOPE_MAX_ROWS are scanned exactly even with the ANN index built.
    const index = store.servesFromMemory
      ? 'in-memory exact scan'
      : !ann
        ? 'LanceDB flat scan'
        : w.orgPoints <= EXACT_SCOPE_MAX_ROWS
          ? "LanceDB exact scan of the tenant's rows (IVF_HNSW_SQ built)"
          : 'LanceDB IVF_HNSW_SQ';
    progress(
      `    filled in ${filled.seconds.toFixed(0)} s, opened in ${openSeconds.toFixed(1)} s, indexed in ${indexSeconds.toFixed(0)} s (${index})`,
    );
    const search = await measureSearch(store, w, { queries, tops: filled.tops });
    const rss = process.memoryUsage().rss;
    const isolation = await lancedbIsolation(store, w, queries);
    const upsertPointsPerSecond = await upsertRate(store, w, o.bases);
    const cell: ScaleCell = {
      store: 'embedded',
      scenario: w.scenario,
      points: w.points,
      orgs: w.orgs,
      orgPoints: w.orgPoints,
      index,
      ...search,
      fillPointsPerSecond,
      indexSeconds: round(indexSeconds),
      openSeconds: round(openSeconds),
      upsertPointsPerSecond,
      rssBytes: rss,
      rssDeltaBytes: rss - rss0,
      diskBytes: dirBytes(dir),
      isolation,
      loadAverage: loadAverage(),
    };
    report(cell);
    return cell;
  } finally {
    await store.close();
    // HEIMDEX_SCALE_KEEP=1 keeps the table (e.g. to sweep search parameters on it afterwards).
    if (process.env.HEIMDEX_SCALE_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * LanceDB's own account of one tenant's dense query, run exactly as the store runs it
 * (LanceDbStore.explainDenseSearch: its prefilter, and the ANN index or, for a small scope, the
 * exact scan): analyzePlan's per-operator counts. The query is scoped to the tenant when no
 * operator read (LanceRead rows_scanned), compared in the ANN index (ANNSubIndex
 * index_comparisons) or scored (KNNVectorDistance output_rows) more rows than the tenant holds.
 * While the in-memory index serves, a query scans its own (org, model, version) partition.
 */
async function lancedbIsolation(
  store: LanceDbStore,
  w: Workload,
  queries: Generated,
): Promise<Isolation> {
  const plan = await store.explainDenseSearch({
    orgId: w.scenario === 'one org' ? ORG : orgName(w.orgOf(0)),
    model: MODEL,
    modelVer: '1',
    vector: queries.vectors.subarray(0, SCALE_DIM),
    limit: K,
  });
  if (plan === null) {
    return {
      evidence: { servedBy: 'in-memory index partition of the tenant', tenantPoints: w.orgPoints },
      scopedToTenant: true,
      excerpt: 'in-memory index (memory-index.ts): partitioned by organisation, model and version',
    };
  }
  const c = planCounts(plan);
  const evidence: Record<string, number> = {
    rowsRead: c['LanceRead.rows_scanned'] ?? 0,
    annCodesCompared: c['ANNSubIndex.index_comparisons'] ?? 0,
    vectorsScored: c['KNNVectorDistance.output_rows'] ?? 0,
  };
  return {
    evidence: { ...evidence, tenantPoints: w.orgPoints, tablePoints: w.points },
    scopedToTenant: Object.values(evidence).every((n) => n <= w.orgPoints),
    excerpt: plan.trim().slice(0, 6000),
  };
}

/**
 * Per-operator counts from a DataFusion analyzePlan text: for each operator line
 * (`  LanceRead: …, metrics=[output_rows=1.00 K, rows_scanned=1.00 K, …]`), every metric that
 * counts rows or comparisons, as `Operator.metric` → the largest value (K/M suffixes expanded).
 */
export function planCounts(plan: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of plan.split('\n')) {
    const op = /^\s*([A-Za-z]+)[:,]/.exec(line)?.[1];
    const metrics = /metrics=\[([^\]]*)\]/.exec(line)?.[1];
    if (!op || !metrics) continue;
    for (const m of metrics.matchAll(
      /\b([a-z_]*(?:rows|comparisons|scanned)[a-z_]*)=([\d.]+)(?:\s?([KMB]))?(?=[,\]]|$)/g,
    )) {
      const scale = { K: 1e3, M: 1e6, B: 1e9 }[m[3] ?? ''] ?? 1;
      const key = `${op}.${m[1] as string}`;
      out[key] = Math.max(out[key] ?? 0, Math.round(Number(m[2]) * scale));
    }
  }
  return out;
}

// ---------------------------------------------------------------- Qdrant

interface QdrantTelemetrySearches {
  [path: string]: number;
}

async function qdrantCell(
  w: Workload,
  o: ScaleOptions,
  queries: Generated,
  q: NonNullable<ScaleOptions['qdrant']>,
): Promise<ScaleCell> {
  const collection = `heimdex_scale_${w.scenario.replace(' ', '_')}_${w.points}_${Date.now().toString(36)}`;
  const base = q.url.replace(/\/+$/, '');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    ...(q.apiKey ? { 'api-key': q.apiKey } : {}),
  };
  const api = async (p: string, init: RequestInit = {}) => {
    const res = await fetch(`${base}${p}`, { ...init, headers });
    if (!res.ok) throw new Error(`Qdrant ${p}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as { result: unknown };
  };
  const rss0 = q.pid === null ? null : procRss(q.pid);
  const store = new QdrantStore({ url: q.url, apiKey: q.apiKey, collection, timeoutMs: 300_000 });
  await store.init(SCALE_DIM);
  progress(`  qdrant, ${w.scenario}: ${w.points.toLocaleString('en')} points (${collection})`);
  try {
    const inFlight = new Set<Promise<void>>();
    const filled = await fill(w, o.bases, queries, async (points) => {
      for (let i = 0; i < points.length; i += UPSERT_BATCH) {
        const batch = points.slice(i, i + UPSERT_BATCH);
        const p = retried(() => store.upsert(batch)).then((applied) => {
          if (applied.some((a) => !a)) throw new Error('qdrant: a fill upsert was not applied');
        });
        const tracked = p.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
        if (inFlight.size >= QDRANT_FILL_CONCURRENCY) await Promise.race(inFlight);
      }
    });
    const d0 = performance.now();
    await Promise.all(inFlight);
    const fillPointsPerSecond = round(
      w.points / (filled.writeSeconds + (performance.now() - d0) / 1000),
    );
    const i0 = performance.now();
    let green = false;
    while (performance.now() - i0 < QDRANT_GREEN_TIMEOUT_MS) {
      const info = (await api(`/collections/${collection}`)).result as { status?: string };
      if (info.status === 'green') {
        green = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    const indexSeconds = (performance.now() - i0) / 1000;
    const info = (await api(`/collections/${collection}`)).result as QdrantInfo;
    const indexed = info.indexed_vectors_count ?? 0;
    const index = green
      ? `Qdrant HNSW (m ${info.config.hnsw_config.m}, payload_m ${info.config.hnsw_config.payload_m}; ${indexed.toLocaleString('en')} vectors indexed)`
      : 'Qdrant, still indexing';
    progress(
      `    filled in ${filled.seconds.toFixed(0)} s, indexed in ${indexSeconds.toFixed(0)} s (${index})`,
    );
    const before = await qdrantSearchTelemetry(api, collection);
    const search = await measureSearch(store, w, { queries, tops: filled.tops });
    const after = await qdrantSearchTelemetry(api, collection);
    const rss = q.pid === null ? null : procRss(q.pid);
    const isolation = qdrantIsolation(info, before, after, w);
    const upsertPointsPerSecond = await upsertRate(store, w, o.bases);
    const cell: ScaleCell = {
      store: 'qdrant',
      scenario: w.scenario,
      points: w.points,
      orgs: w.orgs,
      orgPoints: w.orgPoints,
      index,
      ...search,
      fillPointsPerSecond,
      indexSeconds: round(indexSeconds),
      openSeconds: 0,
      upsertPointsPerSecond,
      rssBytes: rss,
      rssDeltaBytes: rss !== null && rss0 !== null ? rss - rss0 : null,
      diskBytes:
        q.storage === null ? null : dirBytes(path.join(q.storage, 'collections', collection)),
      isolation,
      loadAverage: loadAverage(),
    };
    report(cell);
    return cell;
  } finally {
    await store.close();
    await fetch(`${base}/collections/${collection}`, { method: 'DELETE', headers }).catch(
      () => undefined,
    );
  }
}

interface QdrantInfo {
  status: string;
  indexed_vectors_count?: number;
  points_count?: number;
  segments_count?: number;
  config: {
    hnsw_config: { m: number; payload_m?: number | null; full_scan_threshold: number };
    params: { shard_number?: number; replication_factor?: number };
  };
  payload_schema: Record<string, { data_type: string; params?: { is_tenant?: boolean } }>;
}

/**
 * The collection's dense-vector search counts per search path, summed over its segments, from
 * Qdrant's telemetry (`vector_index_searches`: unfiltered_hnsw, filtered_small_cardinality,
 * filtered_large_cardinality, filtered_exact, unfiltered_exact, …).
 */
async function qdrantSearchTelemetry(
  api: (p: string) => Promise<{ result: unknown }>,
  collection: string,
): Promise<QdrantTelemetrySearches> {
  const body = (await api('/telemetry?details_level=10')).result as {
    collections?: { collections?: unknown[] };
  };
  const out: QdrantTelemetrySearches = {};
  const c = (body.collections?.collections ?? []).find(
    (x) => (x as { id?: string }).id === collection,
  );
  const visit = (node: unknown, key: string | null) => {
    if (Array.isArray(node)) for (const x of node) visit(x, key);
    else if (node && typeof node === 'object') {
      const rec = node as Record<string, unknown>;
      if (key === 'vector_index_searches') {
        // One entry per vector name: {index_name, unfiltered_hnsw: {count,…}, …}.
        if ((rec.index_name ?? '') !== '') return;
        for (const [path, stat] of Object.entries(rec)) {
          const count = (stat as { count?: unknown } | null)?.count;
          if (typeof count === 'number') out[path] = (out[path] ?? 0) + count;
        }
        return;
      }
      for (const [k, v] of Object.entries(rec)) visit(v, k === 'vector_index_searches' ? k : null);
    }
  };
  visit(c, null);
  return out;
}

/**
 * Qdrant's evidence: the tenant field's payload index with `is_tenant`, the global graph off
 * (`m: 0`) and per-tenant graphs (`payload_m`), and how the telemetry says the measured dense
 * searches ran. With a tenant filter, Qdrant either walks the tenant's own HNSW graph
 * (filtered_large_cardinality) or, below full_scan_threshold, scores exactly the points the
 * payload index lists for the tenant (filtered_small_cardinality); an unfiltered or global-graph
 * path (unfiltered_*) would mean other tenants' points were candidates.
 */
function qdrantIsolation(
  info: QdrantInfo,
  before: QdrantTelemetrySearches,
  after: QdrantTelemetrySearches,
  w: Workload,
): Isolation {
  const delta: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) delta[k] = d;
  }
  const tenant = info.payload_schema.org_id;
  const isTenant = tenant?.params?.is_tenant === true;
  const m = info.config.hnsw_config.m;
  const payloadM = info.config.hnsw_config.payload_m ?? null;
  const unscoped = Object.entries(delta)
    .filter(([k]) => k.startsWith('unfiltered'))
    .reduce((a, [, v]) => a + v, 0);
  return {
    evidence: {
      org_id_is_tenant: isTenant,
      hnsw_m: m,
      payload_m: payloadM ?? 'unset',
      full_scan_threshold: info.config.hnsw_config.full_scan_threshold,
      tenantPoints: w.orgPoints,
      ...Object.fromEntries(Object.entries(delta).map(([k, v]) => [`searches_${k}`, v])),
    },
    scopedToTenant: isTenant && m === 0 && payloadM !== null && unscoped === 0,
    excerpt: JSON.stringify({ payload_schema_org_id: tenant, searchPaths: delta }),
  };
}

function report(c: ScaleCell): void {
  const mib = (b: number | null) => (b === null ? '-' : `${(b / 2 ** 20).toFixed(0)} MiB`);
  progress(
    `    dense p50 ${c.dense.p50} / p99 ${c.dense.p99} ms, recall@10 ${c.recallDense}; hybrid p50 ${c.hybrid?.p50 ?? '-'} / p99 ${c.hybrid?.p99 ?? '-'} ms, recall@10 ${c.recallHybrid ?? '-'}; fill ${c.fillPointsPerSecond} pts/s, upsert ${c.upsertPointsPerSecond} pts/s; RSS ${mib(c.rssBytes)}, disk ${mib(c.diskBytes)}; scoped ${c.isolation?.scopedToTenant ?? '-'}`,
  );
}

export interface ScaleResult {
  method: string;
  dim: number;
  queries: number;
  candidates: number;
  cells: ScaleCell[];
  notes: string[];
}

/** Every cell: per store, one organisation at each size (smallest first), then many orgs. */
export async function measureScale(o: ScaleOptions): Promise<ScaleResult> {
  const queries = queriesFor(o.bases, o.queries);
  const sizes = [...new Set([...(o.orgs > 0 ? [o.orgPoints] : []), ...o.sizes])].sort(
    (a, b) => a - b,
  );
  const workloads = [...sizes.map(oneOrg), ...(o.orgs > 0 ? [manyOrgs(o.orgs, o.orgPoints)] : [])];
  const notes: string[] = [];
  const cells: ScaleCell[] = [];
  const result = (): ScaleResult => ({
    method: [
      `Vectors: ${o.bases.source}.`,
      `Each point mixes two corpus documents' embeddings and Gaussian noise (v = norm(λa + (1−λ)b + σg/√d), λ ∈ [0.55, 0.95), σ = 0.35), with ${TERMS_PER_POINT} keyword-term draws from their words; ${o.queries} queries are made the same way from held-out documents (${QUERY_TERMS} terms each).`,
      `Exact search: brute-force cosine over every point of the query's organisation, computed by the bench while it writes; recall@10 = share of the exact top 10 in the store's top 10. Hybrid's exact ranking: the stores' own default fusion (${JSON.stringify(DEFAULT_FUSION)}, fusion.ts) of the exact dense top ${CANDIDATES} and the store's keyword top ${CANDIDATES} (exact BM25 in both stores).`,
      `Latency: ${o.queries} sequential searches per mode after ${WARMUP} warm-up ones, in the bench process (LanceDB in-process; Qdrant over HTTP on localhost).`,
    ].join(' '),
    dim: SCALE_DIM,
    queries: o.queries,
    candidates: CANDIDATES,
    cells: [...cells],
    notes: [...notes],
  });
  if (o.stores.includes('qdrant') && !o.qdrant) {
    notes.push('Qdrant was not measured: no --qdrant-url given.');
  }
  const stores = o.stores.filter((s) => s === 'embedded' || o.qdrant);
  // Smallest workload first, both stores at each, so an interrupted run still has a curve.
  for (const w of workloads) {
    for (const store of stores) {
      cells.push(
        store === 'embedded'
          ? await lancedbCell(w, o, queries)
          : await qdrantCell(w, o, queries, o.qdrant as NonNullable<ScaleOptions['qdrant']>),
      );
      await o.onCell?.(result());
    }
  }
  return result();
}
