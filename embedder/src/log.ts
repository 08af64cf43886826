import type { LogLevel } from './config.js';

/**
 * Structured fields of a log line. By rule (DESIGN.md, PII minimisation) these are numbers,
 * booleans and identifiers from a fixed vocabulary (method, route, error code, store kind):
 * never input text, a query, or anything a caller wrote.
 */
export type LogFields = Record<string, number | boolean | string | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `bindings` (e.g. the request id) to every line. */
  child(bindings: LogFields): Logger;
}

const LEVELS: Record<Exclude<LogLevel, 'silent'>, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};

/** Writes one JSON object per line: `{ts, level, msg, ...fields}`. */
export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  bindings: LogFields = {},
): Logger {
  const threshold = level === 'silent' ? Infinity : LEVELS[level];
  const emit = (lineLevel: keyof typeof LEVELS, msg: string, fields?: LogFields): void => {
    if (LEVELS[lineLevel] < threshold) return;
    write(
      JSON.stringify({
        ts: new Date().toISOString(),
        level: lineLevel,
        msg,
        ...bindings,
        ...fields,
      }),
    );
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (more) => createLogger(level, write, { ...bindings, ...more }),
  };
}
