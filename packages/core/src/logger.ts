import { createRequire } from 'node:module';
import type * as Pino from 'pino';

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

// pino's numeric levels: a line below the threshold is dropped without loading pino.
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

function createDefaultLogger(): Logger {
  const level = process.env.MESHLESS_LOG_LEVEL ?? 'warn';
  const threshold = LEVELS[level];
  // An unknown level: let pino say so now, as it always did.
  if (threshold === undefined) return createPino(level);
  // pino (~5 MB of RSS) is loaded when the first line at or above the level is written, not at
  // import: a quiet service never loads it.
  let real: Logger | undefined;
  const write = (at: number, name: keyof Logger) =>
    at < threshold
      ? () => {}
      : (obj: object, msg?: string) => {
          real ??= createPino(level);
          real[name](obj, msg);
        };
  return { error: write(50, 'error'), warn: write(40, 'warn'), info: write(30, 'info'), debug: write(20, 'debug') };
}

function createPino(level: string): Logger {
  // pino is CommonJS: require() loads it synchronously, on first use only.
  const { pino } = createRequire(import.meta.url)('pino') as typeof Pino;
  return pino({ name: 'meshless', level }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything. */
export const silentLogger: Logger = { error() {}, warn() {}, info() {}, debug() {} };
