import { mkdir } from 'node:fs/promises';
import * as lancedb from '@lancedb/lancedb';
import type { Connection, Table } from '@lancedb/lancedb';
import {
  Bool,
  Field,
  FixedSizeList,
  Float32,
  Int32,
  Int64,
  List,
  Schema,
  Uint32,
  Utf8,
} from 'apache-arrow';
import type { Table as ArrowTable } from 'apache-arrow';
import { Mutex } from '../core/mutex.js';
import type { Logger } from '../log.js';
import { DEFAULT_FUSION, annotate, fuse, hybridCandidates } from './fusion.js';
import { KeywordIndex } from './keyword-index.js';
import { MemoryIndex } from './memory-index.js';
import {
  PAYLOAD_FIELDS,
  StoreError,
  isoInstant,
  payloadFromRecord,
  toStoreError,
  writeLatest,
} from './types.js';
import type {
  DeleteParams,
  PayloadFilters,
  PointPayload,
  SearchHit,
  SearchParams,
  TermVector,
  StoreInitResult,
  StoreHooks,
  VectorPoint,
  VectorStore,
} from './types.js';

export interface LanceDbStoreOptions {
  /** Folder of the LanceDB database (VECTOR_DATA_DIR). */
  dataDir: string;
  table?: string;
  /** Build the ANN index once the table holds this many rows; below it, search is exact. */
  vectorIndexThreshold?: number;
  /** Compact small fragments and fold new rows into the indexes after this many writes. */
  optimizeEveryWrites?: number;
  /**
   * Table versions superseded less than this long ago survive the clean-up that follows each
   * compaction (a read in flight may still be on one); older ones and the files only they use are
   * deleted. Default 30 s.
   */
  versionGraceMs?: number;
  /**
   * Reopen the table on a fresh connection (and LanceDB Session, whose caches go with it) at the
   * first compaction after this many writes; 0 never. LanceDB keeps native memory per version
   * written that only a new connection gives back (bench/PERFORMANCE.md). Default 100 while
   * searches are served from the in-memory index, 10x that once LanceDB's ANN index serves them
   * (a reopen costs the next searches a cold index cache).
   */
  reopenEveryWrites?: number;
  /**
   * Serve searches from an exact in-memory copy of the vectors (memory-index.ts) while the table
   * holds at most this many rows; 0 disables it. Default: `vectorIndexThreshold`, where LanceDB's
   * ANN index takes over.
   */
  memoryIndexMaxRows?: number;
  /**
   * With the ANN index built, a search scope (organisation, model, version) of at most this many
   * rows is still searched exactly (EXACT_SCOPE_MAX_ROWS, the default); 0: the index always serves.
   */
  exactScopeMaxRows?: number;
  logger?: Logger;
  hooks?: StoreHooks;
}

const DEFAULT_TABLE = 'points';
/** Bounds of LanceDB's index and file-metadata caches (its own defaults: 6 GiB and 1 GiB). */
const INDEX_CACHE_BYTES = 512 * 2 ** 20;
const METADATA_CACHE_BYTES = 64 * 2 ** 20;
const SELECT_COLUMNS = ['id', ...PAYLOAD_FIELDS, '_distance'];
/** Approximate candidates per result re-ranked on the full vectors when the ANN index serves. */
const REFINE_FACTOR = 4;
/**
 * A search scope (organisation, model, version) of at most this many rows is searched exactly
 * even when the ANN index exists: a prefiltered flat scan that reads, through the `org_id` scalar
 * index, the scope's rows and no others (recall 1.0, and no other tenant's vector is ever read or
 * compared; the ANN index's partitions hold every tenant's codes and its prefilter only masks
 * them). Qdrant does the same below its full_scan_threshold (~6,600 points at 384-d). A flat
 * scan of 10,000 rows costs about what the ANN search does.
 */
export const EXACT_SCOPE_MAX_ROWS = 10_000;
/**
 * HNSW search breadth (`ef`, candidates kept while walking the graph) when the ANN index serves;
 * at least the rows the refine step re-ranks. LanceDB's default (1.5 × those rows: 60 for a
 * dense search of 10) gave recall@10 0.92 at 100,000 real-embedding-like points; 400 gave 0.997
 * at the same latency on 2 cores (the graph walk is a small share of a query; bench results
 * 2026-12-02-scale*, docs/SCALING.md).
 */
const HNSW_EF = 400;

/** SQL conditions for the optional payload filters (values always quoted, never interpolated). */
function payloadConditions(f: PayloadFilters | undefined): string[] {
  if (!f) return [];
  const out: string[] = [];
  const anyOf = (column: string, values: readonly string[]) =>
    `${column} IN (${values.map(sqlString).join(', ')})`;
  if (f.assetIds && f.assetIds.length > 0) out.push(anyOf('asset_id', f.assetIds));
  if (f.segmentIds && f.segmentIds.length > 0) out.push(anyOf('segment_id', f.segmentIds));
  if (f.truncated !== undefined) out.push(`truncated = ${f.truncated ? 'true' : 'false'}`);
  if (f.embeddedAfter !== undefined)
    out.push(`embedded_at >= ${sqlString(isoInstant(f.embeddedAfter))}`);
  if (f.embeddedBefore !== undefined)
    out.push(`embedded_at < ${sqlString(isoInstant(f.embeddedBefore))}`);
  return out;
}

