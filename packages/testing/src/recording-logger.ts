import type { Logger } from '@meshless/core';

/** One line a {@link recordingLogger} was given. */
export interface LogEntry {
  readonly level: 'error' | 'warn' | 'info' | 'debug';
  /** The object (pino's first argument). */
  readonly obj: Record<string, unknown>;
  /** The message, '' when none was given. */
  readonly msg: string;
}

/** A pino-compatible logger that keeps every line, in order. */
export interface RecordingLogger extends Logger {
  readonly entries: LogEntry[];
  /** The lines at `level`. */
  at(level: LogEntry['level']): LogEntry[];
}

/**
 * A logger for assertions: pass it as any meshless `logger` option, then look at what was logged.
 *
 * @example
 * const logger = recordingLogger();
 * const server = createServer({ source, allow, logger }, app);
 * assert.equal(logger.at('warn')[0]?.obj.peer, 'spiffe://prod.example/ns/web/sa/frontend');
 */
export function recordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const log = (level: LogEntry['level']) => (obj: object, msg?: string) => void entries.push({ level, obj: obj as Record<string, unknown>, msg: msg ?? '' });
  return { entries, at: (level) => entries.filter((e) => e.level === level), error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') };
}
