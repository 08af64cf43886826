/**
 * JSON-lines logger (the line format is contract/log.ts): errors to console.error, the rest to
 * console.log, which is where Workers Logs picks them up.
 */
import { jsonLinesLogger } from '../../../contract/log';
import type { LogFields, LogLevel, Logger } from '../../../contract/log';

export type { LogFields, LogLevel, Logger };

export function createLogger(level: LogLevel = 'info', base: LogFields = {}): Logger {
  return jsonLinesLogger(
    level,
    (line, lineLevel) => (lineLevel === 'error' ? console.error(line) : console.log(line)),
    base,
  );
}

/** A short, text-free description of an unknown error for logs. */
export function errorKind(err: unknown): string {
  if (err instanceof Error) return err.name;
  return typeof err;
}
