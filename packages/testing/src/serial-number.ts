import { randomBytes } from 'node:crypto';

/**
 * A random positive 128-bit serial number as upper-case hex, in the exact form Node's
 * `X509Certificate#serialNumber` reports it (first byte 0x10..0x7f: positive, no leading zero).
 */
export function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x10 + (bytes[0]! % 0x70);
  return bytes.toString('hex').toUpperCase();
}

/**
 * Normalizes a caller's hex serial number to its minimal positive form, upper-case, so that the
 * value returned by `issue()` equals `new X509Certificate(cert).serialNumber`.
 */
export function normalizeSerialNumber(hex: string): string {
  const digits = hex.replace(/^0x/i, '').replace(/[:\s]/g, '');
  if (!/^[0-9a-fA-F]+$/.test(digits)) {
    throw new TypeError(`serialNumber must be a hex string, got ${JSON.stringify(hex)}`);
  }
  let bytes = Buffer.from(digits.length % 2 ? `0${digits}` : digits, 'hex');
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 1 && bytes[0] === 0) {
    throw new RangeError('serialNumber must be a positive number, got zero');
  }
  return bytes.toString('hex').toUpperCase();
}
