/**
 * The log line both services write: one JSON object per line, `{ts, level, msg, ...fields}`.
 * By rule (DESIGN.md, PII minimisation) fields are numbers, booleans and identifiers from a fixed
 * vocabulary (method, route, error code, store kind): never input text, a query, or anything a
 * caller wrote. `fields` is typed to make string payloads an explicit choice.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `bindings` (e.g. the request id) to every line. */
  child(bindings: LogFields): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Writes the lines of `level` and above (none for `silent`) through `write`. */
export function jsonLinesLogger(
  level: LogLevel | 'silent',
  write: (line: string, level: LogLevel) => void,
  bindings: LogFields = {},
): Logger {
  const threshold = level === 'silent' ? Infinity : ORDER[level];
  const emit = (lineLevel: LogLevel, msg: string, fields?: LogFields): void => {
    if (ORDER[lineLevel] < threshold) return;
    const line = { ts: new Date().toISOString(), level: lineLevel, msg, ...bindings, ...fields };
    write(JSON.stringify(line), lineLevel);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (more) => jsonLinesLogger(level, write, { ...bindings, ...more }),
  };
}
