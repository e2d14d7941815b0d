import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Examples run on the built packages (plain `node`, no "source" condition). `npm test` builds
 * first; a lone `mocha test/examples/…` builds here when a src/ changed or `tsc -b` ran alone
 * since the last build (scripts/build.mjs --if-stale: a no-op otherwise).
 */
let checked = false;
export function ensureBuilt(): void {
  if (checked) return;
  checked = true;
  const missing = ['core', 'http', 'grpc', 'nest', 'testing', 'cli'].some((p) => !existsSync(join(root, 'packages', p, 'dist', 'index.js')));
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), ...(missing ? [] : ['--if-stale'])], { cwd: root, encoding: 'utf8' });
  if (r.status === 0) return;
  // a package that does not compile: the dist of the last good build still runs, say so
  if (missing) throw new Error(`scripts/build.mjs failed:\n${r.stdout}${r.stderr}`);
  console.warn(`      (scripts/build.mjs failed; running the previously built packages)\n${r.stdout}`);
}

/** A child `node` process with its output collected as it arrives. */
export interface Child {
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
  /** Parsed JSON lines of stdout. */
  events(): Array<Record<string, unknown>>;
}

export function startNode(script: string, args: string[] = [], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, [script, ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    process: child,
    stdout: () => out,
    stderr: () => err,
    exited,
    events: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** Resolves with the exit code, or with 'timeout' after `ms`. */
export function exitWithin(child: Child, ms: number): Promise<number | null | 'timeout'> {
  let timer: NodeJS.Timeout;
  return Promise.race([child.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)))]).finally(() => clearTimeout(timer));
}

/** Kills a child that is still running (by its own pid) and waits for it. */
export async function stop(child: Child | undefined): Promise<void> {
  if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
  const gone = new Promise((resolve) => child.process.once('exit', resolve));
  child.process.kill('SIGKILL');
  await gone; // its 'exit', not `exited` ('close'): a process it started may still hold the pipes
}
