import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MeshlessError, codes } from '@meshless/core';
import { parseSubjectAltName } from '@meshless/core/internal';
import { createTestCA, loadTestCA, type KeyType, type TestCA } from '@meshless/testing';
import { PRIVATE_MODE, PUBLIC_MODE, writeFileAtomic } from '../files.js';

/** File names of a persisted dev CA. */
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

/** A dev CA read back from disk. */
export interface StoredCA {
  dir: string;
  certFile: string;
  keyFile: string;
  trustDomain: string;
  certPem: string;
  keyPem: string;
  certificate: X509Certificate;
  /** Issues leaves signed by this CA. */
  signer: TestCA;
}

export interface InitOptions {
  out: string;
  trustDomain: string;
  keyType: KeyType;
  ttlMs: number;
  force: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates a dev root CA for a trust domain and persists it: `ca.crt` (the root, also the trust
 * bundle to distribute) and `ca.key` (mode 0600). Refuses to overwrite an existing key unless
 * `force`: replacing a CA invalidates every certificate it issued.
 */
export async function initCA(options: InitOptions): Promise<StoredCA> {
  const certFile = join(options.out, CA_CERT_FILE);
  const keyFile = join(options.out, CA_KEY_FILE);
  if (!options.force && (await exists(keyFile))) {
    throw new MeshlessError(codes.INVALID_OPTION, `${keyFile} already exists: a new CA would orphan every certificate the old one issued; pass --force to replace it, or choose another --out`, { file: keyFile });
  }
  const ca = await createTestCA({ trustDomain: options.trustDomain, keyType: options.keyType, ttlMs: options.ttlMs });
  await writeFileAtomic(keyFile, ca.keyPem, PRIVATE_MODE);
  await writeFileAtomic(certFile, ca.certPem, PUBLIC_MODE);
  return { dir: options.out, certFile, keyFile, trustDomain: ca.trustDomain, certPem: ca.certPem, keyPem: ca.keyPem, certificate: new X509Certificate(ca.certPem), signer: ca };
}

async function readOrFail(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code ?? 'error';
    throw new MeshlessError(codes.FILE_UNREADABLE, `cannot read the CA ${what} ${file} (${code}); create a CA with \`meshless ca init --out DIR --trust-domain TD\` and pass that DIR as --ca`, { file, cause });
  }
}

/** Reads a CA persisted by {@link initCA}, checking that key and certificate belong together. */
export async function loadCA(dir: string): Promise<StoredCA> {
  const certFile = join(dir, CA_CERT_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  const certPem = await readOrFail(certFile, 'certificate');
  const keyPem = await readOrFail(keyFile, 'private key');
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certPem);
  } catch (cause) {
    throw new MeshlessError(codes.PEM_INVALID, `${certFile} is not a PEM certificate`, { file: certFile, cause });
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new MeshlessError(codes.KEY_INVALID, `${keyFile} is not a readable unencrypted PEM private key`, { file: keyFile });
  }
  if (!certificate.ca) throw new MeshlessError(codes.INVALID_OPTION, `${certFile} is not a CA certificate`, { file: certFile });
  if (!certificate.checkPrivateKey(key)) {
    throw new MeshlessError(codes.KEY_MISMATCH, `${keyFile} does not belong to ${certFile}; restore the pair from the same \`meshless ca init\``, { file: keyFile });
  }
  const trustDomain = trustDomainOf(certificate);
  if (!trustDomain) throw new MeshlessError(codes.NO_IDENTITY, `${certFile} names no trust domain (URI SAN spiffe://<td>); it was not made by \`meshless ca init\``, { file: certFile });
  let signer: TestCA;
  try {
    signer = await loadTestCA({ certPem, keyPem, trustDomain });
  } catch (cause) {
    throw new MeshlessError(codes.KEY_INVALID, `cannot sign with ${keyFile}: ${(cause as Error).message}`, { file: keyFile, cause });
  }
  return { dir, certFile, keyFile, trustDomain, certPem, keyPem, certificate, signer };
}

/** The trust domain a CA certificate names in its `spiffe://<td>` URI SAN. */
export function trustDomainOf(certificate: X509Certificate): string | undefined {
  const uri = parseSubjectAltName(certificate.subjectAltName).uri.find((u) => /^spiffe:\/\/[a-z0-9._-]+\/?$/.test(u));
  return uri?.slice('spiffe://'.length).replace(/\/$/, '');
}

