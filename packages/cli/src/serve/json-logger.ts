import type { Logger } from '@meshless/core';

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50, silent: 100 } as const;

/** Log levels, lowest first. */
export type LogLevel = keyof typeof LEVELS;

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(LEVELS, value);
}

/** Errors become `{ code, message }`: no stack, nothing a caller did not choose to log. */
function plain(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? { message: value.message } : { code, message: value.message };
  }
  if (value instanceof Date) return value.toISOString();
  return value;
}

/**
 * A pino-compatible logger that writes one JSON object per line:
 * `{"time":"…","level":"info","msg":"…",…fields}`. Lines below `level` are dropped.
 */
export function jsonLogger(write: (line: string) => void, level: LogLevel = 'info'): Logger & { event(level: Exclude<LogLevel, 'silent'>, fields: object, msg: string): void } {
  const min = LEVELS[level];
  const emit = (at: Exclude<LogLevel, 'silent'>, obj: object, msg?: string) => {
    if (LEVELS[at] < min) return;
    const fields: Record<string, unknown> = { time: new Date().toISOString(), level: at };
    if (msg !== undefined) fields.msg = msg;
    for (const [k, v] of Object.entries(obj ?? {})) if (v !== undefined) fields[k] = plain(v);
    write(JSON.stringify(fields) + '\n');
  };
  return {
    error: (obj, msg) => emit('error', obj, msg),
    warn: (obj, msg) => emit('warn', obj, msg),
    info: (obj, msg) => emit('info', obj, msg),
    debug: (obj, msg) => emit('debug', obj, msg),
    event: (at, obj, msg) => emit(at, obj, msg),
  };
}
