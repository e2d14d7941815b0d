/** The files of one write: relative path → content. */
export type FileSet = Record<string, string | Buffer | Uint8Array>;

/**
 * Checks the relative paths of a file set the way the kubelet validates a volume payload: not
 * empty, not absolute, no empty, `.` or `..` segment, and no segment starting with `..` (those
 * names are reserved for the writer's own `..data` and timestamp directories).
 */
export function checkFileNames(files: FileSet, who: string): string[] {
  if (files === null || typeof files !== 'object') throw new TypeError(`${who}: files must be an object of name → content`);
  const names = Object.keys(files);
  for (const name of names) {
    const segments = name.split('/');
    if (name === '' || name.startsWith('/') || segments.some((s) => s === '' || s === '.' || s.startsWith('..'))) {
      throw new TypeError(`${who}: invalid file name ${JSON.stringify(name)}: use a relative path without empty, '.' or '..'-prefixed segments`);
    }
    const content = files[name];
    if (typeof content !== 'string' && !(content instanceof Uint8Array)) {
      throw new TypeError(`${who}: content of ${JSON.stringify(name)} must be a string or a Buffer`);
    }
  }
  return names;
}
