import { execFile, spawn } from 'node:child_process';

/** True when `tool` runs (`tool --version` or `tool version`). */
export async function hasTool(tool: string, versionArg = '--version'): Promise<boolean> {
  return new Promise((resolve) => execFile(tool, [versionArg], (err) => resolve(!err)));
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with `input` on stdin, killed after `timeoutMs` (a bound, not a wait). */
export function run(cmd: string, args: string[], options: { input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 15_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
