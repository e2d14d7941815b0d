import { lstat, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshlessError, codes } from '@meshless/core';
import { knownLayouts, type LayoutFiles } from '../layouts.js';

/** A credential layout found in a directory. */
export interface DetectedLayout {
  /** `kubernetes`, `istio`, `spiffe-helper` or `gke`. */
  name: string;
  /** Who writes this layout. */
  from: string;
  /** Absolute paths of the three files. */
  files: LayoutFiles;
  /** True when the files are symlinks through `..data` (the kubelet's atomic swap). */
  atomicSwap: boolean;
  /** Where `..data` points (the current generation directory), when there is one. */
  dataTarget?: string;
  /** Files that are mount points of their own (a `subPath` mount: it never rotates). */
  subPathMounts: string[];
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/**
 * Finds which known layout `dir` holds (the first whose certificate file exists), checks that
 * its key and bundle are there too, and describes how the files are mounted.
 */
export async function detectLayout(dir: string): Promise<DetectedLayout> {
  let info;
  try {
    info = await stat(dir);
  } catch (cause) {
    throw new MeshlessError(codes.FILE_UNREADABLE, `cannot read ${dir} (${(cause as NodeJS.ErrnoException).code ?? 'error'}); pass the directory where the credential is mounted`, { file: dir, cause });
  }
  if (!info.isDirectory()) {
    throw new MeshlessError(codes.LAYOUT_NOT_FOUND, `${dir} is a file; pass the directory that holds the certificate, key and bundle`, { file: dir });
  }
  for (const layout of knownLayouts) {
    const files = { cert: join(dir, layout.files.cert), key: join(dir, layout.files.key), ca: join(dir, layout.files.ca) };
    if (!(await isFile(files.cert))) continue;
    for (const [field, file] of [['key', files.key], ['ca', files.ca]] as const) {
      if (!(await isFile(file))) {
        throw new MeshlessError(codes.FILE_UNREADABLE, `${dir} looks like the ${layout.name} layout (${layout.files.cert} is there) but ${layout.files[field]} is missing; mount all three files of one issuance`, { file, field });
      }
    }
    const dataLink = join(dir, '..data');
    let dataTarget: string | undefined;
    try {
      if ((await lstat(dataLink)).isSymbolicLink()) dataTarget = await readlink(dataLink);
    } catch {
      dataTarget = undefined;
    }
    let atomicSwap = false;
    if (dataTarget !== undefined) {
      const certLink = await lstat(files.cert);
      atomicSwap = certLink.isSymbolicLink() && (await readlink(files.cert)).startsWith('..data/');
    }
    const out: DetectedLayout = { name: layout.name, from: layout.from, files, atomicSwap, subPathMounts: await mountedFiles(Object.values(files)) };
    if (dataTarget !== undefined) out.dataTarget = dataTarget;
    return out;
  }
  const expected = knownLayouts.map((l) => `${l.files.cert}/${l.files.key}/${l.files.ca} (${l.name})`).join(', ');
  throw new MeshlessError(codes.LAYOUT_NOT_FOUND, `no credential layout found in ${dir}: expected one of ${expected}`, { file: dir });
}

/** Decodes the octal escapes of /proc/self/mountinfo (`\040` is a space). */
function unescapeMount(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The files among `paths` that are mount points themselves (Linux only; empty elsewhere). */
async function mountedFiles(paths: readonly string[]): Promise<string[]> {
  let table: string;
  try {
    table = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const mountPoints = new Set(table.split('\n').map((line) => line.split(' ')[4]).filter((p): p is string => !!p).map(unescapeMount));
  const out: string[] = [];
  for (const path of paths) {
    const real = await realpath(path).catch(() => path);
    if (mountPoints.has(real) || mountPoints.has(path)) out.push(path);
  }
  return out;
}
