import { X509Certificate } from 'node:crypto';
import { MeshlessError, codes } from './errors.js';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Where a PEM input came from, for error messages: a field name and, when read, a file. */
export interface PemOrigin {
  field: string;
  file?: string;
}

export function describe(origin: PemOrigin): string {
  return origin.file ? `${origin.field} file ${origin.file}` : `${origin.field}`;
}

export function toText(input: string | Buffer | undefined): string {
  if (input === undefined || input === null) return '';
  return typeof input === 'string' ? input : input.toString('latin1');
}

/** Parses every CERTIFICATE block of a PEM text, in order. Throws a coded error naming the origin. */
export function parseCertificates(input: string | Buffer | undefined, origin: PemOrigin): X509Certificate[] {
  const text = toText(input);
  if (text.trim().length === 0) {
    throw new MeshlessError(codes.PEM_EMPTY, `${describe(origin)} is empty: it should hold PEM "CERTIFICATE" blocks`, origin);
  }
  const blocks = text.match(CERT_BLOCK);
  if (!blocks) {
    throw new MeshlessError(codes.PEM_INVALID, `${describe(origin)} holds no PEM "-----BEGIN CERTIFICATE-----" block; check that the right file is mounted`, origin);
  }
  return blocks.map((block, i) => {
    try {
      const cert = new X509Certificate(block);
      // Node parses some certificates whose public key it cannot decode, and only throws when the
      // key is used (verifying a peer, much later): refuse them here, at load.
      void cert.publicKey;
      return cert;
    } catch (cause) {
      throw new MeshlessError(codes.PEM_INVALID, `${describe(origin)}: certificate #${i + 1} cannot be parsed (${(cause as Error).message}); the file may be truncated or corrupt`, { ...origin, cause });
    }
  });
}

/** Canonical PEM of certificates (one block each, newline-terminated). */
export function certificatesToPem(certs: readonly X509Certificate[]): string {
  return certs.map((c) => c.toString().trimEnd() + '\n').join('');
}
