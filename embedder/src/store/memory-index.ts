/**
 * An exact, in-memory copy of a vector table's search data, for the embedded store while its
 * table is small enough to hold in memory. LanceDB pays a fixed ~20-30 ms per vector query on
 * 2 cores (query planning, reading and decoding the fragments) however few rows the tenant has;
 * a scan of the tenant's own vectors (contiguous 8,192-row blocks) costs ~0.8 ms per 1,000 384-d
 * points.
 *
 * Points are partitioned by (org, model, model version), the scope every search has, so a scan
 * reads only the caller's vectors. The copy holds vectors and the non-sensitive payload, never
 * text. Its owner keeps it in step with the table: it applies exactly the writes and deletes the
 * table committed, after they commit.
 */
import type { PayloadFilters, PointPayload, SearchHit, SearchParams } from './types.js';
import { isoInstant } from './types.js';
import { sumOfSquares } from '../core/vector.js';

/**
 * Rows per block of a partition's vectors, and rows scanned between yields to the event loop (so
 * a large tenant never blocks other work). A partition holds its vectors in blocks of this many
 * rows; only its last block grows (by doubling, from 16 rows), so a large partition never
 * reallocates and copies what it already holds, and its spare capacity stays under one block.
 */
const BLOCK_ROWS = 8192;
const BLOCK_SHIFT = 13;
const FIRST_BLOCK_ROWS = 16;

interface Block {
  /** BLOCK_ROWS (or, for a growing last block, fewer) rows of `dim` floats. */
  vectors: Float32Array;
  /** 1 / |v| per row (0 for a zero vector), so scores are exact cosines. */
  inverseNorms: Float32Array;
}

class Partition {
  ids: string[] = [];
  payloads: PointPayload[] = [];
  blocks: Block[] = [];

  constructor(private readonly dim: number) {}

  get size(): number {
    return this.ids.length;
  }

  /** Bytes of the vector and norm arrays, spare capacity included. */
  get bytes(): number {
    let bytes = 0;
    for (const b of this.blocks) bytes += b.vectors.byteLength + b.inverseNorms.byteLength;
    return bytes;
  }

  /** Appends a point; returns its slot. */
  add(id: string, vector: Float32Array, payload: PointPayload): number {
    const slot = this.ids.length;
    const blockIndex = slot >> BLOCK_SHIFT;
    const row = slot & (BLOCK_ROWS - 1);
    const block = this.blocks[blockIndex];
    if (!block) this.blocks.push(this.newBlock(FIRST_BLOCK_ROWS));
    else if (row >= block.inverseNorms.length) this.growLastBlock(row * 2);
    this.ids.push(id);
    this.payloads.push(payload);
    this.set(slot, vector, payload);
    return slot;
  }

  set(slot: number, vector: Float32Array, payload: PointPayload): void {
    const block = this.blocks[slot >> BLOCK_SHIFT] as Block;
    const row = slot & (BLOCK_ROWS - 1);
    block.vectors.set(vector, row * this.dim);
    const sum = sumOfSquares(vector);
    block.inverseNorms[row] = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    this.payloads[slot] = payload;
  }

  /** Removes a slot by moving the last point into it; returns the id that moved, if any. */
  remove(slot: number): string | null {
    const last = this.ids.length - 1;
    let moved: string | null = null;
    const lastBlock = this.blocks[last >> BLOCK_SHIFT] as Block;
    const lastRow = last & (BLOCK_ROWS - 1);
    if (slot !== last) {
      moved = this.ids[last] as string;
      this.ids[slot] = moved;
      this.payloads[slot] = this.payloads[last] as PointPayload;
      const block = this.blocks[slot >> BLOCK_SHIFT] as Block;
      const row = slot & (BLOCK_ROWS - 1);
      block.vectors.set(
        lastBlock.vectors.subarray(lastRow * this.dim, (lastRow + 1) * this.dim),
        row * this.dim,
      );
      block.inverseNorms[row] = lastBlock.inverseNorms[lastRow] as number;
    }
    this.ids.pop();
    this.payloads.pop();
    // A block left empty is released.
    if (lastRow === 0) this.blocks.pop();
    return moved;
  }

  private newBlock(rows: number): Block {
    return {
      vectors: new Float32Array(rows * this.dim),
      inverseNorms: new Float32Array(rows),
    };
  }

  private growLastBlock(rows: number): void {
    const old = this.blocks.at(-1) as Block;
    const grown = this.newBlock(Math.min(rows, BLOCK_ROWS));
    grown.vectors.set(old.vectors);
    grown.inverseNorms.set(old.inverseNorms);
    this.blocks[this.blocks.length - 1] = grown;
  }
}

interface Location {
  partition: Partition;
  key: string;
  slot: number;
}

export function partitionKey(org: string, model: string, modelVer: string): string {
  return JSON.stringify([org, model, modelVer]);
}

/** A predicate for the optional filters of a search, equal to the stores' server-side ones. */
export function matcher(params: SearchParams): ((p: PointPayload) => boolean) | null {
  const tests: ((p: PointPayload) => boolean)[] = [];
  const { assetId, segmentId, filters } = params;
  if (assetId !== undefined) tests.push((p) => p.asset_id === assetId);
  if (segmentId !== undefined) tests.push((p) => p.segment_id === segmentId);
  const f: PayloadFilters = filters ?? {};
  if (f.assetIds && f.assetIds.length > 0) {
    const set = new Set(f.assetIds);
    tests.push((p) => set.has(p.asset_id));
  }
  if (f.segmentIds && f.segmentIds.length > 0) {
    const set = new Set(f.segmentIds);
    tests.push((p) => set.has(p.segment_id));
  }
  if (f.truncated !== undefined) {
    const want = f.truncated;
    tests.push((p) => p.truncated === want);
  }
  // embedded_at is stored in Date.toISOString() form, so string order is time order.
  if (f.embeddedAfter !== undefined) {
    const after = isoInstant(f.embeddedAfter);
    tests.push((p) => p.embedded_at >= after);
  }
  if (f.embeddedBefore !== undefined) {
    const before = isoInstant(f.embeddedBefore);
    tests.push((p) => p.embedded_at < before);
  }
  if (tests.length === 0) return null;
  if (tests.length === 1) return tests[0] as (p: PointPayload) => boolean;
  return (p) => tests.every((t) => t(p));
}

