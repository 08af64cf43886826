import type { LogLevel } from './config.js';
import { jsonLinesLogger } from '../../contract/log.js';
import type { LogFields, Logger } from '../../contract/log.js';

export type { LogFields, Logger };

/** Writes one JSON object per line (contract/log.ts), to stdout unless told otherwise. */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  bindings: LogFields = {},
): Logger {
  return jsonLinesLogger(level, write, bindings);
}
