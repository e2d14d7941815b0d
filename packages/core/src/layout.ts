import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { MeshlessError, codes } from './errors.js';

/** The three files of one credential, as absolute paths. */
export interface CredentialFiles {
  cert: string;
  key: string;
  ca: string;
}

/** A known way of naming the three files inside a mounted directory. */
export interface CredentialLayout {
  /** What writes this layout (for logs and errors). */
  readonly name: string;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** The layouts `fileSource({ dir })` recognises, in the order they are tried. */
export const credentialLayouts: readonly CredentialLayout[] = Object.freeze([
  { name: 'Kubernetes TLS Secret / cert-manager csi-driver / csi-driver-spiffe', cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' },
  { name: 'Istio file-mounted certificates', cert: 'cert-chain.pem', key: 'key.pem', ca: 'root-cert.pem' },
  { name: 'spiffe-helper', cert: 'svid.pem', key: 'svid_key.pem', ca: 'svid_bundle.pem' },
  { name: 'GKE workload certificates', cert: 'certificates.pem', key: 'private_key.pem', ca: 'ca_certificates.pem' },
].map((l) => Object.freeze(l)));

/** Every file name any layout uses (the watcher reacts to these and to `..`-prefixed entries). */
export const layoutFileNames: ReadonlySet<string> = new Set(credentialLayouts.flatMap((l) => [l.cert, l.key, l.ca]));

/** Where the files of a source are, and how they were found. */
export interface ResolvedFiles {
  files: CredentialFiles;
  /** The layout detected in `dir`, when one was used for at least one file. */
  layout?: CredentialLayout;
}

/** What the caller named: a directory, explicit files, or a directory plus some explicit files. */
export interface FileLocation {
  dir?: string;
  certFile?: string;
  keyFile?: string;
  caFile?: string;
}

const roles = ['cert', 'key', 'ca'] as const;
type Role = (typeof roles)[number];
const optionOf: Record<Role, 'certFile' | 'keyFile' | 'caFile'> = { cert: 'certFile', key: 'keyFile', ca: 'caFile' };

/**
 * Finds the three files. Explicit `certFile` / `keyFile` / `caFile` always win (relative ones
 * are resolved against `dir` when given); the roles left open are filled by the first layout
 * whose files for those roles all exist in `dir`. Throws `LAYOUT_NOT_FOUND` listing every name
 * that was looked for, or `FILE_UNREADABLE` when `dir` cannot be listed.
 */
export async function resolveFiles(location: FileLocation): Promise<ResolvedFiles> {
  const dir = location.dir === undefined ? undefined : path.resolve(location.dir);
  const explicit: Partial<CredentialFiles> = {};
  for (const role of roles) {
    const given = location[optionOf[role]];
    if (given !== undefined) explicit[role] = dir === undefined ? path.resolve(given) : path.resolve(dir, given);
  }
  const open = roles.filter((r) => explicit[r] === undefined);
  if (open.length === 0) return { files: explicit as CredentialFiles };
  if (dir === undefined) {
    throw new MeshlessError(
      codes.INVALID_OPTION,
      `fileSource needs { dir } or all of { certFile, keyFile, caFile }; missing ${open.map((r) => optionOf[r]).join(', ')}`,
      { field: optionOf[open[0]!] },
    );
  }
  let entries: Set<string>;
  try {
    entries = new Set(await readdir(dir));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : code === 'EACCES' ? 'cannot be listed (permission denied)' : `cannot be listed (${code ?? 'error'})`;
    throw new MeshlessError(codes.FILE_UNREADABLE, `credential directory ${dir} ${why}; check the volume mount`, { file: dir, cause });
  }
  for (const layout of credentialLayouts) {
    if (open.every((r) => entries.has(layout[r]))) {
      const files = { ...explicit } as CredentialFiles;
      for (const r of open) files[r] = path.join(dir, layout[r]);
      return { files, layout };
    }
  }
  throw new MeshlessError(codes.LAYOUT_NOT_FOUND, layoutNotFoundMessage(dir, open, entries), { file: dir });
}

function layoutNotFoundMessage(dir: string, open: readonly Role[], entries: ReadonlySet<string>): string {
  const tried = credentialLayouts
    .map((l) => {
      const names = open.map((r) => l[r]);
      const missing = names.filter((n) => !entries.has(n));
      const partial = missing.length < names.length ? ` (missing ${missing.join(', ')})` : '';
      return `${names.join(' + ')} [${l.name}]${partial}`;
    })
    .join('; ');
  const visible = [...entries].filter((e) => !e.startsWith('..')).sort();
  const seen = visible.length === 0 ? 'it is empty' : `it holds ${visible.slice(0, 12).join(', ')}${visible.length > 12 ? ', …' : ''}`;
  return `no known credential layout in ${dir}: looked for ${tried}; ${seen}. Pass certFile, keyFile and caFile to name the files explicitly`;
}