export class MemoryIndex {
  private readonly partitions = new Map<string, Partition>();
  private readonly byId = new Map<string, Location>();

  constructor(private readonly dim: number) {}

  /** Points held. */
  get size(): number {
    return this.byId.size;
  }

  /** Bytes of the vector and norm arrays, spare capacity included. */
  get vectorBytes(): number {
    let bytes = 0;
    for (const p of this.partitions.values()) bytes += p.bytes;
    return bytes;
  }

  /** Inserts or replaces a point (the caller has already decided latest-wins). */
  put(id: string, vector: Float32Array, payload: PointPayload): void {
    const key = partitionKey(payload.org_id, payload.model, payload.model_ver);
    const at = this.byId.get(id);
    if (at && at.key === key) {
      at.partition.set(at.slot, vector, payload);
      return;
    }
    if (at) this.removeAt(id, at);
    let partition = this.partitions.get(key);
    if (!partition) {
      partition = new Partition(this.dim);
      this.partitions.set(key, partition);
    }
    const slot = partition.add(id, vector, payload);
    this.byId.set(id, { partition, key, slot });
  }

  /** Removes a point; whether it was held. */
  remove(id: string): boolean {
    const at = this.byId.get(id);
    if (!at) return false;
    this.removeAt(id, at);
    return true;
  }

  /** Removes the points of `orgId` that `match` selects; returns how many. */
  deleteWhere(orgId: string, match: (id: string, p: PointPayload) => boolean): number {
    const doomed: string[] = [];
    for (const [id, at] of this.byId) {
      const payload = at.partition.payloads[at.slot] as PointPayload;
      if (payload.org_id === orgId && match(id, payload)) doomed.push(id);
    }
    for (const id of doomed) this.removeAt(id, this.byId.get(id) as Location);
    return doomed.length;
  }

  /** Exact cosine top-k within the caller's (org, model, version), best first. */
  async search(params: SearchParams & { vector: Float32Array }): Promise<SearchHit[]> {
    const key = partitionKey(params.orgId, params.model, params.modelVer);
    const partition = this.partitions.get(key);
    if (!partition || partition.size === 0 || params.limit <= 0) return [];
    const dim = this.dim;
    const q = params.vector;
    const qSum = sumOfSquares(q);
    const qInverse = qSum > 0 ? 1 / Math.sqrt(qSum) : 0;
    const accept = matcher(params);
    // The best `limit` so far, kept sorted by score (descending); limit is at most a few hundred. Hits are
    // captured as found: a write during a yield may move slots, never a captured hit.
    const topHits: { id: string; payload: PointPayload }[] = [];
    const topScores: number[] = [];
    const rows = partition.size;
    for (let start = 0; start < rows; start += BLOCK_ROWS) {
      if (start > 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        // Writes during the yield may have emptied the partition or moved its last rows.
        if (partition !== this.partitions.get(key)) break;
      }
      const block = partition.blocks[start >> BLOCK_SHIFT];
      if (!block) break;
      const { vectors, inverseNorms } = block;
      const { payloads } = partition;
      const end = Math.min(rows, start + BLOCK_ROWS, partition.size);
      for (let slot = start; slot < end; slot++) {
        if (accept !== null && !accept(payloads[slot] as PointPayload)) continue;
        const row = slot - start;
        const o = row * dim;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        let k = 0;
        for (; k + 3 < dim; k += 4) {
          s0 += (vectors[o + k] as number) * (q[k] as number);
          s1 += (vectors[o + k + 1] as number) * (q[k + 1] as number);
          s2 += (vectors[o + k + 2] as number) * (q[k + 2] as number);
          s3 += (vectors[o + k + 3] as number) * (q[k + 3] as number);
        }
        for (; k < dim; k++) s0 += (vectors[o + k] as number) * (q[k] as number);
        const score = (s0 + s1 + s2 + s3) * (inverseNorms[row] as number) * qInverse;
        if (topScores.length === params.limit && score <= (topScores.at(-1) as number)) continue;
        let i = topScores.length;
        while (i > 0 && (topScores[i - 1] as number) < score) i--;
        topScores.splice(i, 0, score);
        topHits.splice(i, 0, {
          id: partition.ids[slot] as string,
          payload: payloads[slot] as PointPayload,
        });
        if (topScores.length > params.limit) {
          topScores.pop();
          topHits.pop();
        }
      }
    }
    return topHits.map((hit, i) => ({
      id: hit.id,
      score: Math.max(-1, Math.min(1, topScores[i] as number)),
      payload: hit.payload,
    }));
  }

  private removeAt(id: string, at: Location): void {
    const moved = at.partition.remove(at.slot);
    if (moved !== null) {
      const movedAt = this.byId.get(moved) as Location;
      movedAt.slot = at.slot;
    }
    this.byId.delete(id);
    if (at.partition.size === 0) this.partitions.delete(at.key);
  }
}
