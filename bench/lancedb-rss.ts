/**
 * `npx tsx bench/lancedb-rss.ts [options]`: LanceDB alone, no embedder — does the process's
 * resident memory grow with every write? Writes `--rows`-row batches of 384-d vectors into a
 * fresh table and prints RSS (and its anonymous and file-backed parts) every `--every` writes.
 * Ids cycle over `--keyspace` rows, so the table does not grow and every write updates rows (set
 * it to 0 for ever-new ids, an ingest of new data). Allocator experiments go through the
 * environment: `MALLOC_ARENA_MAX=2 npx tsx …` (what the embedder's images set),
 * `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 npx tsx …`.
 *
 *   --writes N      writes in all (default 3000)
 *   --rows N        rows per write (default 32)
 *   --keyspace N    distinct ids (default 4096; 0 = every row new)
 *   --mode M        merge (mergeInsert upsert, as the embedder) or add (default merge)
 *   --cache-mib N   bound LanceDB's index and metadata caches to N MiB each (default: LanceDB's)
 *   --reopen N      close and reopen the table every N writes (default never)
 *   --reconnect N   drop the connection and its Session (LanceDB's caches) and connect afresh
 *                   every N writes (default never)
 *   --indexes 1     a btree index on id, and a lookup of the batch's ids before each merge (as the
 *                   embedder's latest-wins check does)
 *   --optimize N    optimize (compact, clean up old versions) every N writes (default 100)
 *   --keep-seconds N  versions younger than N seconds survive each clean-up (default 1)
 *   --every N       print every N writes (default 500)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { scriptOptions } from '../scripts/lib/script-options.js';
import { diskUsage } from './lib/soak-disk.js';

const o = scriptOptions({
  writes: 3000,
  rows: 32,
  keyspace: 4096,
  mode: 'merge',
  'cache-mib': NaN,
  reopen: 0,
  reconnect: 0,
  indexes: 0,
  optimize: 100,
  'keep-seconds': 1,
  every: 500,
});
const { writes, rows: rowsPerWrite, keyspace, reopen: reopenEvery, every } = o;
const reconnectEvery = o.reconnect;
const optimizeEvery = o.optimize;
const keepMs = o['keep-seconds'] * 1000;
if (o.mode !== 'merge' && o.mode !== 'add') throw new Error('--mode is merge or add');
const DIM = 384;

const dir = mkdtempSync(path.join(os.tmpdir(), 'lancedb-rss-'));
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
/** Anonymous (heap, arenas) and file-backed (mapped files) resident memory, from /proc. */
function rssParts(): string {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kib = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return `${(kib('RssAnon') / 1024).toFixed(0)}\t${(kib('RssFile') / 1024).toFixed(0)}`;
}
const row = (i: number) => ({
  id: `p${i}`,
  org_id: 'org',
  seq: BigInt(i),
  vector: Array.from({ length: DIM }, (_, k) => Math.sin(i * 0.37 + k)),
});

async function main(): Promise<void> {
  const cacheBytes = Number.isNaN(o['cache-mib']) ? null : BigInt(o['cache-mib'] * 2 ** 20);
  const connect = () =>
    lancedb.connect(
      dir,
      {},
      cacheBytes === null ? undefined : new lancedb.Session(cacheBytes, cacheBytes),
    );
  let db = await connect();
  let table = await db.createTable('t', [row(-1)]);
  if (o.indexes > 0) await table.createIndex('id', { config: lancedb.Index.btree() });
  console.log(
    `lancedb ${o.mode}, ${rowsPerWrite} rows/write, keyspace ${keyspace || 'unbounded'}, ` +
      `MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? 'unset'}, LD_PRELOAD=${process.env.LD_PRELOAD ?? 'unset'}`,
  );
  const report = (writesSoFar: number) => {
    const m = process.memoryUsage();
    const disk = diskUsage(dir);
    console.log(
      `${writesSoFar}\t${mib(m.rss)}\t${mib(m.heapUsed)}\t${rssParts()}\t${mib(disk.bytes)}\t${disk.versions}`,
    );
  };
  console.log(`writes\trss_mib\theap_mib\tanon_mib\tfile_mib\tdisk_mib\tversions`);
  report(0);
  let next = 0;
  for (let w = 1; w <= writes; w++) {
    const rows = Array.from({ length: rowsPerWrite }, () =>
      row(keyspace > 0 ? next++ % keyspace : next++),
    );
    if (o.indexes > 0) {
      await table
        .query()
        .where(`id IN (${rows.map((r) => `'${r.id}'`).join(', ')})`)
        .select(['id', 'seq'])
        .toArray();
    }
    if (o.mode === 'add') await table.add(rows);
    else {
      await table.mergeInsert('id').whenMatchedUpdateAll().whenNotMatchedInsertAll().execute(rows);
    }
    if (optimizeEvery > 0 && w % optimizeEvery === 0) {
      await table.optimize({ cleanupOlderThan: new Date(Date.now() - keepMs) });
    }
    if (reconnectEvery > 0 && w % reconnectEvery === 0) {
      table.close();
      db.close();
      db = await connect();
      table = await db.openTable('t');
    }
    if (reopenEvery > 0 && w % reopenEvery === 0) {
      table.close();
      table = await db.openTable('t');
    }
    if (w % every === 0) report(w);
  }
  table.close();
  db.close();
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
