import { readlinkSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readlink, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { checkFileNames, type FileSet } from './file-set.js';
import { fileModeFor, type FileModeOptions } from './file-mode.js';
import { timestampDirName } from './kubelet-timestamp.js';

const DATA = '..data';
const DATA_TMP = '..data_tmp';

/** Options of {@link kubernetesVolume}. */
export interface KubernetesVolumeOptions extends FileModeOptions {
  /**
   * Remove the previous `..<timestamp>` directory this many milliseconds after a swap instead of
   * right away: a slow reader that resolved the old generation can still finish reading it.
   */
  removeOldAfterMs?: number;
  /** Never remove previous timestamp directories. Default `false`. */
  keepOld?: boolean;
}

/** A directory that is updated the way the kubelet updates a Secret, ConfigMap or CSI volume. */
export interface KubernetesVolume {
  /** The volume's directory (absolute). */
  readonly dir: string;
  /**
   * Publishes a new generation of the whole file set atomically: writes it into a new
   * `..<timestamp>` directory, points `..data_tmp` at it and renames that onto `..data`, makes
   * sure every `dir/<name>` is a symlink to `..data/<name>` (removing those no longer in the set),
   * then removes the previous timestamp directory. Writes are serialized, in call order.
   */
  write(files: FileSet): Promise<void>;
  /** The absolute path of the timestamp directory `..data` points to now, or `undefined` before the first write. */
  dataDir(): string | undefined;
  /**
   * Cancels the timers of delayed removals and removes those directories now, then waits for
   * pending writes and removals. Later writes are rejected. Timers never keep the process alive.
   */
  close(): Promise<void>;
}

/**
 * A writer that reproduces the kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go), for
 * testing that readers of mounted certificates only ever see one whole generation.
 *
 * One difference: the kubelet skips a write whose content did not change; this writer always
 * publishes a new generation, so a test can count on a swap.
 *
 * @example
 * const volume = kubernetesVolume(dir);
 * await volume.write({ 'tls.crt': cert, 'tls.key': key, 'ca.crt': ca });
 * // dir/tls.crt -> ..data/tls.crt, dir/..data -> ..2026_11_29_02_37_34.2838293981
 */
export function kubernetesVolume(dir: string, options: KubernetesVolumeOptions = {}): KubernetesVolume {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('kubernetesVolume: dir must be a non-empty path');
  const delay = options.removeOldAfterMs;
  if (delay !== undefined && !(Number.isFinite(delay) && delay >= 0)) {
    throw new RangeError(`kubernetesVolume: removeOldAfterMs must be a number of milliseconds >= 0, got ${delay}`);
  }
  return new AtomicVolume(resolve(dir), options);
}

class AtomicVolume implements KubernetesVolume {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Delayed removals that have not started: directory → timer. */
  private readonly scheduled = new Map<string, NodeJS.Timeout>();
  private readonly removing = new Set<Promise<void>>();

  constructor(
    readonly dir: string,
    private readonly options: KubernetesVolumeOptions,
  ) {}

  write(files: FileSet): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`kubernetesVolume(${this.dir}): write() after close()`));
    let names: string[];
    try {
      names = checkFileNames(files, 'kubernetesVolume.write');
    } catch (error) {
      return Promise.reject(error);
    }
    const run = this.tail.then(() => this.publish(files, names));
    this.tail = run.catch(() => undefined);
    return run;
  }

  dataDir(): string | undefined {
    try {
      return join(this.dir, readlinkSync(join(this.dir, DATA)));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    for (const [path, timer] of this.scheduled) {
      clearTimeout(timer);
      this.scheduled.delete(path);
      this.track(removeDir(path));
    }
    await Promise.all(this.removing);
  }

  private async publish(files: FileSet, names: string[]): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const dataLink = join(this.dir, DATA);
    const previous = await readlinkIfExists(dataLink);
    const previousNames = previous === undefined ? [] : await readdirIfExists(join(this.dir, previous));

    const generation = await this.makeTimestampDir();
    const generationDir = join(this.dir, generation);
    try {
      for (const name of names) {
        const path = join(generationDir, name);
        const mode = fileModeFor(name, this.options);
        if (name.includes('/')) await mkdir(dirname(path), { recursive: true, mode: 0o755 });
        await writeFile(path, files[name]!, { mode });
        await chmod(path, mode); // the umask must not decide
      }
    } catch (error) {
      await removeDir(generationDir);
      throw error;
    }

    const tmpLink = join(this.dir, DATA_TMP);
    await rm(tmpLink, { force: true });
    await symlink(generation, tmpLink);
    await rename(tmpLink, dataLink); // the atomic swap

    const visible = new Set(names.map((name) => name.split('/')[0]!));
    for (const name of visible) await this.ensureVisibleLink(name);
    for (const name of previousNames) {
      if (!visible.has(name)) await removeVisibleLink(join(this.dir, name));
    }
    if (previous !== undefined && previous !== generation) await this.retire(join(this.dir, previous));
  }

  private async makeTimestampDir(): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const name = timestampDirName();
      try {
        await mkdir(join(this.dir, name), { mode: 0o755 });
        await chmod(join(this.dir, name), 0o755);
        return name;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 20) throw error;
      }
    }
  }

  /** `dir/<name>` must be a symlink to `..data/<name>`; create it, or fix a wrong target. */
  private async ensureVisibleLink(name: string): Promise<void> {
    const path = join(this.dir, name);
    const target = join(DATA, name);
    let current: string | undefined;
    try {
      const stat = await lstat(path);
      if (!stat.isSymbolicLink()) {
        throw new Error(`kubernetesVolume(${this.dir}): ${name} exists and is not a symlink; a kubelet volume directory holds only symlinks to ${DATA}`);
      }
      current = await readlink(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (current === target) return;
    if (current === undefined) {
      await symlink(target, path);
    } else {
      const tmp = join(this.dir, `${DATA_TMP}.${name}`);
      await rm(tmp, { force: true });
      await symlink(target, tmp);
      await rename(tmp, path);
    }
  }

  /** Removes a previous generation: now (awaited, like the kubelet), later, or never. */
  private async retire(path: string): Promise<void> {
    if (this.options.keepOld) return;
    const delay = this.options.removeOldAfterMs ?? 0;
    if (delay === 0) {
      await removeDir(path);
      return;
    }
    const timer = setTimeout(() => {
      this.scheduled.delete(path);
      this.track(removeDir(path));
    }, delay);
    timer.unref();
    this.scheduled.set(path, timer);
  }

  private track(removal: Promise<void>): void {
    this.removing.add(removal);
    void removal.finally(() => this.removing.delete(removal));
  }
}

async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => undefined);
}

async function removeVisibleLink(path: string): Promise<void> {
  try {
    if ((await lstat(path)).isSymbolicLink()) await unlink(path);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

async function readlinkIfExists(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function readdirIfExists(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