/** A SQL string literal for LanceDB filters (DataFusion): quotes doubled, nothing else special. */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * The keyword-index columns: keyed term ids, their counts and the text's length in terms. Null in
 * rows written before the keyword index existed (added to such a table on open).
 */
const KEYWORD_FIELDS = [
  new Field('kw_ids', new List(new Field('item', new Uint32(), true)), true),
  new Field('kw_tfs', new List(new Field('item', new Uint32(), true)), true),
  new Field('kw_len', new Int32(), true),
];
const KEYWORD_COLUMNS = KEYWORD_FIELDS.map((f) => f.name);

/**
 * The chunk columns (contract/internal.ts PointPayload): the segment's point id and the chunk's
 * place and span in the text. Null in rows written before chunking (added to such a table on
 * open); payloadFromRecord reads a null as the row's defaults (its own segment, chunk 0 of 1).
 */
const CHUNK_FIELDS = [
  new Field('segment_point_id', new Utf8(), true),
  new Field('chunk_index', new Int32(), true),
  new Field('chunk_count', new Int32(), true),
  new Field('chunk_start', new Int32(), true),
  new Field('chunk_end', new Int32(), true),
];

/** Columns a table made by an older embedder may lack, and the SQL of their null value. */
const ADDED_COLUMNS: { field: Field; nullSql: string; what: string }[] = [
  ...KEYWORD_FIELDS.map((field) => ({
    field,
    nullSql:
      field.typeId === new Int32().typeId
        ? 'CAST(NULL AS INT)'
        : `arrow_cast(NULL, 'List(UInt32)')`,
    what: 'keyword index',
  })),
  ...CHUNK_FIELDS.map((field) => ({
    field,
    nullSql: field.typeId === new Int32().typeId ? 'CAST(NULL AS INT)' : 'CAST(NULL AS STRING)',
    what: 'chunk',
  })),
];

function tableSchema(dim: number): Schema {
  const utf8 = (name: string) => new Field(name, new Utf8(), false);
  const int32 = (name: string) => new Field(name, new Int32(), false);
  return new Schema([
    utf8('id'),
    new Field('vector', new FixedSizeList(dim, new Field('item', new Float32(), true)), false),
    utf8('org_id'),
    utf8('asset_id'),
    utf8('segment_id'),
    utf8('modality'),
    utf8('model'),
    utf8('model_ver'),
    int32('text_len'),
    int32('token_count'),
    new Field('truncated', new Bool(), false),
    int32('truncated_len'),
    utf8('job_id'),
    new Field('seq', new Int64(), false),
    utf8('embedded_at'),
    ...KEYWORD_FIELDS,
    ...CHUNK_FIELDS,
  ]);
}

/** Points per group-committed write, at most (bounds the id lookup and the merge). */
const MAX_GROUP_POINTS = 4096;

interface PendingWrite {
  points: readonly VectorPoint[];
  /** A writeSegments call (else an upsert): a group holds writes of one kind. */
  segments: boolean;
  resolve(applied: boolean[]): void;
  reject(err: unknown): void;
}

/** A segment's key: segment point ids are per organisation. */
const segmentKey = (orgId: string, segmentPointId: string) =>
  JSON.stringify([orgId, segmentPointId]);

/**
 * The embedded vector store: a LanceDB table on local disk (VECTOR_DATA_DIR). Writes are
 * serialised through an in-process mutex (one embedder process owns a data dir). While the table
 * is small, searches scan an exact in-memory copy of the caller's vectors (memory-index.ts: LanceDB
 * costs ~20-30 ms a query here whatever the size); once it reaches `vectorIndexThreshold` rows an
 * HNSW index is built in the background and LanceDB answers. Scalar indexes on `id` and `org_id`
 * keep merges and tenant filters cheap.
 */
