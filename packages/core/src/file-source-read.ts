import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshlessError, codes } from './errors.js';
import type { CredentialFiles } from './layout.js';

/** Files larger than this are refused (a PEM bundle of thousands of roots stays far below). */
export const MAX_CREDENTIAL_FILE_BYTES = 4 * 1024 * 1024;

/** Bytes of the three files, read from one generation of the mount. */
export interface GenerationBytes {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  /** The `..data` targets seen while reading (one per directory that has one), for logs. */
  dataLinks: readonly string[];
  /** How many attempts it took (1 when nothing moved). */
  attempts: number;
}

export interface ReadGenerationOptions {
  /** Attempts before giving up with GENERATION_UNSTABLE; default 5. */
  maxAttempts?: number;
}


/** One file to read: where, what it is (for messages) and the field it fills (for `err.field`). */
export interface FileToRead {
  file: string;
  /** E.g. `certificate`, `federated trust bundle`. */
  what: string;
  field: string;
}

const roleFiles = (files: CredentialFiles): FileToRead[] => [
  { file: files.cert, what: 'certificate', field: 'cert' },
  { file: files.key, what: 'private key', field: 'key' },
  { file: files.ca, what: 'trust bundle', field: 'ca' },
];

interface FileState {
  real: string;
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Signals "the mount moved while we looked": try again rather than report. */
class Moved extends Error {}

function stateOf(real: string, s: BigIntStats): FileState {
  return { real, dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}

function sameState(a: FileState, b: FileState): boolean {
  return a.real === b.real && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** `readlink(dir/..data)` for every distinct directory of the files; `''` where there is none. */
async function dataLinksOf(dirs: readonly string[]): Promise<string[]> {
  return Promise.all(
    dirs.map(async (dir) => {
      try {
        return await readlink(path.join(dir, '..data'));
      } catch {
        return '';
      }
    }),
  );
}

function unreadable(entry: FileToRead, file: string, why: string, cause?: unknown): MeshlessError {
  return new MeshlessError(codes.FILE_UNREADABLE, `${entry.what} file ${file} ${why}; the previous generation stays in use until it is readable again`, { file, field: entry.field, cause });
}

async function explainMissing(role: FileToRead, file: string, cause: unknown): Promise<MeshlessError> {
  try {
    const l = await lstat(file);
    if (l.isSymbolicLink()) {
      const target = await readlink(file).catch(() => '?');
      return unreadable(role, file, `is a symbolic link to ${target}, which does not exist`, cause);
    }
  } catch {
    // not there at all
  }
  return unreadable(role, file, 'does not exist', cause);
}

async function errnoToError(role: FileToRead, file: string, cause: unknown): Promise<MeshlessError> {
  const code = (cause as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return explainMissing(role, file, cause);
    case 'ENOTDIR':
      return unreadable(role, file, 'is not reachable (a parent is not a directory)', cause);
    case 'EACCES':
    case 'EPERM':
      return unreadable(role, file, `cannot be read: permission denied for uid ${process.getuid?.() ?? '?'}`, cause);
    case 'ELOOP':
      return unreadable(role, file, 'is a symbolic link loop', cause);
    case 'EISDIR':
      return unreadable(role, file, 'is a directory, not a file', cause);
    default:
      return unreadable(role, file, `cannot be read (${code ?? (cause as Error).message})`, cause);
  }
}

function kindOf(s: BigIntStats): string {
  if (s.isDirectory()) return 'a directory';
  if (s.isFIFO()) return 'a named pipe (FIFO)';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/**
 * Reads one file without ever blocking: opened with O_NONBLOCK (a FIFO would otherwise hang
 * the read), checked with fstat to be a regular file of sane size, then read from that same
 * descriptor. Returns the bytes and the fstat seen.
 */
async function readRegularFile(role: FileToRead, file: string, real: string): Promise<{ bytes: Buffer; state: FileState }> {
  let handle;
  try {
    handle = await open(real, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    throw await errnoToError(role, file, cause);
  }
  try {
    const s = await handle.stat({ bigint: true });
    if (!s.isFile()) throw unreadable(role, file, `is ${kindOf(s)}, not a regular file`);
    if (s.size > BigInt(MAX_CREDENTIAL_FILE_BYTES)) throw unreadable(role, file, `is ${s.size} bytes, larger than the ${MAX_CREDENTIAL_FILE_BYTES} accepted`);
    const bytes = await handle.readFile();
    return { bytes, state: stateOf(real, s) };
  } catch (cause) {
    throw cause instanceof MeshlessError ? cause : await errnoToError(role, file, cause);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function realOf(role: FileToRead, file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch (cause) {
    throw await errnoToError(role, file, cause);
  }
}

/** True when the file at `file` still has `before`'s real path, inode, size, times and bytes. */
async function unchanged(role: FileToRead, file: string, before: FileState, bytes: Buffer): Promise<boolean> {
  try {
    const real = await realpath(file);
    if (!sameState(before, stateOf(real, await stat(real, { bigint: true })))) return false;
    // File times are coarse (a kernel tick): two in-place rewrites of the same size within one
    // tick leave size and mtime as they were. Reading the bytes again closes that gap.
    const again = await readRegularFile(role, file, real);
    return sameState(before, again.state) && again.bytes.equals(bytes);
  } catch {
    return false;
  }
}

async function attempt(entries: readonly FileToRead[], dirs: readonly string[]): Promise<{ bytes: Buffer[]; dataLinks: string[] }> {
  const linksBefore = await dataLinksOf(dirs);
  const moved = async (): Promise<boolean> => (await dataLinksOf(dirs)).some((l, i) => l !== linksBefore[i]);
  // The three files are read in parallel (fewer round trips to the thread pool); consistency
  // is established afterwards, over all three.
  const reads = await Promise.allSettled(entries.map(async (e) => readRegularFile(e, e.file, await realOf(e, e.file))));
  const failed = reads.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // A file that vanished while the kubelet swapped `..data` is a move, not a fault.
    if (await moved()) throw new Moved();
    throw failed.reason;
  }
  const read = reads.map((r) => (r as PromiseFulfilledResult<{ bytes: Buffer; state: FileState }>).value);
  if (await moved()) throw new Moved();
  const same = await Promise.all(entries.map((e, i) => unchanged(e, e.file, read[i]!.state, read[i]!.bytes)));
  if (same.includes(false) || (await moved())) throw new Moved();
  return { bytes: read.map((r) => r.bytes), dataLinks: linksBefore.filter((l) => l !== '') };
}

/**
 * Reads cert, key and bundle from one generation of the mount. Before reading it notes where
 * each directory's `..data` points; it reads every file through its real path; afterwards it
 * checks that `..data` did not move, that every file still has the same real path, inode,
 * size, mtime and ctime, and that reading each file again gives the same bytes. If anything moved it tries again (a short back-off, up to
 * `maxAttempts`), then fails with GENERATION_UNSTABLE. Works for the kubelet's atomic swap and
 * for plain files rewritten in place (a torn pair that happens to look stable is then caught by
 * the key ↔ certificate check of `loadCredential`).
 */
export async function readGeneration(files: CredentialFiles, options: ReadGenerationOptions = {}): Promise<GenerationBytes> {
  const read = await readFiles(roleFiles(files), { ...options, what: 'credential files', explain: 'cert, key and bundle' });
  return { cert: read.bytes[0]!, key: read.bytes[1]!, ca: read.bytes[2]!, dataLinks: read.dataLinks, attempts: read.attempts };
}

/** Bytes of several files read as one consistent snapshot. */
export interface FilesBytes {
  /** In the order the files were given. */
  bytes: Buffer[];
  dataLinks: readonly string[];
  attempts: number;
}

/**
 * Reads any set of files as one consistent snapshot, the way {@link readGeneration} reads the
 * credential trio (`..data` of every directory unchanged, every file stable, bytes read twice).
 */
export async function readFiles(entries: readonly FileToRead[], options: ReadGenerationOptions & { what?: string; explain?: string } = {}): Promise<FilesBytes> {
  const maxAttempts = options.maxAttempts ?? 5;
  const dirs = [...new Set(entries.map((e) => path.dirname(e.file)))];
  for (let n = 1; n <= maxAttempts; n++) {
    try {
      const read = await attempt(entries, dirs);
      return { ...read, attempts: n };
    } catch (err) {
      if (!(err instanceof Moved)) throw err;
      if (n < maxAttempts) await sleep(2 * n * n);
    }
  }
  throw new MeshlessError(
    codes.GENERATION_UNSTABLE,
    `the ${options.what ?? 'files'} in ${dirs.join(', ')} kept changing during ${maxAttempts} reads, so no consistent generation of ${options.explain ?? entries.map((e) => e.what).join(', ')} could be read; will retry on the next change`,
    { file: dirs[0] },
  );
}
