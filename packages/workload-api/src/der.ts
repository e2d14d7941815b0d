import { X509Certificate } from 'node:crypto';

/** Why a DER field cannot be used (the caller turns it into a coded error naming the field). */
export class DerError extends Error {}

/** Length of the DER element (tag + length + content) that starts at `offset`. */
function elementLength(buf: Buffer, offset: number): number {
  if (buf.length - offset < 2) throw new DerError(`truncated at byte ${offset}`);
  if (buf[offset] !== 0x30) throw new DerError(`byte ${offset} does not start a DER SEQUENCE (a certificate): is it PEM instead of DER?`);
  const first = buf[offset + 1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4) throw new DerError(`unsupported DER length at byte ${offset + 1}`);
  if (buf.length - offset < 2 + n) throw new DerError(`truncated at byte ${offset}`);
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
  return 2 + n + len;
}

/** Parses concatenated DER certificates (the Workload API's chains and bundles), in order. */
export function parseDerCertificates(buf: Buffer): X509Certificate[] {
  const out: X509Certificate[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const len = elementLength(buf, offset);
    if (offset + len > buf.length) throw new DerError(`certificate #${out.length + 1} is truncated (${len} bytes announced, ${buf.length - offset} left)`);
    try {
      out.push(new X509Certificate(buf.subarray(offset, offset + len)));
    } catch (cause) {
      throw new DerError(`certificate #${out.length + 1} cannot be parsed (${(cause as Error).message})`);
    }
    offset += len;
  }
  return out;
}

/** PEM text of a PKCS#8 DER key, for loadCredential (which parses and checks it). */
export function pkcs8DerToPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}-----END PRIVATE KEY-----\n`;
}