export class LanceDbStore implements VectorStore {
  readonly kind = 'lancedb' as const;
  /** Every LanceDB table has one (older tables get its columns on open). */
  readonly keywordIndex = true;
  private db: Connection | null = null;
  private tbl: Table | null = null;
  private dim = 0;
  private readonly writes = new Mutex();
  private readonly pendingWrites: PendingWrite[] = [];
  private flushQueued = false;
  private writeCount = 0;
  private readonly tableName: string;
  private readonly vectorIndexThreshold: number;
  private readonly optimizeEveryWrites: number;
  private hasVectorIndex = false;
  private readonly memoryIndexMaxRows: number;
  /** The exact in-memory copy searches use while the table is small, else null. */
  private memory: MemoryIndex | null = null;
  /** BM25 over the points' keyed terms (keyword-index.ts), for every table size. */
  private keywords = new KeywordIndex();
  private schema: Schema | null = null;
  private writesSinceOptimize = 0;
  private writesSinceReopen = 0;
  private readonly versionGraceMs: number;
  private readonly reopenEveryWrites: number;
  /** Calls in flight on each table handle (a retired handle is closed when its count is 0). */
  private readonly handleUsers = new Map<Table, number>();
  /** Handles replaced by a reopen, with their connections, not yet closed. */
  private readonly retired = new Map<Table, Connection>();
  /** Reopens so far (for tests and metrics). */
  reopenCount = 0;
  private maintenance: Promise<void> = Promise.resolve();
  private maintenanceRunning = false;
  private maintenanceRequested = false;

  constructor(private readonly options: LanceDbStoreOptions) {
    this.tableName = options.table ?? DEFAULT_TABLE;
    this.vectorIndexThreshold = options.vectorIndexThreshold ?? 50_000;
    this.optimizeEveryWrites = options.optimizeEveryWrites ?? 100;
    this.versionGraceMs = options.versionGraceMs ?? 30_000;
    this.reopenEveryWrites = options.reopenEveryWrites ?? 100;
    this.memoryIndexMaxRows = options.memoryIndexMaxRows ?? this.vectorIndexThreshold;
  }

  async init(dim: number): Promise<StoreInitResult> {
    try {
      await mkdir(this.options.dataDir, { recursive: true });
      this.db = await this.connect();
      const names = await this.db.tableNames();
      let created = false;
      if (names.includes(this.tableName)) {
        this.tbl = await this.db.openTable(this.tableName);
      } else {
        this.tbl = await this.db.createEmptyTable(this.tableName, tableSchema(dim), {
          existOk: true,
        });
        created = true;
      }
      const vectorField = (await this.tbl.schema()).fields.find((f) => f.name === 'vector');
      // Duck-typed: LanceDB may hand back its own copy of apache-arrow's classes.
      const listSize = (vectorField?.type as { listSize?: unknown } | undefined)?.listSize;
      if (typeof listSize !== 'number') {
        throw new StoreError(`table "${this.tableName}" has no fixed-size "vector" column`);
      }
      this.dim = listSize;
      await this.addMissingColumns(this.tbl);
      this.schema = (await this.tbl.schema()) as unknown as Schema;
      const indexes = await this.tbl.listIndices();
      const indexed = new Set(indexes.flatMap((i) => i.columns));
      for (const column of ['id', 'org_id', 'segment_point_id']) {
        if (!indexed.has(column)) {
          await this.tbl.createIndex(column, { config: lancedb.Index.btree() });
        }
      }
      // Every search's scope is org AND model AND model_ver: with all three indexed, LanceDB
      // answers the prefilter from its scalar indexes alone. Without these two it read the model
      // columns of every row of the organisation on each query (O(tenant size) per search).
      for (const column of ['model', 'model_ver']) {
        if (!indexed.has(column)) {
          await this.tbl.createIndex(column, { config: lancedb.Index.bitmap() });
        }
      }
      this.hasVectorIndex = indexed.has('vector');
      await this.loadMemoryIndex(this.tbl);
      await this.loadKeywordIndex(this.tbl);
      return { dim: this.dim, created };
    } catch (err) {
      throw toStoreError('open the LanceDB table', err);
    }
  }

  /**
   * A connection with its own LanceDB Session. LanceDB's defaults (6 GiB index cache, 1 GiB
   * metadata cache) let a long ingest grow the process by hundreds of MiB: every write adds
   * manifests and fragment metadata to the cache.
   */
  private connect(): Promise<Connection> {
    const session = new lancedb.Session(BigInt(INDEX_CACHE_BYTES), BigInt(METADATA_CACHE_BYTES));
    return lancedb.connect(this.options.dataDir, {}, session);
  }

  /**
   * Runs `fn` on the current table handle, which a reopen meanwhile does not close under it. (A
   * query needs no lease: LanceDB's query builders hold the native table from their synchronous
   * creation on, so only the table's own async methods do.)
   */
  private async using<T>(fn: (table: Table) => Promise<T>): Promise<T> {
    const table = this.table();
    this.handleUsers.set(table, (this.handleUsers.get(table) ?? 0) + 1);
    try {
      return await fn(table);
    } finally {
      const left = (this.handleUsers.get(table) ?? 1) - 1;
      if (left > 0) this.handleUsers.set(table, left);
      else {
        this.handleUsers.delete(table);
        this.closeRetired(table);
      }
    }
  }

  /** Closes a handle a reopen replaced, and its connection (a no-op for the current one). */
  private closeRetired(table: Table): void {
    const db = this.retired.get(table);
    if (!db) return;
    this.retired.delete(table);
    table.close();
    db.close();
  }

