import { lstat, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { MeshlessError, codes } from '@meshless/core';
import { findFrozenMounts, resolveFiles, type FrozenMountWarning } from '@meshless/core/internal';
import { layoutName, type LayoutFiles } from '../layouts.js';

/** A credential layout found in a directory, as `fileSource({ dir })` would find it. */
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
  /** Paths mounted so that they never see a rotation (a `subPath` mount, a single-file bind mount). */
  frozenMounts: FrozenMountWarning[];
}

/**
 * Finds the credential in `dir` with the SDK's own layout detection (core's `resolveFiles`),
 * and describes how the files are mounted: through the kubelet's `..data` swap, or frozen by a
 * `subPath` mount (core's `findFrozenMounts`).
 */
export async function detectLayout(dir: string): Promise<DetectedLayout> {
  const abs = resolve(dir);
  let info;
  try {
    info = await stat(abs);
  } catch (cause) {
    throw new MeshlessError(codes.FILE_UNREADABLE, `cannot read ${dir} (${(cause as NodeJS.ErrnoException).code ?? 'error'}); pass the directory where the credential is mounted`, { file: dir, cause });
  }
  if (!info.isDirectory()) {
    throw new MeshlessError(codes.LAYOUT_NOT_FOUND, `${dir} is a file; pass the directory that holds the certificate, key and bundle`, { file: dir });
  }
  const { files, layout } = await resolveFiles({ dir: abs });
  let dataTarget: string | undefined;
  try {
    if ((await lstat(join(abs, '..data'))).isSymbolicLink()) dataTarget = await readlink(join(abs, '..data'));
  } catch {
    dataTarget = undefined;
  }
  let atomicSwap = false;
  if (dataTarget !== undefined) {
    const certLink = await lstat(files.cert);
    atomicSwap = certLink.isSymbolicLink() && (await readlink(files.cert)).startsWith('..data/');
  }
  const out: DetectedLayout = {
    name: layout ? layoutName(layout) : 'explicit',
    from: layout?.name ?? 'explicit files',
    files,
    atomicSwap,
    frozenMounts: await findFrozenMounts([files.cert, files.key, files.ca], [abs]),
  };
  if (dataTarget !== undefined) out.dataTarget = dataTarget;
  return out;
}
