/** Log levels, in increasing severity. */
export type TransportLogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * A structured log hook: one event name plus fields per call (e.g. `'warn', 'auth-failed',
 * { remote: '10.0.0.7:51234' }`). Shaped like the node's logger, so one function serves both.
 */
export type TransportLogger = (
  level: TransportLogLevel,
  event: string,
  fields: Record<string, unknown>,
) => void;

/** Discards everything (the default). */
export const silentTransportLogger: TransportLogger = () => {};
