/**
 * Figures measured by the reliability suite: printed, and merged into
 * `.data/reliability/figures.json` (gitignored) so docs/RELIABILITY.md can quote a real run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/paths.js';

export const FIGURES_FILE = path.join(REPO_ROOT, '.data', 'reliability', 'figures.json');

export function recordFigures(name: string, figures: Record<string, unknown>): void {
  console.log(`[figures] ${name}: ${JSON.stringify(figures)}`);
  fs.mkdirSync(path.dirname(FIGURES_FILE), { recursive: true });
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(fs.readFileSync(FIGURES_FILE, 'utf8')) as Record<string, unknown>;
  } catch {
    // first figures of this checkout
  }
  all[name] = {
    ...figures,
    measured_at: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
  };
  fs.writeFileSync(FIGURES_FILE, JSON.stringify(all, null, 2) + '\n');
}
