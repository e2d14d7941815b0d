import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';

/** One line of `/proc/self/mountinfo` (the fields meshless uses). */
export interface MountInfoEntry {
  readonly mountId: number;
  readonly parentId: number;
  /** The path, inside its filesystem, that is mounted (`/..2024_01_01_00_00_00.1/tls.crt` for a Secret subPath). */
  readonly root: string;
  /** Where it is mounted, in this process's mount namespace. */
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
}

/** Decodes the octal escapes the kernel writes for space, tab, newline and backslash. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses the text of `/proc/<pid>/mountinfo`; lines that do not parse are skipped. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const dash = fields.indexOf('-');
    if (fields.length < 10 || dash < 6 || dash + 2 >= fields.length) continue;
    const mountId = Number(fields[0]);
    const parentId = Number(fields[1]);
    if (!Number.isInteger(mountId) || !Number.isInteger(parentId)) continue;
    entries.push({
      mountId,
      parentId,
      root: unescapeMountPath(fields[3]!),
      mountPoint: unescapeMountPath(fields[4]!),
      fsType: fields[dash + 1]!,
      source: unescapeMountPath(fields[dash + 2]!),
    });
  }
  return entries;
}

/** Why a credential path will never see a rotation, for one file or the directory. */
export interface FrozenMountWarning {
  /** The path as the source uses it. */
  readonly path: string;
  readonly kind: 'file' | 'dir';
  readonly entry: MountInfoEntry;
}

/**
 * Finds credential paths that are mount points of a single file (a Kubernetes `subPath`, a
 * `docker -v file:file` bind mount), or a directory mounted from inside a kubelet generation
 * directory (`/..2024_…`). Such mounts pin one inode: the kubelet's `..data` swap, or any writer
 * that replaces files by rename, is never seen through them.
 *
 * `paths` maps each path the source reads to the candidate absolute spellings of it (as given,
 * and with its directory's real path); the last mount listed for a mount point wins, as in the
 * kernel.
 */
export function frozenMounts(entries: readonly MountInfoEntry[], files: ReadonlyMap<string, readonly string[]>, dirs: ReadonlyMap<string, readonly string[]>): FrozenMountWarning[] {
  const byMountPoint = new Map<string, MountInfoEntry>();
  for (const e of entries) byMountPoint.set(e.mountPoint, e);
  const found: FrozenMountWarning[] = [];
  for (const [file, spellings] of files) {
    const entry = spellings.map((s) => byMountPoint.get(s)).find((e) => e !== undefined);
    if (entry) found.push({ path: file, kind: 'file', entry });
  }
  for (const [dir, spellings] of dirs) {
    const entry = spellings.map((s) => byMountPoint.get(s)).find((e) => e !== undefined);
    if (entry && entry.root.split('/').some((segment) => segment.startsWith('..') && segment !== '..')) {
      found.push({ path: dir, kind: 'dir', entry });
    }
  }
  return found;
}

async function spellingsOf(p: string): Promise<string[]> {
  const out = new Set([path.resolve(p)]);
  try {
    out.add(path.join(await realpath(path.dirname(p)), path.basename(p)));
  } catch {
    // the directory is gone: the plain spelling is all there is
  }
  return [...out];
}

/**
 * Best effort: reads `/proc/self/mountinfo` (Linux only) and returns the frozen mounts among
 * `files` and `dirs`. Returns `[]` wherever mountinfo cannot be read.
 */
export async function findFrozenMounts(files: readonly string[], dirs: readonly string[], mountInfoPath = '/proc/self/mountinfo'): Promise<FrozenMountWarning[]> {
  let text: string;
  try {
    text = await readFile(mountInfoPath, 'utf8');
  } catch {
    return [];
  }
  const entries = parseMountInfo(text);
  const fileMap = new Map<string, string[]>();
  for (const f of files) fileMap.set(f, await spellingsOf(f));
  const dirMap = new Map<string, string[]>();
  for (const d of dirs) {
    const s = new Set([path.resolve(d)]);
    try {
      s.add(await realpath(d));
    } catch {
      // gone
    }
    dirMap.set(d, [...s]);
  }
  return frozenMounts(entries, fileMap, dirMap);
}
