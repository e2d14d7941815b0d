import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A child process whose stdout is JSON lines; lets a test wait for a given event. */
export class JsonChild {
  readonly events: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly proc: ChildProcess;
  private waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  exited: Promise<number | null>;

  /** With `stdin: true` the child's stdin is a pipe that {@link JsonChild.send} writes JSON lines to. */
  constructor(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, options: { stdin?: boolean } = {}) {
    this.proc = spawn(cmd, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(line);
      } catch {
        this.stderr.push(line);
        return;
      }
      this.events.push(e);
      this.waiters = this.waiters.filter((w) => (w.match(e) ? (w.resolve(e), false) : true));
    });
    createInterface({ input: this.proc.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the first event (past or future) for which `match` is true. */
  waitFor(match: (e: Record<string, unknown>) => boolean, timeoutMs = 15000, what = 'event'): Promise<Record<string, unknown>> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; stderr: ${this.stderr.slice(-20).join('\n')}`)), timeoutMs);
      const exit = () => reject(new Error(`process exited while waiting for ${what}; stderr: ${this.stderr.slice(-20).join('\n')}`));
      this.proc.once('exit', exit);
      this.waiters.push({
        match,
        resolve: (e) => {
          clearTimeout(timer);
          this.proc.off('exit', exit);
          resolve(e);
        },
      });
    });
  }

  /** Writes one JSON line to the child's stdin (a child started with `stdin: true`). */
  send(message: object): void {
    if (!this.proc.stdin) throw new Error('this child was started without stdin: true');
    this.proc.stdin.write(`${JSON.stringify(message)}\n`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    await this.exited;
  }
}
