/**
 * (e) Vector-store search latency at several table sizes, with random unit vectors of the model's
 * dimension, through the embedder's own store classes (LanceDB embedded; Qdrant when QDRANT_URL
 * is set). One organisation holds every vector, so each search's filter matches the whole table.
 * Every point also carries a keyword-index term vector (60 terms drawn from a Zipf-distributed
 * vocabulary of 30,000 ids, as words are), and each size is searched in the three modes: dense,
 * keyword (4 query terms) and hybrid (both, fused), so hybrid's cost is a ratio within one run.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { LanceDbStore } from '../../embedder/src/store/lancedb.js';
import { QdrantStore } from '../../embedder/src/store/qdrant.js';
import { wholeText } from '../../embedder/src/store/types.js';
import type {
  SearchMode,
  TermVector,
  VectorPoint,
  VectorStore,
} from '../../embedder/src/store/types.js';
import { seededNormal } from './bert.js';
import { progress } from './progress.js';
import { median, round, roundSummary, summarize } from './stats.js';
import type { Summary } from './stats.js';

export interface StoreBenchOptions {
  workDir: string;
  dim: number;
  sizes: readonly number[];
  queries: number;
  insertBatch: number;
  qdrant: { url: string; apiKey: string | null } | null;
}

export interface StoreCell {
  store: 'lancedb' | 'qdrant';
  /**
   * `as written`: the table as the store's own maintenance left it after the inserts (LanceDB:
   * rows written after the ANN index was built are searched exhaustively until the next
   * optimize); `optimized`: after a full LanceDB optimize (compaction, index brought up to date).
   */
  /** `indexing`: measured while the store still indexed in the background (see settle). */
  state: 'as written' | 'optimized' | 'indexing';
  vectors: number;
  dim: number;
  /** Whether an ANN index served the searches (LanceDB builds one from 50,000 rows). */
  annIndex: boolean | null;
  /** Dense search latency. */
  latencyMs: Summary;
  /** Keyword (BM25) and hybrid search latency on the same table; null where not measured. */
  keywordLatencyMs: Summary | null;
  hybridLatencyMs: Summary | null;
  /** Points written per second while filling the table up to this size. */
  insertPointsPerSecond: number;
  /** Seconds spent waiting for background index building / compaction (or the optimize). */
  maintenanceSeconds: number;
  /** Latency of writing 32 new points (the queue consumer's batch), sequential; null when not measured. */
  write32Ms: Summary | null;
}

const ORG = 'bench-store-org';
const MODEL = 'bench-model';

export function randomUnitVectors(n: number, dim: number, seed: number): Float32Array[] {
  const normal = seededNormal(seed);
  return Array.from({ length: n }, () => {
    const v = new Float32Array(dim);
    let norm = 0;
    for (let i = 0; i < dim; i++) {
      const x = normal(0, 1);
      v[i] = x;
      norm += x * x;
    }
    norm = Math.sqrt(norm);
    for (let i = 0; i < dim; i++) v[i] = (v[i] as number) / norm;
    return v;
  });
}

const VOCABULARY = 30_000;
const TERMS_PER_POINT = 60;
const TERMS_PER_QUERY = 4;

/** Term ids with Zipf's law (rank r drawn with probability ∝ 1/r), from a seeded generator. */
function zipfTerms(seed: number): (count: number) => TermVector {
  const cumulative = new Float64Array(VOCABULARY);
  let total = 0;
  for (let r = 0; r < VOCABULARY; r++) cumulative[r] = total += 1 / (r + 1);
  let state = seed >>> 0 || 1;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  return (count) => {
    const counts = new Map<number, number>();
    for (let i = 0; i < count; i++) {
      const x = random() * total;
      let lo = 0;
      let hi = VOCABULARY - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((cumulative[mid] as number) < x) lo = mid + 1;
        else hi = mid;
      }
      counts.set(lo, (counts.get(lo) ?? 0) + 1);
    }
    const ids = Uint32Array.from(counts.keys()).sort();
    return { ids, tfs: Uint32Array.from(ids, (id) => counts.get(id) as number), length: count };
  };
}

