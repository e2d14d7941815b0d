// Certificates for the real-client tests, written as PEM files in a fresh temp dir (removed by
// `remove()`); private keys exist only there, never in the repository.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCA, type TestCA } from '@meshless/testing';
import { FRONTEND_ID, TD, createPki, type ClientCert, type Pki } from '@meshless/fixtures/http-server';

export interface ClientFiles {
  cert: string;
  key: string;
}

export interface PkiFiles {
  pki: Pki;
  other: TestCA;
  dir: string;
  /** The CA bundle clients use to verify the server. */
  caFile: string;
  allowed: ClientFiles;
  denied: ClientFiles;
  otherCa: ClientFiles;
  expired: ClientFiles;
  remove(): Promise<void>;
}

async function write(dir: string, name: string, client: ClientCert): Promise<ClientFiles> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await writeFile(cert, client.cert);
  await writeFile(key, client.key, { mode: 0o600 });
  return { cert, key };
}

export async function pkiFiles(): Promise<PkiFiles> {
  const pki = await createPki();
  const other = await createTestCA({ trustDomain: TD });
  const dir = await mkdtemp(join(tmpdir(), 'meshless-http-server-'));
  const caFile = join(dir, 'ca.crt');
  await writeFile(caFile, pki.ca.bundle);
  const expiredCert = await pki.ca.issue({ spiffeId: FRONTEND_ID, notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() - 3_600_000) });
  return {
    pki,
    other,
    dir,
    caFile,
    allowed: await write(dir, 'frontend', pki.frontend),
    denied: await write(dir, 'batch', pki.batch),
    otherCa: await write(dir, 'other-ca', await other.issue(FRONTEND_ID)),
    expired: await write(dir, 'expired', expiredCert),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
