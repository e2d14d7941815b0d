import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bench/ folder. */
export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Messages children send: `ready` once, then one `reply` (or `error`) per request. */
export interface ChildMessage {
  type: string;
  id?: number;
  [key: string]: unknown;
}

const live = new Set<BenchChild>();

/** What every child is given: a lifetime (it kills itself when it is reached, whatever happens here) and Node flags (e.g. `--cpu-prof`). */
export const childDefaults = { maxLifetimeMs: 15 * 60_000, nodeFlags: [] as string[] };

/**
 * A child process of the bench, in its own process group (so one signal stops it and everything
 * it started), with an IPC channel: when this process dies the channel closes and the child
 * exits on its own. Requests are matched to replies by id and bounded in time.
 */
export class BenchChild {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #nextId = 1;
  #pending = new Map<number, { resolve: (m: ChildMessage) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #waiters: { type: string; resolve: (m: ChildMessage) => void }[] = [];
  #output = '';
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
    private readonly verbose: boolean,
  ) {
    if (proc.pid === undefined) throw new Error(`could not start ${name}`);
    this.pid = proc.pid;
    live.add(this);
    const keep = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.#output = (this.#output + text).slice(-8000);
      if (this.verbose) process.stderr.write(`[${name}] ${text}`);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    proc.on('message', (m: ChildMessage) => this.#onMessage(m));
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        const err = new Error(`${name} exited (code ${code}, signal ${signal}): ${this.tail()}`);
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(err);
        }
        this.#pending.clear();
        resolve({ code, signal });
      });
    });
    // A failed spawn emits 'error' and then 'exit'; keep the process alive until then.
    proc.on('error', (e) => {
      this.#output += `\nspawn error: ${e.message}`;
    });
  }

  /** The last lines the child printed (for error messages). */
  tail(): string {
    return this.#output.trim().split('\n').slice(-12).join('\n');
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  #onMessage(m: ChildMessage): void {
    if (m.id !== undefined && this.#pending.has(m.id)) {
      const p = this.#pending.get(m.id)!;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.type === 'error') p.reject(new Error(`${this.name}: ${String(m.message)}`));
      else p.resolve(m);
      return;
    }
    const i = this.#waiters.findIndex((w) => w.type === m.type);
    if (i !== -1) this.#waiters.splice(i, 1)[0]!.resolve(m);
  }

  /** Waits for a message of `type` (e.g. `ready`), bounded in time; fails early if the child exits. */
  waitFor(type: string, timeoutMs: number): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      if (!this.running) return reject(new Error(`${this.name} is not running: ${this.tail()}`));
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms: ${this.tail()}`)), timeoutMs);
      const waiter = {
        type,
        resolve: (m: ChildMessage) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      this.#waiters.push(waiter);
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before "${type}": ${this.tail()}`));
      });
    });
  }

  /** Sends a request and waits for its reply, bounded in time. */
  request(message: ChildMessage, timeoutMs: number): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      if (!this.running) return reject(new Error(`${this.name} is not running: ${this.tail()}`));
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: no reply to "${message.type}" within ${timeoutMs} ms: ${this.tail()}`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.proc.send({ ...message, id });
    });
  }

  /** Heap and RSS of the child after forced GCs (children started with `--expose-gc`). */
  async memory(): Promise<{ heapUsed: number; rss: number }> {
    const m = await this.request({ type: 'memory' }, 30_000);
    return { heapUsed: Number(m.heapUsed), rss: Number(m.rss) };
  }

  /** Stops the child and its process group: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    signalGroup(this.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Whatever the child left in its group (nginx workers) goes too.
    signalGroup(this.pid, 'SIGKILL');
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

export interface SpawnOptions {
  /** Extra node flags (e.g. `--expose-gc`). */
  nodeFlags?: string[];
  verbose?: boolean;
  /** How long to wait for `ready` (startTs). Default 60 s. */
  readyMs?: number;
}

/** A node child in its own process group, with an IPC channel and the children's lifetime. */
function spawnNode(name: string, args: string[], options: SpawnOptions): BenchChild {
  const env = { ...process.env, BENCH_MAX_LIFETIME_MS: String(childDefaults.maxLifetimeMs) };
  return new BenchChild(name, spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true, env }), options.verbose ?? false);
}

/** Starts a TypeScript file of bench/ in a child node (through tsx, workspace sources) and waits for its `ready` message. */
export async function startTs(name: string, file: string, args: string[], options: SpawnOptions = {}): Promise<{ child: BenchChild; ready: ChildMessage }> {
  const flags = [...childDefaults.nodeFlags, ...(options.nodeFlags ?? [])];
  const child = spawnNode(name, ['--conditions=source', '--import', 'tsx', ...flags, join(benchDir, file), ...args], options);
  if (flags.includes('--cpu-prof')) console.log(`  cpu profile: ${name} is pid ${child.pid} (CPU.<date>.<time>.${child.pid}.0.*.cpuprofile)`);
  try {
    return { child, ready: await child.waitFor('ready', options.readyMs ?? 60_000) };
  } catch (err) {
    await child.stop();
    throw err;
  }
}

/**
 * Starts an external program (stunnel, nginx) under bench/proc/keeper.mjs, which kills it when
 * this process goes away or its lifetime is over.
 */
export function spawnKept(name: string, command: string, args: string[], options: SpawnOptions = {}): BenchChild {
  return spawnNode(name, [join(benchDir, 'proc', 'keeper.mjs'), command, ...args], options);
}

/** Stops every child still running (used on every exit path). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.stop()));
}

/** Last-resort cleanup for synchronous exit paths: SIGKILL every child group. */
export function killAllNow(): void {
  for (const c of live) signalGroup(c.pid, 'SIGKILL');
}