function points(from: number, n: number, dim: number): VectorPoint[] {
  const vectors = randomUnitVectors(n, dim, 1 + from);
  const terms = zipfTerms(1 + from);
  const now = new Date().toISOString();
  return vectors.map((vector, i) => {
    const id = randomUUID();
    return {
      id,
      vector,
      terms: terms(TERMS_PER_POINT),
      payload: {
        ...wholeText(id, 100),
        org_id: ORG,
        asset_id: `asset-${Math.floor((from + i) / 100)}`,
        segment_id: `seg-${from + i}`,
        modality: 'text',
        model: MODEL,
        model_ver: '1',
        text_len: 100,
        token_count: 20,
        truncated: false,
        truncated_len: 100,
        job_id: randomUUID(),
        seq: from + i + 1,
        embedded_at: now,
      },
    };
  });
}

const WRITE_SAMPLES = 20;
/** Points per Qdrant upsert while filling (the embedder's own calls carry at most 512). */
const QDRANT_INSERT_BATCH = 512;
/** How long the bench waits for Qdrant to finish indexing a fill before it gives up. */
const QDRANT_SETTLE_MS = 10 * 60_000;

async function searchLatency(
  store: VectorStore,
  o: StoreBenchOptions,
  seed: number,
  mode: SearchMode = 'dense',
): Promise<Summary> {
  const queries = randomUnitVectors(o.queries + 10, o.dim, seed);
  const terms = zipfTerms(seed);
  const times: number[] = [];
  for (const [i, vector] of queries.entries()) {
    const query = { vector, terms: terms(TERMS_PER_QUERY) };
    const q0 = performance.now();
    const hits = await store.search({
      mode,
      ...query,
      orgId: ORG,
      model: MODEL,
      modelVer: '1',
      limit: 10,
    });
    if (i >= 10) times.push(performance.now() - q0);
    if (hits.length === 0 || (mode !== 'keyword' && hits.length !== 10)) {
      throw new Error(`${store.kind}: a ${mode} search returned ${hits.length} hits`);
    }
  }
  return roundSummary(summarize(times));
}

/** Dense, keyword and hybrid latency on the table as it is (interleaved seeds, one run). */
async function modeLatencies(store: VectorStore, o: StoreBenchOptions, seed: number) {
  const dense = await searchLatency(store, o, seed, 'dense');
  const keyword = store.keywordIndex ? await searchLatency(store, o, seed, 'keyword') : null;
  const hybrid = store.keywordIndex ? await searchLatency(store, o, seed, 'hybrid') : null;
  return { dense, keyword, hybrid };
}

/** A store under test; `refresh` re-opens it (LanceDB) after the table changed outside it. */
interface Handle {
  store: VectorStore;
  /** Full maintenance outside the store (LanceDB optimize), then a fresh store; null if none. */
  optimize: (() => Promise<VectorStore>) | null;
  /**
   * Waits for the store's background indexing after writes; false when it had not finished in
   * the time allowed (the cell is then measured and reported as `indexing`).
   */
  settle: () => Promise<boolean>;
}

async function fillAndMeasure(handle: Handle, o: StoreBenchOptions): Promise<StoreCell[]> {
  const cells: StoreCell[] = [];
  const kind = handle.store.kind;
  let count = 0;
  for (const size of [...o.sizes].sort((a, b) => a - b)) {
    progress(`  ${kind}: filling to ${size.toLocaleString('en')} vectors`);
    const t0 = performance.now();
    const added = size - count;
    while (count < size) {
      const n = Math.min(o.insertBatch, size - count);
      const applied = await handle.store.upsert(points(count, n, o.dim));
      if (applied.some((a) => !a)) throw new Error(`${kind}: an insert was not applied`);
      count += n;
    }
    const insertSeconds = (performance.now() - t0) / 1000;
    const m0 = performance.now();
    const settled = await handle.settle();
    const maintenanceSeconds = (performance.now() - m0) / 1000;
    const stored = await handle.store.count({ orgId: ORG });
    if (stored !== count) throw new Error(`${kind}: expected ${count} vectors, found ${stored}`);
    const annIndex = async () =>
      handle.store instanceof LanceDbStore ? await handle.store.hasAnnIndex() : null;
    const modes = await modeLatencies(handle.store, o, 7_000_000 + size);
    const latency = modes.dense;

    const writes: number[] = [];
    for (let i = 0; i < WRITE_SAMPLES; i++) {
      const batch = points(count, 32, o.dim);
      const w0 = performance.now();
      await handle.store.upsert(batch);
      writes.push(performance.now() - w0);
      count += 32;
    }
    cells.push({
      store: kind,
      state: settled ? 'as written' : 'indexing',
      vectors: size,
      dim: o.dim,
      annIndex: await annIndex(),
      latencyMs: latency,
      keywordLatencyMs: modes.keyword,
      hybridLatencyMs: modes.hybrid,
      insertPointsPerSecond: round(added / insertSeconds),
      maintenanceSeconds: round(maintenanceSeconds),
      write32Ms: roundSummary(summarize(writes)),
    });
    progress(
      `    dense p50 ${latency.p50} ms, p99 ${latency.p99} ms; keyword p50 ${modes.keyword?.p50 ?? '-'} ms; hybrid p50 ${modes.hybrid?.p50 ?? '-'} ms (${modes.hybrid ? (modes.hybrid.p50 / latency.p50).toFixed(2) : '-'}× dense); 32-point write p50 ${median(writes).toFixed(1)} ms`,
    );
    if (handle.optimize) {
      const o0 = performance.now();
      handle.store = await handle.optimize();
      const optimizeSeconds = (performance.now() - o0) / 1000;
      const optimizedModes = await modeLatencies(handle.store, o, 8_000_000 + size);
      const optimized = optimizedModes.dense;
      cells.push({
        store: kind,
        state: 'optimized',
        vectors: count,
        dim: o.dim,
        annIndex: await annIndex(),
        latencyMs: optimized,
        keywordLatencyMs: optimizedModes.keyword,
        hybridLatencyMs: optimizedModes.hybrid,
        insertPointsPerSecond: NaN,
        maintenanceSeconds: round(optimizeSeconds),
        write32Ms: null,
      });
      progress(
        `    after optimize (${optimizeSeconds.toFixed(1)} s): dense p50 ${optimized.p50} ms, p99 ${optimized.p99} ms; hybrid p50 ${optimizedModes.hybrid?.p50 ?? '-'} ms`,
      );
    }
  }
  return cells;
}

