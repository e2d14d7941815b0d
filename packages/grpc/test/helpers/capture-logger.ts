import type { Logger } from '@meshless/core';

export interface LogLine {
  level: 'error' | 'warn' | 'info' | 'debug';
  fields: Record<string, unknown>;
  msg: string;
}

/** A pino-compatible logger that keeps every line, for assertions. */
export function captureLogger(): Logger & { lines: LogLine[]; at(level: LogLine['level']): LogLine[] } {
  const lines: LogLine[] = [];
  const log = (level: LogLine['level']) => (fields: object, msg?: string) => {
    lines.push({ level, fields: fields as Record<string, unknown>, msg: msg ?? '' });
  };
  return { lines, at: (level) => lines.filter((l) => l.level === level), error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') };
}
