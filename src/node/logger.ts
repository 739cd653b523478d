/** Log levels, in increasing severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A structured logger: one event name plus fields per call. */
export type Logger = (level: LogLevel, event: string, fields?: Record<string, unknown>) => void;

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Discards everything. */
export const silentLogger: Logger = () => {};

/**
 * One JSON line per event on stderr (`{"ts":…,"level":"info","event":"leader-changed",…}`),
 * at or above `min`.
 */
export function jsonLogger(
  min: LogLevel = 'info',
  fields: Record<string, unknown> = {},
  out = process.stderr,
): Logger {
  return (level, event, f) => {
    if (ORDER[level] < ORDER[min]) return;
    out.write(JSON.stringify({ ts: new Date().toISOString(), level, event, ...fields, ...f }) + '\n');
  };
}
