/** Default permissions of a written file: 0o600 for anything that looks like a key, 0o644 else. */
export interface FileModeOptions {
  /** Mode of files that are not keys. Default `0o644`. */
  fileMode?: number;
  /** Mode of files whose name ends in `.key` or contains `key` (`tls.key`, `key.pem`, `svid_key.pem`). Default `0o600`. */
  keyFileMode?: number;
}

export function isKeyFileName(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1).toLowerCase();
  return base.endsWith('.key') || base.includes('key');
}

export function fileModeFor(name: string, options: FileModeOptions = {}): number {
  return isKeyFileName(name) ? (options.keyFileMode ?? 0o600) : (options.fileMode ?? 0o644);
}
