import { stat, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';

/** How often a vanished directory is looked for again, in ms. */
const MISSING_DIR_POLL_MS = 100;

export interface MountWatcherOptions {
  /** Directories to watch (not recursively: their direct entries only). */
  dirs: readonly string[];
  /** True for entry names whose changes matter (`..data`, the credential files, …). */
  relevant: (name: string) => boolean;
  /** Use stat polling at this interval instead of inotify (network filesystems). */
  pollIntervalMs?: number;
  /** Called on every relevant change (with the entry's name), and when a vanished directory came back. */
  onChange: (why: string, name?: string) => void;
  /** Called when a watched directory vanished or the watcher failed (already being recovered). */
  onTrouble: (why: string, cause?: unknown) => void;
}

interface Root {
  /** The directory as configured. */
  dir: string;
  /** What is actually watched: its real path when it is reachable through a symlink. */
  watched: string;
  /** Inode of the watched directory, to notice it was replaced behind our back. */
  ino: number;
}

async function rootOf(dir: string): Promise<Root | undefined> {
  try {
    const watched = await realpath(dir);
    const s = await stat(watched);
    return s.isDirectory() ? { dir, watched, ino: s.ino } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Watches the directories of a file source with chokidar 5, as the kubelet's atomic swap needs:
 * `followSymlinks: false` (the event fires on the `..data` rename itself), `ignoreInitial`,
 * depth 0, and never holding the event loop (`persistent: false`). When a watched directory
 * vanishes, or is replaced by another directory, the watcher is torn down and the directories
 * are polled every 100 ms (unref'd) until they are back, then watched again.
 */
export class MountWatcher {
  readonly #options: MountWatcherOptions;
  #watcher: FSWatcher | undefined;
  #roots: Root[] = [];
  #pollTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Bumped whenever the watcher is torn down, so stale callbacks are ignored. */
  #epoch = 0;

  constructor(options: MountWatcherOptions) {
    this.#options = options;
  }

  /** Starts watching; resolves once chokidar is ready (changes after that are seen). */
  async start(): Promise<void> {
    const roots = await Promise.all(this.#options.dirs.map(rootOf));
    if (roots.some((r) => r === undefined)) {
      this.#recover('a credential directory does not exist');
      return;
    }
    await this.#watch(roots as Root[]);
  }

  async #watch(roots: Root[]): Promise<void> {
    if (this.#closed) return;
    const epoch = ++this.#epoch;
    this.#roots = roots;
    const polling = this.#options.pollIntervalMs !== undefined;
    // chokidar is loaded by the first file source that watches, not when core is imported.
    const { watch } = await import('chokidar');
    if (this.#closed || epoch !== this.#epoch) return;
    const watcher = watch(
      roots.map((r) => r.watched),
      {
        followSymlinks: false,
        ignoreInitial: true,
        depth: 0,
        persistent: false,
        atomic: false,
        ignorePermissionErrors: true,
        usePolling: polling,
        ...(polling ? { interval: this.#options.pollIntervalMs, binaryInterval: this.#options.pollIntervalMs } : {}),
      },
    );
    this.#watcher = watcher;
    const watchedDirs = new Set(roots.map((r) => r.watched));
    watcher.on('all', (event, changed) => {
      if (epoch !== this.#epoch || this.#closed) return;
      if (event === 'unlinkDir' && watchedDirs.has(changed)) {
        this.#options.onChange(`${changed} was removed`);
        this.#recover(`${changed} was removed`);
        return;
      }
      if (watchedDirs.has(changed)) return;
      if (!watchedDirs.has(path.dirname(changed))) return;
      const name = path.basename(changed);
      if (this.#options.relevant(name)) this.#options.onChange(`${event} ${changed}`, name);
    });
    watcher.on('error', (err) => {
      if (epoch !== this.#epoch || this.#closed) return;
      this.#recover('the file watcher failed', err);
    });
    await new Promise<void>((resolve) => {
      watcher.once('ready', () => resolve());
    });
  }

  /** Tears the watcher down and polls until every directory exists again. */
  #recover(why: string, cause?: unknown): void {
    if (this.#closed || this.#pollTimer !== undefined) return;
    this.#epoch++;
    const old = this.#watcher;
    this.#watcher = undefined;
    void old?.close().catch(() => undefined);
    this.#options.onTrouble(why, cause);
    const poll = async (): Promise<void> => {
      this.#pollTimer = undefined;
      if (this.#closed) return;
      const roots = await Promise.all(this.#options.dirs.map(rootOf));
      if (this.#closed) return;
      if (roots.some((r) => r === undefined)) {
        this.#pollTimer = setTimeout(() => void poll(), MISSING_DIR_POLL_MS).unref();
        return;
      }
      await this.#watch(roots as Root[]);
      if (!this.#closed) this.#options.onChange('the credential directory is back');
    };
    this.#pollTimer = setTimeout(() => void poll(), MISSING_DIR_POLL_MS).unref();
  }

  /** Re-watches when a directory was replaced (another inode) or vanished without an event. */
  async verifyRoots(): Promise<void> {
    if (this.#closed || this.#pollTimer !== undefined || this.#watcher === undefined) return;
    const roots = await Promise.all(this.#options.dirs.map(rootOf));
    const changed = roots.some((r, i) => r === undefined || r.ino !== this.#roots[i]?.ino || r.watched !== this.#roots[i]?.watched);
    if (changed && !this.#closed && this.#pollTimer === undefined) this.#recover('a credential directory was replaced');
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#epoch++;
    if (this.#pollTimer !== undefined) clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    const w = this.#watcher;
    this.#watcher = undefined;
    await w?.close();
  }
}
