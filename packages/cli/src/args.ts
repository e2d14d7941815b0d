import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './usage.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Parsed command line of one command. */
export interface ParsedArgs<V> {
  values: V;
  positionals: string[];
}

/**
 * Parses `argv` strictly against `options` (plus `--help`), turning node:util's errors into
 * UsageErrors (exit 2) that name the option.
 */
export function parseCommandLine(argv: readonly string[], options: OptionSpec): ParsedArgs<Record<string, string | boolean | string[] | undefined>> {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (err) {
    const message = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new UsageError(message);
  }
}

/** The value of a required string option, or a UsageError naming it. */
export function requiredString(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required`, name);
  return v;
}

/** The value of an optional string option. */
export function optionalString(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** The values of a repeatable option (`--dns a --dns b`). */
export function stringList(values: Record<string, unknown>, name: string): string[] {
  const v = values[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/** Exactly `count` positional arguments, named for the error message. */
export function positionalsExactly(positionals: readonly string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) throw new UsageError(`missing ${names.slice(positionals.length).map((n) => n.toUpperCase()).join(' ')}`);
  if (positionals.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[names.length])}`);
  return [...positionals];
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses a duration like `90s`, `15m`, `1h`, `30d`, `1h30m` into milliseconds. */
export function parseDuration(text: string, name: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (text.length === 0 || matched !== text.length || total <= 0) {
    throw new UsageError(`--${name} ${JSON.stringify(text)} is not a duration: write e.g. 90s, 15m, 1h, 30d or 1h30m`, name);
  }
  return total;
}

/** Parses a TCP port (0 picks a free one). */
export function parsePort(text: string, name: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new UsageError(`--${name} ${JSON.stringify(text)} is not a port number (0-65535; 0 picks a free one)`, name);
  return Number(text);
}
