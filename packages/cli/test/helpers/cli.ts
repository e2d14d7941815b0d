import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = fileURLToPath(new URL('../..', import.meta.url));
const root = join(packageDir, '..', '..');
/** The real `meshless` binary, as npm installs it (`bin` → dist/bin.js). */
export const BIN = join(packageDir, 'dist', 'bin.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let built = false;

/**
 * Builds the CLI and the packages it references (tsc -b, then their bundles: scripts/build.mjs)
 * when dist/bin.js is missing or older than a source file, or when a package's src/ changed or
 * `tsc -b` ran alone since the last build (--if-stale). `npm test` builds before mocha, so this
 * is a no-op there.
 */
export function ensureBuilt(): void {
  if (built) return;
  const dist = join(packageDir, 'dist');
  const stale = !existsSync(BIN) || newestMtime(dist) < newestMtime(join(packageDir, 'src'));
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), ...(stale ? [] : ['--if-stale']), packageDir], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    // A referenced package that does not compile stops the build; a dist from an earlier
    // build is still the binary as it was: use it, and say so.
    if (!existsSync(BIN)) throw new Error(`the build of packages/cli failed:\n${r.stdout}${r.stderr}`);
    console.warn(`      (the build of packages/cli failed; testing the previously built dist/bin.js)\n${r.stdout}`);
  }
  built = true;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/bin.js ...args` and collects its output; kills it after `timeoutMs`. */
export function runCli(args: readonly string[], options: { cwd?: string; timeoutMs?: number; wrap?: string[] } = {}): Promise<CliResult> {
  ensureBuilt();
  const [cmd, ...pre] = options.wrap ?? [process.execPath];
  const argv = options.wrap ? [...pre, process.execPath, BIN, ...args] : [BIN, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, argv, { cwd: options.cwd ?? root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`meshless ${args.join(' ')} did not exit within ${options.timeoutMs ?? 20_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fresh temporary directory, and a function that removes it. */
export async function tempDir(prefix = 'meshless-cli-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A `meshless` process left running (serve), with its output as it arrives. */
export interface RunningCli {
  child: import('node:child_process').ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or null when killed by a signal). */
  exited: Promise<number | null>;
  /** JSON lines of stderr that parse. */
  events: () => Array<Record<string, unknown>>;
}

/** Starts `node dist/bin.js ...args` and returns at once. */
export function startCli(args: readonly string[], wrap?: string[]): RunningCli {
  ensureBuilt();
  const [cmd, ...pre] = wrap ?? [process.execPath];
  const argv = wrap ? [...pre, process.execPath, BIN, ...args] : [BIN, ...args];
  const child = spawn(cmd!, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // 'close', not 'exit': at 'exit' the last of its output may still be unread in the pipes.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const events = () =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, stdout: () => stdout, stderr: () => stderr, exited, events };
}