  /**
   * Swaps in a fresh connection, Session and table handle (under the write mutex: writes and
   * maintenance always take the current handle). Memory LanceDB keeps per version written, which
   * neither compaction, clean-up nor smaller caches give back, goes with the old connection; the
   * old handle closes once the calls still running on it end.
   */
  private async reopen(): Promise<void> {
    const old = this.table();
    const oldDb = this.db;
    const db = await this.connect();
    let table: Table;
    try {
      table = await db.openTable(this.tableName);
    } catch (err) {
      db.close();
      throw err;
    }
    this.db = db;
    this.tbl = table;
    this.writesSinceReopen = 0;
    this.reopenCount++;
    if (oldDb) {
      this.retired.set(old, oldDb);
      if (!this.handleUsers.has(old)) this.closeRetired(old);
    }
  }

  /**
   * The clean-up's cut-off: the creation time of the oldest version superseded less than
   * versionGraceMs ago (version k is superseded when k+1 is written), so that every version a read
   * may still be on survives, however long ago it was written; the current version always does.
   */
  private async cleanupCutoff(table: Table): Promise<Date> {
    const versions = (await table.listVersions()).sort((a, b) => a.version - b.version);
    const horizon = Date.now() - this.versionGraceMs;
    let cutoff = versions.at(-1)?.timestamp ?? new Date();
    for (let i = versions.length - 2; i >= 0; i--) {
      const next = versions[i + 1] as { timestamp: Date };
      if (next.timestamp.getTime() < horizon) break;
      cutoff = (versions[i] as { timestamp: Date }).timestamp;
    }
    return cutoff;
  }

  /**
   * A table made before the keyword index or chunking gets their columns, null in the rows it
   * holds.
   */
  private async addMissingColumns(table: Table): Promise<void> {
    const have = new Set((await table.schema()).fields.map((f) => f.name));
    const missing = ADDED_COLUMNS.filter((c) => !have.has(c.field.name));
    if (missing.length === 0) return;
    // As SQL: LanceDB's addColumns(Field[]) checks `instanceof` against its own copy of
    // apache-arrow (the CommonJS build), which our fields (the ESM build) are not.
    await table.addColumns(missing.map((c) => ({ name: c.field.name, valueSql: c.nullSql })));
    for (const what of new Set(missing.map((c) => c.what))) {
      const columns = missing.filter((c) => c.what === what).length;
      this.options.logger?.info(`${what} columns added`, { columns });
    }
  }

  /** Rebuilds the keyword index from the rows that have terms. */
  private async loadKeywordIndex(table: Table): Promise<void> {
    const keywords = new KeywordIndex();
    const data = await table
      .query()
      .where('kw_len IS NOT NULL')
      .select(['id', ...KEYWORD_COLUMNS, ...PAYLOAD_FIELDS])
      .toArrow();
    forEachRow(data, (id, column, payload) => {
      const list = (name: string) =>
        Uint32Array.from((column(name) as { toArray(): ArrayLike<number> }).toArray());
      const terms: TermVector = {
        ids: list('kw_ids'),
        tfs: list('kw_tfs'),
        length: Number(column('kw_len')),
      };
      keywords.put(id, terms, payload);
    });
    this.keywords = keywords;
  }

  /** Copies the table into the in-memory index when it is small enough. */
  private async loadMemoryIndex(table: Table): Promise<void> {
    this.memory = null;
    if (this.memoryIndexMaxRows <= 0) return;
    const rows = await table.countRows();
    if (rows > this.memoryIndexMaxRows) return;
    const memory = new MemoryIndex(this.dim);
    const data = await table
      .query()
      .select(['id', 'vector', ...PAYLOAD_FIELDS])
      .toArrow();
    forEachRow(data, (id, column, payload) => {
      const vector = column('vector') as { toArray(): ArrayLike<number> } | null;
      if (vector === null || vector === undefined) return;
      memory.put(id, Float32Array.from(vector.toArray()), payload);
    });
    this.memory = memory;
  }

  /**
   * Group commit: every LanceDB write is a new table version (a manifest and a data fragment), so
   * its cost barely depends on how many rows it carries. Writes that arrive while one runs wait
   * together, and the next write takes them all (up to MAX_GROUP_POINTS; upserts and
   * writeSegments calls in separate groups, in arrival order) in one merge, with latest-wins
   * decided across the whole group. Each caller gets its own points' outcomes.
   */
  upsert(points: readonly VectorPoint[]): Promise<boolean[]> {
    return this.enqueue(points, false);
  }

  /**
   * Segment-wise latest-wins (VectorStore.writeSegments), group-committed like `upsert`: see
   * writeSegmentGroup.
   */
  writeSegments(points: readonly VectorPoint[]): Promise<boolean[]> {
    return this.enqueue(points, true);
  }

