/** Where a command's output goes: injected, so tests can run commands in-process. */
import type { ProgressStream } from './progress.js';

export interface Io {
  /** One line of result output (stdout). */
  out(line: string): void;
  /** One line of diagnostics (stderr). */
  err(line: string): void;
  /** The stream the progress bar draws on (stderr). */
  progress: ProgressStream;
  env: NodeJS.ProcessEnv;
  /** The folder file paths are relative to (ingest's asset ids, search's local text). */
  cwd?: string;
  json: boolean;
  quiet: boolean;
}

export function processIo(env: NodeJS.ProcessEnv, json = false, quiet = false): Io {
  return {
    out: (line) => void process.stdout.write(`${line}\n`),
    err: (line) => void process.stderr.write(`${line}\n`),
    progress: process.stderr,
    env,
    json,
    quiet,
  };
}
