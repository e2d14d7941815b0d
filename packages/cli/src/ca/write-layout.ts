import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshlessError, codes } from '@meshless/core';
import { kubernetesVolume } from '@meshless/testing';
import { issueLayouts, type IssueLayout } from '../layouts.js';
import { PRIVATE_MODE, PUBLIC_MODE, writeFileAtomic } from '../files.js';

/** PEM contents of one credential. */
export interface CredentialPem {
  cert: string;
  key: string;
  ca: string;
}

/**
 * Writes a credential into `dir` in the given layout. `kubernetes` goes through the kubelet's
 * atomic `..data` swap (a live mount rotates in one step); the others replace each file
 * atomically, one after the other. Keys are written with mode 0600.
 */
export async function writeLayout(dir: string, layout: IssueLayout, pem: CredentialPem): Promise<string[]> {
  const { files, atomicSwap } = issueLayouts[layout];
  if (atomicSwap) {
    for (const name of [files.cert, files.key, files.ca]) {
      const existing = await lstat(join(dir, name)).catch(() => undefined);
      if (existing && !existing.isSymbolicLink()) {
        throw new MeshlessError(codes.INVALID_OPTION, `${join(dir, name)} is a plain file, not a symlink into ..data: the kubernetes layout cannot swap it atomically; use --layout files for this directory, or an empty --out`, { file: join(dir, name), field: 'layout' });
      }
    }
    const volume = kubernetesVolume(dir, { keyFileMode: PRIVATE_MODE, fileMode: PUBLIC_MODE });
    try {
      await volume.write({ [files.cert]: pem.cert, [files.key]: pem.key, [files.ca]: pem.ca });
    } finally {
      await volume.close();
    }
  } else {
    // Key first: a reader that sees the new certificate then finds its key already there.
    await writeFileAtomic(join(dir, files.key), pem.key, PRIVATE_MODE);
    await writeFileAtomic(join(dir, files.cert), pem.cert, PUBLIC_MODE);
    await writeFileAtomic(join(dir, files.ca), pem.ca, PUBLIC_MODE);
  }
  return [files.cert, files.key, files.ca].map((f) => join(dir, f));
}
