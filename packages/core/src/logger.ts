import { pino } from 'pino';

/** The subset of a pino logger meshless uses; pino, and most structured loggers, satisfy it. */
export interface Logger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

let fallback: Logger | undefined;

/**
 * The logger to use: the one given, else a shared pino logger at level `warn` writing to stderr
 * (created on first use; `MESHLESS_LOG_LEVEL` changes the level).
 */
export function loggerOf(logger: Logger | undefined): Logger {
  if (logger) return logger;
  fallback ??= createDefaultLogger();
  return fallback;
}

function createDefaultLogger(): Logger {
  const level = process.env.MESHLESS_LOG_LEVEL ?? 'warn';
  return pino({ name: 'meshless', level }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
