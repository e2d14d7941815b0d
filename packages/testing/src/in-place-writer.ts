import { mkdir, open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join, resolve } from 'node:path';
import { checkFileNames, type FileSet } from './file-set.js';
import { fileModeFor, type FileModeOptions } from './file-mode.js';

/** Options of one {@link InPlaceWriter.write}. */
export interface InPlaceWriteOptions {
  /** Pause between one file and the next, in milliseconds: the window where the set is torn. */
  betweenFilesMs?: number;
  /** Pause in the middle of each file (after its first half), in milliseconds: the file itself is torn. */
  midFileMs?: number;
  /**
   * Called (and awaited) after each file is complete, with its name: lets a test observe the
   * torn state deterministically instead of timing it.
   */
  onFileWritten?: (name: string) => unknown;
}

/** A writer that rewrites files in place, one after the other: what a careless deploy script does. */
export interface InPlaceWriter {
  /** The directory written to (absolute). */
  readonly dir: string;
  /**
   * Rewrites each file in place in the order given: open with truncation, write, close. Between
   * two files a reader can see a new certificate with the old key. Symlinks are followed.
   */
  write(files: FileSet, options?: InPlaceWriteOptions): Promise<void>;
}

/**
 * A torn writer, to test that readers never load a mismatched certificate and key: unlike
 * {@link kubernetesVolume}, nothing here is atomic.
 *
 * @example
 * const writer = inPlaceWriter(dir);
 * await writer.write({ 'tls.crt': next.cert, 'tls.key': next.key }, { betweenFilesMs: 50 });
 */
export function inPlaceWriter(dir: string, options: FileModeOptions = {}): InPlaceWriter {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('inPlaceWriter: dir must be a non-empty path');
  const root = resolve(dir);
  return {
    dir: root,
    async write(files: FileSet, writeOptions: InPlaceWriteOptions = {}): Promise<void> {
      const names = checkFileNames(files, 'inPlaceWriter.write');
      await mkdir(root, { recursive: true });
      for (const [index, name] of names.entries()) {
        if (index > 0 && writeOptions.betweenFilesMs) await sleep(writeOptions.betweenFilesMs);
        const path = join(root, name);
        if (name.includes('/')) await mkdir(dirname(path), { recursive: true });
        const content = files[name]!;
        const bytes = typeof content === 'string' ? Buffer.from(content) : content;
        const handle = await open(path, 'w', fileModeFor(name, options));
        try {
          if (writeOptions.midFileMs) {
            const half = Math.floor(bytes.length / 2);
            await handle.write(bytes.subarray(0, half));
            await sleep(writeOptions.midFileMs);
            await handle.write(bytes.subarray(half));
          } else {
            await handle.write(bytes);
          }
        } finally {
          await handle.close();
        }
        await writeOptions.onFileWritten?.(name);
      }
    },
  };
}
