import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** File mode of private keys: readable and writable by their owner only. */
export const PRIVATE_MODE = 0o600;
/** File mode of certificates and bundles. */
export const PUBLIC_MODE = 0o644;

/**
 * Writes a file atomically: a temporary file in the same directory (created with `mode`, so a
 * key is never readable by others, not even for a moment), then a rename over the target.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
