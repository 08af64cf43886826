/**
 * The embedded store's upkeep under a stream of overwrites (issue 18): old table versions are
 * cleaned up once no read can still be on them, so disk stays bounded; the table is reopened on a
 * fresh connection every few writes (LanceDB keeps native memory per version written), and reads
 * and writes running across a reopen keep their answers.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LanceDbStore } from '../src/store/lancedb.js';
import type { LanceDbStoreOptions } from '../src/store/lancedb.js';
import type { VectorPoint } from '../src/store/types.js';
import { tempDir } from './helpers.js';
import { DIM, MODEL, point as storePoint, unit } from './store-fixtures.js';

/** Segment `segment` of asset a1 of acme, written by job `seq`, its vector turning with seq. */
function point(segment: number, seq: number): Promise<VectorPoint> {
  return storePoint('acme', 'a1', `s${segment}`, [1, segment, seq % 7], seq, {
    job_id: `job-${segment}-${seq}`,
  });
}

/** The table's versions (manifests) and the data dir's bytes. */
function footprint(dir: string): { versions: number; bytes: number } {
  let bytes = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else bytes += statSync(p).size;
    }
  };
  walk(dir);
  const versions = readdirSync(path.join(dir, 'points.lance', '_versions')).length;
  return { versions, bytes };
}

/** Rewrites `segments` segments `rounds` times (round r with seq r + 1), one write per round. */
async function overwrite(store: LanceDbStore, segments: number, rounds: number, from = 0) {
  for (let r = from; r < from + rounds; r++) {
    const points = await Promise.all(Array.from({ length: segments }, (_, s) => point(s, r + 1)));
    expect(await store.writeSegments(points)).toEqual(points.map(() => true));
  }
  await store.idle();
}

async function withStore(
  options: Omit<LanceDbStoreOptions, 'dataDir'>,
  fn: (store: LanceDbStore, dir: string) => Promise<void>,
): Promise<void> {
  const tmp = await tempDir('lance-upkeep');
  const store = new LanceDbStore({ dataDir: tmp.dir, ...options });
  try {
    await store.init(DIM);
    await fn(store, tmp.dir);
  } finally {
    await store.close();
    await tmp.remove();
  }
}

describe('LanceDB upkeep under overwrites', () => {
  it('keeps disk bounded: versions no read can be on are cleaned up, however recent', async () => {
    await withStore(
      { optimizeEveryWrites: 5, versionGraceMs: 0, reopenEveryWrites: 0 },
      async (store, dir) => {
        await overwrite(store, 40, 20);
        const early = footprint(dir);
        await overwrite(store, 40, 40, 20);
        const late = footprint(dir);
        // Kept for a fixed 10 minutes, all 60 writes' versions would be on disk, and the bytes
        // would grow with every round.
        expect(late.versions).toBeLessThanOrEqual(10);
        expect(late.bytes).toBeLessThan(early.bytes * 1.5);
        expect(await store.count({ orgId: 'acme' })).toBe(40);
        const hits = await store.search({
          vector: unit([1, 3, 60 % 7]),
          orgId: 'acme',
          model: MODEL,
          modelVer: '1',
          limit: 40,
        });
        expect(hits.every((h) => h.payload.seq === 60)).toBe(true);
      },
    );
  });

  it('keeps every version superseded within the grace period (a read may still be on it)', async () => {
    await withStore(
      { optimizeEveryWrites: 5, versionGraceMs: 60_000, reopenEveryWrites: 0 },
      async (store, dir) => {
        await overwrite(store, 10, 20);
        expect(footprint(dir).versions).toBeGreaterThanOrEqual(20);
      },
    );
  });

  it('reopens on a fresh connection every few writes; reads and writes across reopens keep their answers', async () => {
    await withStore(
      {
        optimizeEveryWrites: 2,
        reopenEveryWrites: 4,
        versionGraceMs: 0,
        // Searches through LanceDB, so that they run on the table handle a reopen replaces.
        memoryIndexMaxRows: 0,
      },
      async (store) => {
        await overwrite(store, 10, 1);
        let writing = true;
        const reads: Promise<void>[] = [];
        const reader = async () => {
          while (writing) {
            expect(await store.count({ orgId: 'acme' })).toBe(10);
            const [top] = await store.search({
              vector: unit([1, 4, 0]),
              orgId: 'acme',
              model: MODEL,
              modelVer: '1',
              limit: 1,
            });
            expect(top?.payload.segment_id).toBeDefined();
            await store.health();
          }
        };
        for (let i = 0; i < 3; i++) reads.push(reader());
        try {
          await overwrite(store, 10, 30, 1);
        } finally {
          writing = false;
          await Promise.all(reads);
        }
        expect(store.reopenCount).toBeGreaterThanOrEqual(5);
        expect(await store.count({ orgId: 'acme' })).toBe(10);
        // Latest wins across the reopens: every segment holds round 31's point, and an older job
        // delivered now is refused.
        const stale = await point(3, 5);
        expect(await store.writeSegments([stale])).toEqual([false]);
        const hits = await store.search({
          vector: unit([1, 3, 31 % 7]),
          orgId: 'acme',
          model: MODEL,
          modelVer: '1',
          limit: 10,
        });
        expect(hits.map((h) => h.payload.seq)).toEqual(hits.map(() => 31));
        await store.delete({ orgId: 'acme', assetId: 'a1' });
        expect(await store.count({ orgId: 'acme' })).toBe(0);
      },
    );
  });
});