  private enqueue(points: readonly VectorPoint[], segments: boolean): Promise<boolean[]> {
    try {
      this.table();
      for (const p of points) {
        if (p.vector.length !== this.dim) {
          throw new StoreError(
            `vector has ${p.vector.length} dimensions, the table has ${this.dim}`,
          );
        }
      }
    } catch (err) {
      return Promise.reject(err);
    }
    if (points.length === 0) return Promise.resolve([]);
    return new Promise<boolean[]>((resolve, reject) => {
      this.pendingWrites.push({ points, segments, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    void this.writes.run(() => this.flush());
  }

  /** One group commit, on the handle current when it runs (a reopen happens under the mutex). */
  private async flush(): Promise<void> {
    this.flushQueued = false;
    const group: PendingWrite[] = [];
    let size = 0;
    while (this.pendingWrites.length > 0) {
      const next = this.pendingWrites[0] as PendingWrite;
      if (group.length > 0 && size + next.points.length > MAX_GROUP_POINTS) break;
      if (group.length > 0 && next.segments !== group[0]?.segments) break;
      group.push(next);
      size += next.points.length;
      this.pendingWrites.shift();
    }
    // Whatever did not fit goes in the next write.
    if (this.pendingWrites.length > 0) this.scheduleFlush();
    if (group.length === 0) return;
    const all = group.flatMap((g) => g.points);
    try {
      const table = this.table();
      const applied = group[0]?.segments
        ? await this.writeSegmentGroup(table, all)
        : await this.write(table, all);
      let offset = 0;
      for (const g of group) {
        g.resolve(applied.slice(offset, offset + g.points.length));
        offset += g.points.length;
      }
    } catch (err) {
      const error = toStoreError('write points to LanceDB', err);
      for (const g of group) g.reject(error);
    }
    this.scheduleMaintenance();
  }

  /** One merge of `points` (latest wins by seq, also against what is stored). */
  private write(table: Table, points: readonly VectorPoint[]): Promise<boolean[]> {
    return writeLatest(points, (candidates) => this.writeCandidates(table, candidates));
  }

  /**
   * One segment-wise write of `points` (VectorStore.writeSegments), under the write mutex, so the
   * table changes only here meanwhile. Reads the stored points of the batch's segments (a row
   * written before chunking has no segment_point_id: it is found by its id, the segment's point
   * id); per segment, the greatest seq stored or in the batch wins: the batch's points of that
   * seq go through the per-id latest-wins merge (`write`), every other point of the batch is not
   * applied; then the segment's stored points below that seq that the merge did not replace (an
   * older text's surplus chunks, or an older job's written by `upsert`) are deleted, from the
   * table and the in-memory indexes alike. One query, one merge and at most one delete.
   */
  private async writeSegmentGroup(
    table: Table,
    points: readonly VectorPoint[],
  ): Promise<boolean[]> {
    const keyOf = (p: VectorPoint) => segmentKey(p.payload.org_id, p.payload.segment_point_id);
    const list = [...new Set(points.map((p) => p.payload.segment_point_id))]
      .map(sqlString)
      .join(', ');
    const rows = (
      (await table
        .query()
        .where(`segment_point_id IN (${list}) OR id IN (${list})`)
        .select(['id', 'org_id', 'segment_point_id', 'seq'])
        .toArray()) as {
        id: string;
        org_id: string;
        segment_point_id: string | null;
        seq: bigint | number;
      }[]
    ).map((r) => ({
      id: String(r.id),
      key: segmentKey(String(r.org_id), String(r.segment_point_id ?? r.id)),
      seq: Number(r.seq),
    }));
    // Each segment's greatest seq, stored or in the batch: the seq it converges to.
    const newest = new Map<string, number>();
    for (const p of points) {
      const key = keyOf(p);
      newest.set(key, Math.max(newest.get(key) ?? -Infinity, p.payload.seq));
    }
    for (const r of rows) {
      const seq = newest.get(r.key);
      if (seq !== undefined && r.seq > seq) newest.set(r.key, r.seq);
    }
    const eligible = points.filter((p) => p.payload.seq === newest.get(keyOf(p)));
    const written = eligible.length > 0 ? await this.write(table, eligible) : [];
    const applied = new Map<VectorPoint, boolean>(eligible.map((p, i) => [p, written[i] === true]));
    if (eligible.length > 0) this.options.hooks?.afterSegmentWrite?.(eligible);
    const replaced = new Set(eligible.filter((_, i) => written[i]).map((p) => p.id));
    const doomed = rows
      .filter((r) => r.seq < (newest.get(r.key) ?? -Infinity) && !replaced.has(r.id))
      .map((r) => r.id);
    if (doomed.length > 0) {
      const result = await table.delete(`id IN (${doomed.map(sqlString).join(', ')})`);
      if (result.numDeletedRows > 0) this.writesSinceOptimize++;
      for (const id of doomed) {
        this.memory?.remove(id);
        this.keywords.remove(id);
      }
    }
    return points.map((p) => applied.get(p) === true);
  }

  /** Merges each candidate unless a newer seq is stored; which of them won. */
  private async writeCandidates(
    table: Table,
    candidates: readonly VectorPoint[],
  ): Promise<boolean[]> {
    const stored = new Map<string, number>();
    const ids = candidates.map((c) => sqlString(c.id)).join(', ');
    const rows = await table
      .query()
      .where(`id IN (${ids})`)
      .select(['id', 'seq'])
      .limit(candidates.length)
      .toArray();
    for (const row of rows as { id: string; seq: bigint | number }[]) {
      stored.set(row.id, Number(row.seq));
    }
    const wins = candidates.map((c) => {
      const seq = stored.get(c.id);
      return seq === undefined || seq <= c.payload.seq;
    });
    const winners = candidates.filter((_, i) => wins[i]);
    if (winners.length > 0) {
      await table
        .mergeInsert('id')
        // The guard repeats the check in the engine, for a writer outside this process.
        .whenMatchedUpdateAll({ where: 'target.seq <= source.seq' })
        .whenNotMatchedInsertAll()
        .execute(lancedb.makeArrowTable(winners.map(toRow), { schema: this.schema as Schema }));
      this.writesSinceOptimize++;
      this.writeCount++;
      for (const w of winners) this.keywords.put(w.id, w.terms, w.payload);
      const memory = this.memory;
      if (memory) {
        for (const w of winners) memory.put(w.id, w.vector, w.payload);
        if (memory.size > this.memoryIndexMaxRows) {
          // Large now: LanceDB's ANN index (built by maintenance) serves searches from here on.
          this.memory = null;
          this.options.logger?.info('in-memory search index released', { rows: memory.size });
        }
      }
    }
    return wins;
  }

  memoryIndexStats(): { points: number; vectorBytes: number } | null {
    const memory = this.memory;
    return memory ? { points: memory.size, vectorBytes: memory.vectorBytes } : null;
  }

  /** Whether searches are answered from the in-memory index (the table is small). */
  get servesFromMemory(): boolean {
    return this.memory !== null;
  }

  /** Merges written so far: a group commit of many upserts counts once. */
  get mergeCount(): number {
    return this.writeCount;
  }

  /**
   * Dense: the in-memory scan or LanceDB's vector search. Keyword: BM25 from the keyword index.
   * Hybrid: both rankings, each scoped and filtered, `candidates` deep, fused (fusion.ts).
   */
  async search(params: SearchParams): Promise<SearchHit[]> {
    this.table();
    const mode = params.mode ?? 'dense';
    if (mode === 'dense') {
      const hits = await this.denseSearch(params);
      return params.explain ? annotate(hits, hits, null) : hits;
    }
    if (!params.terms) throw new StoreError(`a ${mode} search needs the query's terms`);
    const terms = params.terms;
    if (mode === 'keyword') {
      const hits = this.keywords.search({ ...params, terms });
      return params.explain ? annotate(hits, null, hits) : hits;
    }
    const limit = hybridCandidates(params.limit, params.candidates);
    // The dense search runs on LanceDB's threads (or yields between blocks) while the keyword
    // index is scored on this one: hybrid costs about the slower of the two, not their sum.
    const pending = this.denseSearch({ ...params, limit }, params.limit);
    let keyword: SearchHit[];
    try {
      keyword = this.keywords.search({ ...params, terms, limit });
    } catch (err) {
      await pending.catch(() => undefined);
      throw err;
    }
    const dense = await pending;
    return fuse(dense, keyword, params.fusion ?? DEFAULT_FUSION, params.limit, params.explain);
  }

  /**
   * The points nearest the query vector, best first (cosine). With an ANN index, LanceDB re-ranks
   * REFINE_FACTOR × `exactTop` of its approximate candidates on the full vectors, so the best
   * `exactTop` are the exact nearest among them and every score is an exact cosine. A hybrid
   * search asks for `hybridCandidates` hits but needs no more refined than a dense search of its
   * limit: the same ANN work and the same top of the ranking, at the cost of a dense search.
   * A scope of at most EXACT_SCOPE_MAX_ROWS rows is searched exactly (denseQuery).
   */
  private async denseSearch(params: SearchParams, exactTop = params.limit): Promise<SearchHit[]> {
    if (!params.vector) throw new StoreError('a dense search needs the query vector');
    const vector = params.vector;
    if (this.memory) return this.memory.search({ ...params, vector });
    try {
      const query = await this.denseQuery(params, vector, exactTop);
      const rows = (await query.toArray()) as (Record<string, unknown> & { _distance: number })[];
      return rows
        .map((row) => ({
          id: String(row.id),
          score: Math.max(-1, Math.min(1, 1 - row._distance)),
          payload: payloadFromRecord(String(row.id), row),
        }))
        .sort((a, b) => b.score - a.score);
    } catch (err) {
      throw toStoreError('search LanceDB', err);
    }
  }

  /**
   * LanceDB's own account of a dense search exactly as denseSearch would run it (its analyzePlan:
   * the operators with the rows each read and compared), or null while the in-memory index
   * serves searches (it scans the scope's own partition and nothing else).
   */
  async explainDenseSearch(params: SearchParams): Promise<string | null> {
    if (!params.vector) throw new StoreError('a dense search needs the query vector');
    if (this.memory) return null;
    return (await this.denseQuery(params, params.vector, params.limit)).analyzePlan();
  }

  /** Rows per search scope, each counted when the table had seen `atWrite` merges. */
  private readonly scopeRows = new Map<string, { rows: number; atWrite: number }>();

  /**
   * Whether a scope is small enough for an exact scan (`exactScopeMaxRows`). Its count is
   * cached: a small scope's until the next merge, a scope of more than twice the limit for good
   * (it stays large unless most of it is deleted; its searches then keep the ANN index).
   */
  private async isSmallScope(table: Table, scope: string): Promise<boolean> {
    const max = this.options.exactScopeMaxRows ?? EXACT_SCOPE_MAX_ROWS;
    if (max <= 0) return false;
    const cached = this.scopeRows.get(scope);
    if (cached && (cached.atWrite === this.writeCount || cached.rows > 2 * max)) {
      return cached.rows <= max;
    }
    const atWrite = this.writeCount;
    const rows = await table.countRows(scope);
    if (this.scopeRows.size >= 10_000) this.scopeRows.clear();
    this.scopeRows.set(scope, { rows, atWrite });
    return rows <= max;
  }

  /** The LanceDB query of a dense search (the caller's scope and filters as a prefilter). */
  private async denseQuery(params: SearchParams, vector: Float32Array, exactTop: number) {
    const table = this.table();
    const scope = [
      `org_id = ${sqlString(params.orgId)}`,
      `model = ${sqlString(params.model)}`,
      `model_ver = ${sqlString(params.modelVer)}`,
    ];
    const filters = [...scope];
    if (params.assetId !== undefined) filters.push(`asset_id = ${sqlString(params.assetId)}`);
    if (params.segmentId !== undefined) filters.push(`segment_id = ${sqlString(params.segmentId)}`);
    filters.push(...payloadConditions(params.filters));
    let query = table
      .vectorSearch(vector)
      .distanceType('cosine')
      .where(filters.join(' AND '))
      .select(SELECT_COLUMNS)
      .limit(params.limit);
    if (this.hasVectorIndex) {
      if (await this.isSmallScope(table, scope.join(' AND '))) {
        query = query.bypassVectorIndex();
      } else {
        const refine = Math.max(1, Math.ceil((REFINE_FACTOR * exactTop) / params.limit));
        query = query.refineFactor(refine).ef(Math.max(HNSW_EF, refine * params.limit));
      }
    }
    return query;
  }

  async delete(params: DeleteParams): Promise<number> {
    this.table();
    // A point id deletes its whole segment (a row written before chunking is its own segment).
    const target =
      params.pointId !== undefined
        ? `(id = ${sqlString(params.pointId)} OR segment_point_id = ${sqlString(params.pointId)})`
        : `asset_id = ${sqlString(params.assetId)}`;
    return this.writes.run(async () => {
      try {
        const table = this.table();
        const result = await table.delete(`org_id = ${sqlString(params.orgId)} AND ${target}`);
        if (result.numDeletedRows > 0) this.writesSinceOptimize++;
        const selected = (id: string, p: PointPayload) =>
          params.pointId !== undefined
            ? id === params.pointId || p.segment_point_id === params.pointId
            : p.asset_id === params.assetId;
        this.memory?.deleteWhere(params.orgId, selected);
        this.keywords.deleteWhere(params.orgId, selected);
        return result.numDeletedRows;
      } catch (err) {
        throw toStoreError('delete from LanceDB', err);
      }
    });
  }

  async count(params: { orgId: string }): Promise<number> {
    this.table();
    try {
      return await this.using((table) => table.countRows(`org_id = ${sqlString(params.orgId)}`));
    } catch (err) {
      throw toStoreError('count LanceDB rows', err);
    }
  }

  async health(): Promise<void> {
    const table = this.table();
    if (!table.isOpen()) throw new StoreError('the LanceDB table is closed');
    await this.using((t) => t.countRows());
  }

  /** Whether the table has an ANN index on `vector` (built once it is large). */
  async hasAnnIndex(): Promise<boolean> {
    return (await this.using((t) => t.listIndices())).some((i) => i.columns.includes('vector'));
  }

  /** Resolves when background maintenance (index build, compaction) has finished. */
  async idle(): Promise<void> {
    await this.maintenance;
  }

  async close(): Promise<void> {
    this.maintenanceRequested = false;
    await this.maintenance;
    await this.writes.run(async () => undefined);
    for (const table of [...this.retired.keys()]) this.closeRetired(table);
    this.tbl?.close();
    this.db?.close();
    this.tbl = null;
    this.db = null;
    this.memory = null;
    this.keywords = new KeywordIndex();
  }

  /**
   * Background upkeep after writes: build the ANN index once the table is large, and compact
   * the small fragments that frequent merges leave behind. One pass runs at a time; a request
   * that arrives meanwhile runs another pass after it. Failures are logged, not thrown.
   */
  private scheduleMaintenance(): void {
    if (this.hasVectorIndex && this.writesSinceOptimize < this.optimizeEveryWrites) return;
    this.maintenanceRequested = true;
    if (this.maintenanceRunning) return;
    this.maintenanceRunning = true;
    this.maintenance = (async () => {
      while (this.maintenanceRequested && this.tbl) {
        this.maintenanceRequested = false;
        await this.maintain();
      }
    })().finally(() => {
      this.maintenanceRunning = false;
    });
  }

  private async maintain(): Promise<void> {
    try {
      const table = this.table();
      let optimize = this.writesSinceOptimize >= this.optimizeEveryWrites;
      if (!this.hasVectorIndex && (await table.countRows()) >= this.vectorIndexThreshold) {
        const started = Date.now();
        // Built outside the write mutex: LanceDB commits concurrent appends and index builds.
        await table.createIndex('vector', {
          config: lancedb.Index.hnswSq({ distanceType: 'cosine' }),
        });
        this.hasVectorIndex = true;
        this.options.logger?.info('vector index built', { duration_ms: Date.now() - started });
        optimize = true;
      }
      if (optimize) {
        await this.writes.run(() => this.compact());
      }
    } catch (err) {
      this.options.logger?.warn('vector store maintenance failed', {
        error: err instanceof Error ? err.name : 'unknown',
      });
    }
  }

  /**
   * Under the write mutex: compaction and index upkeep, then the clean-up of old versions, then,
   * every reopenEveryWrites writes, a reopen. Every merge that updates rows writes a version (a
   * manifest, a fragment of the new rows, deletion files for the old ones, index deltas): kept
   * for a fixed time (it was 10 minutes), a steady stream of overwrites keeps every one of them
   * on disk, ~130 KiB a write. Clean-up by supersession (cleanupCutoff) keeps only what a read in
   * flight may use, so disk stays at the live data and the last grace period's versions.
   */
  private async compact(): Promise<void> {
    const writes = this.writesSinceOptimize;
    this.writesSinceOptimize = 0;
    this.writesSinceReopen += writes;
    const table = this.table();
    // Compaction and index upkeep, pruning nothing (a cut-off before any version): the prune
    // inside optimize() measures its cut-off after the compaction, however long that took.
    await table.optimize({ cleanupOlderThan: new Date(0) });
    const cutoff = await this.cleanupCutoff(table);
    await table.optimize({ cleanupOlderThan: cutoff });
    const every = this.hasVectorIndex ? this.reopenEveryWrites * 10 : this.reopenEveryWrites;
    if (this.reopenEveryWrites > 0 && this.writesSinceReopen >= every) await this.reopen();
  }

  private table(): Table {
    if (!this.tbl) throw new StoreError('the LanceDB store is not open');
    return this.tbl;
  }
}

/** A point as its table row (the bench writes rows exactly so). */
export function toRow(p: VectorPoint): Record<string, unknown> {
  return {
    id: p.id,
    vector: p.vector,
    ...p.payload,
    seq: BigInt(p.payload.seq),
    kw_ids: p.terms ? Array.from(p.terms.ids) : null,
    kw_tfs: p.terms ? Array.from(p.terms.tfs) : null,
    kw_len: p.terms ? p.terms.length : null,
  };
}

/**
 * Calls `each` for every row of a query result: its id, its other columns by name, and its payload
 * (PAYLOAD_FIELDS, which the query must select).
 */
function forEachRow(
  data: ArrowTable,
  each: (id: string, column: (name: string) => unknown, payload: PointPayload) => void,
): void {
  for (const batch of data.batches) {
    const ids = batch.getChild('id');
    const payloadColumns = PAYLOAD_FIELDS.map((field) => [field, batch.getChild(field)] as const);
    const columns = new Map<string, ReturnType<typeof batch.getChild>>();
    for (let i = 0; i < batch.numRows; i++) {
      const record: Record<string, unknown> = {};
      for (const [field, column] of payloadColumns) record[field] = column?.get(i);
      const column = (name: string): unknown => {
        if (!columns.has(name)) columns.set(name, batch.getChild(name));
        return columns.get(name)?.get(i);
      };
      const id = String(ids?.get(i));
      each(id, column, payloadFromRecord(id, record));
    }
  }
}
