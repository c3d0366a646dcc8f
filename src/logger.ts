/** One log method, in pino's shape: a context object first, then the message. */
export type LogFn = (context: Readonly<Record<string, unknown>>, message: string) => void;

/**
 * The logger rabbit-rpc writes to: pino's interface, so a pino logger (or a child of one)
 * fits as it is. rabbit-rpc logs connection events, recoveries and handler failures, never
 * payloads and never credentials.
 */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

function silent(): void {
  // Logging is off unless a logger is given.
}

/** The default: logs nothing. */
export const SILENT_LOGGER: Logger = { debug: silent, info: silent, warn: silent, error: silent };

/** Wraps a user's logger so that a throwing logger cannot break the library. */
export function safeLogger(logger: Logger | undefined): Logger {
  if (!logger) return SILENT_LOGGER;
  const guard =
    (method: LogFn): LogFn =>
    (context, message) => {
      try {
        method.call(logger, context, message);
      } catch {
        // A logger's failure is not ours to report.
      }
    };
  return {
    debug: guard(logger.debug),
    info: guard(logger.info),
    warn: guard(logger.warn),
    error: guard(logger.error),
  };
}
