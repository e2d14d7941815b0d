import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { benchDir, spawnTs } from './children.js';
import type { BenchContext } from './context.js';

export type ModuleOutcome = { ok: true; result: unknown } | { ok: false; status: 'skipped' | 'failed'; reason: string };

/**
 * Runs `exportName(options)` of bench/<file> in its own process, bounded by `timeoutMs`.
 * A missing file or export is "skipped: not yet available"; a throw or a timeout is a failure.
 */
export async function runModule(ctx: BenchContext, file: string, exportName: string, options: unknown, timeoutMs: number, nodeFlags: string[] = []): Promise<ModuleOutcome> {
  if (!existsSync(join(benchDir, file))) return { ok: false, status: 'skipped', reason: `not yet available (bench/${file} does not exist)` };
  const child = spawnTs(`module-${file}`, 'proc/run-module.ts', ['--file', file, '--export', exportName, '--work', ctx.workDir], { verbose: ctx.options.verbose, nodeFlags });
  try {
    const ready = await child.waitFor('ready', 60_000);
    const exports = (ready.exports as string[] | undefined) ?? [];
    if (!exports.includes(exportName)) {
      return { ok: false, status: 'skipped', reason: `not yet available (bench/${file} does not export ${exportName}; it exports ${exports.join(', ') || 'nothing'})` };
    }
    const reply = await child.request({ type: 'run', options }, timeoutMs);
    return { ok: true, result: reply.result };
  } catch (err) {
    return { ok: false, status: 'failed', reason: (err as Error).message.split('\n').slice(0, 6).join(' | ') };
  } finally {
    await child.stop();
  }
}

/** Finite numbers found anywhere in a value (to tell a result with figures from an empty one). */
export function numbersIn(value: unknown, out: number[] = []): number[] {
  if (typeof value === 'number' && Number.isFinite(value)) out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => numbersIn(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => numbersIn(v, out));
  return out;
}
