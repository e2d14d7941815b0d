import { x509 } from './x509.js';
import type { ExtendedKeyUsageName } from './options.js';

const { KeyUsageFlags } = x509;

// Encodings that never vary are built once: constructing an extension with @peculiar/x509 costs
// a serialization each time, and the generator only reads their DER.
const leafBasicConstraints = new x509.BasicConstraintsExtension(false, undefined, true);
const leafKeyUsage = new x509.KeyUsagesExtension(
  KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment | KeyUsageFlags.keyAgreement,
  true,
);
const caBasicConstraints = new x509.BasicConstraintsExtension(true, undefined, true);
const caKeyUsage = new x509.KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true);
const caLeafKeyUsage = new x509.KeyUsagesExtension(
  KeyUsageFlags.digitalSignature | KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign,
  true,
);
const defaultExtendedKeyUsage = new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);

export interface SubjectAltNames {
  uris?: readonly string[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
}

export function subjectAltName(names: SubjectAltNames): x509.Extension | undefined {
  const entries: x509.JsonGeneralName[] = [
    ...(names.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ...(names.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(names.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  return entries.length === 0 ? undefined : new x509.SubjectAlternativeNameExtension(entries, false);
}

export function extendedKeyUsage(usages: ReadonlyArray<ExtendedKeyUsageName | string> | undefined): x509.Extension | undefined {
  if (usages === undefined) return defaultExtendedKeyUsage;
  if (usages.length === 0) return undefined;
  const oids = usages.map((usage) => {
    if (/^\d+(\.\d+)+$/.test(usage)) return usage;
    const oid = (x509.ExtendedKeyUsage as Record<string, string>)[usage];
    if (oid === undefined) throw new TypeError(`unknown extendedKeyUsage ${JSON.stringify(usage)}: use a name like 'serverAuth' or a dotted OID`);
    return oid;
  });
  return new x509.ExtendedKeyUsageExtension(oids);
}

export function subjectKeyIdentifier(keyId: string): x509.Extension {
  return new x509.SubjectKeyIdentifierExtension(keyId);
}

export function authorityKeyIdentifier(keyId: string): x509.Extension {
  return new x509.AuthorityKeyIdentifierExtension(keyId);
}

/**
 * basicConstraints CA:true (critical, no path length: a CA certificate issued as a leaf must be
 * refused for being a CA, not for a path length), and keyCertSign|cRLSign.
 */
export function caConstraints(): x509.Extension[] {
  return [caBasicConstraints, caKeyUsage];
}

/** basicConstraints CA:false (critical), keyUsage digitalSignature|keyEncipherment|keyAgreement. */
export function leafConstraints(): x509.Extension[] {
  return [leafBasicConstraints, leafKeyUsage];
}

/** A CA certificate meant to be (mis)used as a leaf: CA:true, keyCertSign and digitalSignature. */
export function caLeafConstraints(): x509.Extension[] {
  return [caBasicConstraints, caLeafKeyUsage];
}
