/**
 * Reads the embedder's embedded vector store (LanceDB) from the test process: exact point counts
 * per tenant and the stored job of a point, independent of search ranking or limits. For a stack
 * whose embedder uses a live Qdrant (HEIMDEX_TEST_QDRANT_URL), it reads that stack's collection.
 */
import * as lancedb from '@lancedb/lancedb';
import { qdrantProbeFor } from './qdrant.js';

/** A SQL string literal for LanceDB filters: quotes doubled. */
const sqlString = (value: string) => `'${value.replaceAll("'", "''")}'`;

export interface StoredPoint {
  id: string;
  org_id: string;
  asset_id: string;
  segment_id: string;
  job_id: string;
  seq: number;
}

export class VectorProbe {
  constructor(
    private readonly dataDir: string,
    private readonly tableName = 'points',
  ) {}

  private async table(): Promise<lancedb.Table> {
    // readConsistencyInterval 0: every read sees the embedder's latest committed version.
    const db = await lancedb.connect(this.dataDir, { readConsistencyInterval: 0 });
    return db.openTable(this.tableName);
  }

  async count(org: string): Promise<number> {
    const qdrant = qdrantProbeFor(this.dataDir);
    if (qdrant) return qdrant.count(org);
    const t = await this.table();
    try {
      return await t.countRows(`org_id = ${sqlString(org)}`);
    } finally {
      t.close();
    }
  }

  /** Every stored point of `org` (no vectors). */
  async points(org: string): Promise<StoredPoint[]> {
    const qdrant = qdrantProbeFor(this.dataDir);
    if (qdrant) return qdrant.points(org);
    const t = await this.table();
    try {
      const rows = (await t
        .query()
        .where(`org_id = ${sqlString(org)}`)
        .select(['id', 'org_id', 'asset_id', 'segment_id', 'job_id', 'seq'])
        .toArray()) as Array<Omit<StoredPoint, 'seq'> & { seq: bigint | number }>;
      return rows.map((r) => ({
        id: String(r.id),
        org_id: String(r.org_id),
        asset_id: String(r.asset_id),
        segment_id: String(r.segment_id),
        job_id: String(r.job_id),
        seq: Number(r.seq),
      }));
    } finally {
      t.close();
    }
  }
}
