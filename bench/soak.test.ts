/**
 * Unit tests for the soak's arithmetic and streams (bench/lib/soak-growth.ts, soak-disk.ts).
 * Part of `npm run test:unit`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { diskUsage } from './lib/soak-disk.js';
import { OverwriteStream, growthOf, thinSamples } from './lib/soak-growth.js';
import type { GrowthSample } from './lib/soak-growth.js';

describe('the soak', () => {
  it('measures growth after the warm-up, and per million writes by least squares', () => {
    // 100 MiB during the warm-up, then 200 MiB + 1 MiB per 1,000 writes.
    const samples: GrowthSample[] = Array.from({ length: 100 }, (_, t) => {
      const writes = t * 100;
      return [t, writes, t < 10 ? 100 : 200 + writes / 1000];
    });
    const g = growthOf(samples, 10);
    expect(g).not.toBeNull();
    expect(g?.perMillionWrites).toBeCloseTo(1000, 3);
    expect(g?.min).toBe(201);
    expect(g?.baseline).toBeCloseTo(201.85, 0);
    expect(g?.drift).toBeGreaterThan(0);
    expect(growthOf(samples.slice(0, 15), 10)).toBeNull();
  });

  it('tells a saw-tooth with level peaks from one whose peaks rise', () => {
    const saw = (rise: number): GrowthSample[] =>
      Array.from({ length: 80 }, (_, t) => [t, t, 10 + (t % 20) + (rise * t) / 80]);
    expect(growthOf(saw(0), 0)?.peakGrowth).toBe(0);
    expect(growthOf(saw(20), 0)?.peakGrowth).toBeGreaterThan(0.25);
  });

  it('thins samples to about the requested count', () => {
    const samples: GrowthSample[] = Array.from({ length: 1000 }, (_, t) => [t + 0.4, t, t / 3]);
    const thin = thinSamples(samples, 100);
    expect(thin.length).toBe(100);
    expect(thin[1]).toEqual([10, 10, 3.333]);
  });

  it('rewrites the same segments with rising seqs and changing texts', () => {
    const texts = Array.from({ length: 50 }, (_, i) => `text ${i}`);
    const stream = new OverwriteStream(texts, 3, 'm', 'org');
    type Item = { seq: number; segment_id: string; text: string; asset_id: string };
    const items = [stream.body(2), stream.body(2), stream.body(3)].flatMap(
      (b) => (JSON.parse(b) as { items: Item[] }).items,
    );
    expect(items.map((i) => i.segment_id)).toEqual([
      'seg-0',
      'seg-1',
      'seg-2',
      'seg-0',
      'seg-1',
      'seg-2',
      'seg-0',
    ]);
    expect(items.map((i) => i.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // A segment gets another text in each round.
    expect(items[0]?.text).not.toBe(items[3]?.text);
    expect(stream.written).toBe(7);
    expect(stream.round).toBe(2);
  });

  it('sizes a LanceDB table folder by kind of file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'soak-disk-'));
    try {
      const table = path.join(dir, 'points.lance');
      for (const sub of ['_versions', 'data', '_deletions', '_indices/abc']) {
        mkdirSync(path.join(table, sub), { recursive: true });
      }
      writeFileSync(path.join(table, '_versions', '1.manifest'), 'x');
      writeFileSync(path.join(table, '_versions', '2.manifest'), 'x');
      writeFileSync(path.join(table, 'data', 'a.lance'), Buffer.alloc(8192));
      writeFileSync(path.join(table, '_deletions', 'd.arrow'), 'x');
      writeFileSync(path.join(table, '_indices', 'abc', 'page.lance'), 'x');
      const u = diskUsage(dir);
      expect(u).toMatchObject({ versions: 2, dataFiles: 1, deletionFiles: 1, indexFiles: 1 });
      expect(u.bytes).toBeGreaterThanOrEqual(8192);
      expect(diskUsage(path.join(dir, 'missing')).bytes).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