export async function measureStores(o: StoreBenchOptions): Promise<StoreCell[]> {
  const out: StoreCell[] = [];
  const dir = path.join(o.workDir, 'store-lancedb');
  mkdirSync(dir, { recursive: true });
  const open = async () => {
    const store = new LanceDbStore({ dataDir: dir });
    await store.init(o.dim);
    return store;
  };
  const handle: Handle = {
    store: await open(),
    settle: async () => {
      if (handle.store instanceof LanceDbStore) await handle.store.idle();
      return true;
    },
    optimize: async () => {
      await handle.store.close();
      const db = await lancedb.connect(dir);
      try {
        const table = await db.openTable('points');
        await table.optimize({ cleanupOlderThan: new Date() });
        table.close();
      } finally {
        db.close();
      }
      return open();
    },
  };
  try {
    out.push(...(await fillAndMeasure(handle, o)));
  } finally {
    await handle.store.close();
  }
  if (o.qdrant) {
    const collection = `heimdex_bench_${Date.now().toString(36)}`;
    const qdrant = new QdrantStore({ url: o.qdrant.url, apiKey: o.qdrant.apiKey, collection });
    await qdrant.init(o.dim);
    try {
      const base = o.qdrant.url.replace(/\/+$/, '');
      const headers: Record<string, string> = o.qdrant.apiKey ? { 'api-key': o.qdrant.apiKey } : {};
      const settle = async () => {
        // Qdrant indexes in the background; "green" means the optimizers are done. Building the
        // HNSW graph of 100,000 points takes minutes on 2 shared cores.
        for (const deadline = Date.now() + QDRANT_SETTLE_MS; Date.now() < deadline;) {
          const res = await fetch(`${base}/collections/${collection}`, { headers });
          const body = (await res.json()) as { result?: { status?: string } };
          if (body.result?.status === 'green') return true;
          await new Promise((r) => setTimeout(r, 500));
        }
        progress(
          `    the Qdrant collection did not turn green within ${QDRANT_SETTLE_MS / 1000} s: measuring it while it indexes`,
        );
        return false;
      };
      // Qdrant refuses requests over 32 MiB (its default): 10,000 points with their payloads and
      // update filters are more; the embedder itself never writes more than 512 at once.
      const qdrantOptions = { ...o, insertBatch: Math.min(o.insertBatch, QDRANT_INSERT_BATCH) };
      out.push(...(await fillAndMeasure({ store: qdrant, optimize: null, settle }, qdrantOptions)));
    } finally {
      await qdrant.close();
      await fetch(`${o.qdrant.url.replace(/\/+$/, '')}/collections/${collection}`, {
        method: 'DELETE',
        headers: o.qdrant.apiKey ? { 'api-key': o.qdrant.apiKey } : {},
      }).catch(() => undefined);
    }
  }
  return out;
}
