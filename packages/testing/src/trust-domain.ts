/** Checks a SPIFFE trust domain name (lowercase letters, digits, '.', '_', '-'). */
export function checkTrustDomain(value: unknown, who: string): string {
  if (typeof value !== 'string' || !/^[a-z0-9._-]+$/.test(value)) {
    throw new TypeError(
      `${who}: trustDomain must be a SPIFFE trust domain name like 'prod.example' (lowercase letters, digits, '.', '_', '-'), got ${JSON.stringify(value)}`,
    );
  }
  return value;
}
