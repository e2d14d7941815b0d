import { createHash } from 'node:crypto';

/**
 * The key identifier of RFC 5280 §4.2.1.2 method (1): the SHA-1 of the subjectPublicKey BIT
 * STRING (without its tag, length and unused-bits octet), as hex. Computed here from the SPKI DER
 * because @peculiar/x509's `SubjectKeyIdentifierExtension.create` costs about 1 ms a call.
 */
export function keyIdentifier(spki: ArrayBuffer | Uint8Array): string {
  const der = spki instanceof Uint8Array ? spki : new Uint8Array(spki);
  const outer = readHeader(der, 0, 0x30); // SubjectPublicKeyInfo ::= SEQUENCE
  const algorithm = readHeader(der, outer.contentStart, 0x30); // AlgorithmIdentifier
  const bitString = readHeader(der, algorithm.contentStart + algorithm.length, 0x03);
  const key = der.subarray(bitString.contentStart + 1, bitString.contentStart + bitString.length);
  return createHash('sha1').update(key).digest('hex');
}

function readHeader(der: Uint8Array, offset: number, expectedTag: number): { contentStart: number; length: number } {
  if (der[offset] !== expectedTag) {
    throw new Error(`malformed SubjectPublicKeyInfo: expected tag 0x${expectedTag.toString(16)} at offset ${offset}`);
  }
  let length = der[offset + 1]!;
  let contentStart = offset + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[contentStart + i]!;
    contentStart += octets;
  }
  if (contentStart + length > der.length) throw new Error('malformed SubjectPublicKeyInfo: truncated');
  return { contentStart, length };
}
