/** Direct reads of the stack's PostgreSQL, for assertions the public API cannot make. */
import pg from 'pg';

export type JobStatus = 'QUEUED' | 'PROCESSING' | 'SUCCEEDED' | 'FAILED';

export class DbProbe {
  private readonly pool: pg.Pool;

  constructor(databaseUrl: string) {
    this.pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  }

  async query<T extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    params: unknown[] = [],
  ): Promise<T[]> {
    return (await this.pool.query<T>(sql, params)).rows;
  }

  /** Rows in `jobs` and `outbox` (all tenants). */
  async counts(): Promise<{ jobs: number; outbox: number }> {
    const [row] = await this.query<{ jobs: string; outbox: string }>(
      'SELECT (SELECT count(*) FROM jobs) AS jobs, (SELECT count(*) FROM outbox) AS outbox',
    );
    return { jobs: Number(row!.jobs), outbox: Number(row!.outbox) };
  }

  async jobCount(org: string): Promise<number> {
    const [row] = await this.query<{ n: string }>(
      'SELECT count(*) AS n FROM jobs WHERE org_id = $1',
      [org],
    );
    return Number(row!.n);
  }

  /** How many of `ids` are in each status. */
  async statusCounts(ids: string[]): Promise<Record<JobStatus, number>> {
    const out: Record<JobStatus, number> = { QUEUED: 0, PROCESSING: 0, SUCCEEDED: 0, FAILED: 0 };
    const rows = await this.query<{ status: JobStatus; n: string }>(
      'SELECT status, count(*) AS n FROM jobs WHERE id = ANY($1::uuid[]) GROUP BY status',
      [ids],
    );
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  /**
   * Waits until every job in `ids` is SUCCEEDED or FAILED; returns the counts. Throws with the
   * counts when `timeoutMs` passes first.
   */
  async waitTerminal(
    ids: string[],
    timeoutMs: number,
    onPoll?: (counts: Record<JobStatus, number>) => void,
  ): Promise<Record<JobStatus, number>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const counts = await this.statusCounts(ids);
      onPoll?.(counts);
      if (counts.SUCCEEDED + counts.FAILED === ids.length) return counts;
      if (Date.now() > deadline) {
        throw new Error(`jobs not terminal after ${timeoutMs} ms: ${JSON.stringify(counts)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Every row of every table in the database's user schemas, as text (for PII scans). */
  async dumpAllTables(): Promise<Map<string, string>> {
    const tables = await this.query<{ schema: string; name: string }>(
      `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
       WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
    );
    const out = new Map<string, string>();
    for (const t of tables) {
      const ident = `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.name)}`;
      const rows = await this.query<{ row: string }>(`SELECT t::text AS row FROM ${ident} t`);
      out.set(`${t.schema}.${t.name}`, rows.map((r) => r.row).join('\n'));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
