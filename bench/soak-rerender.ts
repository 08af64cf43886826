/**
 * `npx tsx bench/soak-rerender.ts FILE.json`: judges a soak result's targets again and rewrites
 * its Markdown report with the current renderer (the figures themselves are left as measured).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderReport } from './lib/report.js';
import type { BenchResult } from './lib/report.js';
import { evaluateTargets } from './lib/targets.js';

const file = process.argv[2];
if (!file?.endsWith('.json')) throw new Error('usage: npx tsx bench/soak-rerender.ts FILE.json');
const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
if (!r.soak) throw new Error(`${file} holds no soak`);
r.targets = evaluateTargets({
  naive: [],
  cells: [],
  peak: null,
  ingest: null,
  search: null,
  soak: r.soak,
  fullSoakMinutes: 10,
});
writeFileSync(file, `${JSON.stringify(r, null, 2)}\n`);
writeFileSync(file.replace(/\.json$/, '.md'), `${renderReport(r)}\n`);
