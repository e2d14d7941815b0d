import { readFile } from 'node:fs/promises';
import { MeshlessError, codes, loadCredential, type Credential, type FederationFiles } from '@meshless/core';
import { readTrustSet, resolveFiles, resolveTrustFiles, type CredentialFiles } from '@meshless/core/internal';

/** A credential read once from a mounted directory, with the files it came from. */
export interface DirCredential {
  credential: Credential;
  files: CredentialFiles;
}

/**
 * Reads and validates the credential in `dir` once, as `fileSource({ dir })` would on its first
 * load (same layout detection, same checks, same coded errors).
 */
export async function loadDirCredential(dir: string, federation: FederationFiles = {}): Promise<DirCredential> {
  const { files } = await resolveFiles({ dir });
  const read = async (file: string, field: string) => {
    try {
      return await readFile(file);
    } catch (cause) {
      throw new MeshlessError(codes.FILE_UNREADABLE, `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { file, field, cause });
    }
  };
  const [cert, key, ca] = await Promise.all([read(files.cert, 'cert'), read(files.key, 'key'), read(files.ca, 'ca')]);
  // Federated bundles (paths relative to the working directory), read as fileSource reads them.
  const trust = await readTrustSet(resolveTrustFiles(federation));
  const input = { cert, key, ca, ...(trust.federation.size === 0 ? {} : { federation: trust.federation }) };
  return { credential: loadCredential(input, { files: { ...files, federation: trust.files } }), files };
}
