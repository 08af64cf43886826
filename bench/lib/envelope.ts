/**
 * The envelope of a measurement run (`npm run bench`, `npm run eval`): when it started, its
 * scratch folder, the machine's load at both ends, and the scratch folder's removal at the end.
 */
import type { MachineInfo } from './machine.js';
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/paths.js';

/**
 * The command's options, parsed by `parse` from its arguments (also returned, for the recorded
 * command line); null, after printing `usage`, when they ask for --help.
 */
export function commandOptions<O extends { help: boolean }>(
  parse: (argv: string[]) => O,
  usage: string,
): { argv: string[]; o: O } | null {
  const argv = process.argv.slice(2);
  const o = parse(argv);
  if (!o.help) return { argv, o };
  process.stdout.write(usage);
  return null;
}

/** One argument of a recorded command line, quoted for a POSIX shell where it needs it. */
export const shellQuote = (a: string) =>
  /^[\w,.=/:-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;

/** The 1, 5 and 15 minute load averages, to two decimals. */
export const loadAverage = (): number[] => os.loadavg().map((x) => Math.round(x * 100) / 100);

export interface RunStart {
  startedAt: Date;
  /** The start time as a file-name-safe stamp (2026-12-01T10-00-00-000Z). */
  stamp: string;
  /** The scratch folder (created). */
  workDir: string;
  loadAtStart: number[];
}

/** Starts a run: its scratch folder is `workDir` or `<scratchRoot>/run-<stamp>` (under the repo). */
export function startRun(workDir: string | undefined, scratchRoot: string): RunStart {
  const startedAt = new Date();
  const loadAtStart = loadAverage();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const dir = path.resolve(REPO_ROOT, workDir ?? path.join(scratchRoot, `run-${stamp}`));
  mkdirSync(dir, { recursive: true });
  return { startedAt, stamp, workDir: dir, loadAtStart };
}

/** Whole seconds from `startedAt` to `finishedAt`. */
export function durationSeconds(startedAt: Date, finishedAt: Date): number {
  return Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000);
}

/** Removes the scratch folder, unless it is to be kept (`--keep`). */
export function endRun(workDir: string, keep: boolean, log: (msg: string) => void): void {
  if (!keep) rmSync(workDir, { recursive: true, force: true });
  else log(`kept the work dir ${workDir}`);
}

/** The envelope of a run that ends now, started as `run` records. */
export function finishedEnvelope(
  run: Pick<RunStart, 'startedAt' | 'loadAtStart'>,
  command: string,
  machine: MachineInfo,
): RunEnvelope {
  const finishedAt = new Date();
  return {
    command,
    startedAt: run.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSeconds: durationSeconds(run.startedAt, finishedAt),
    machine,
    loadAverage: { start: run.loadAtStart, end: loadAverage() },
  };
}

/** What every bench and eval result records about its run. */
export interface RunEnvelope {
  command: string;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  machine: MachineInfo;
  /** Machine load averages (1, 5, 15 min) at the start and end: other work adds noise. */
  loadAverage: { start: number[]; end: number[] };
}
