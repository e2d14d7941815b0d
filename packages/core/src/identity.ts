import type { X509Certificate } from 'node:crypto';
import { createPeer, type Peer } from './peer.js';
import { SpiffeId, spiffeIdProblem } from './spiffe-id.js';

export interface SubjectAltNames {
  dns: string[];
  uri: string[];
  /** Entries of other types, as `type:value`. */
  other: string[];
}

/**
 * Reads Node's `subjectAltName` string (`DNS:a, URI:spiffe://td/x`). Node quotes values with
 * special characters as JSON string literals (`URI:"spiffe://evil/x, URI:spiffe://good/y"`),
 * so the string is tokenised, never searched: a quoted value is one value, whatever it holds.
 */
export function parseSubjectAltName(san: string | undefined): SubjectAltNames {
  const out: SubjectAltNames = { dns: [], uri: [], other: [] };
  if (!san) return out;
  let i = 0;
  const n = san.length;
  while (i < n) {
    const colon = san.indexOf(':', i);
    if (colon === -1) break;
    const type = san.slice(i, colon);
    let value: string;
    let j = colon + 1;
    if (san[j] === '"') {
      // JSON string literal: find the closing quote, skipping escapes.
      let k = j + 1;
      while (k < n && san[k] !== '"') k += san[k] === '\\' ? 2 : 1;
      const literal = san.slice(j, k + 1);
      try {
        value = JSON.parse(literal) as string;
      } catch {
        value = literal;
      }
      j = k + 1;
    } else {
      const sep = san.indexOf(', ', j);
      const end = sep === -1 ? n : sep;
      value = san.slice(j, end);
      j = end;
    }
    if (type === 'DNS') out.dns.push(value);
    else if (type === 'URI') out.uri.push(value);
    else out.other.push(`${type}:${value}`);
    // Skip the ", " separator.
    if (san.startsWith(', ', j)) j += 2;
    else if (j < n) {
      // Unexpected text after a value: treat the rest as opaque so nothing is misread as a SAN.
      out.other.push(san.slice(j));
      break;
    }
    i = j;
  }
  return out;
}

/** The subject CN when there is exactly one, else undefined. */
export function commonNameOf(subject: string | undefined): string | undefined {
  if (!subject) return undefined;
  let found: string | undefined;
  let count = 0;
  for (const line of subject.split('\n')) {
    if (line.startsWith('CN=')) {
      count++;
      found = line.slice(3);
    }
  }
  return count === 1 ? found : undefined;
}

/**
 * The identity a certificate proves. A SPIFFE ID is reported only for an X509-SVID: exactly
 * one URI SAN, a valid SPIFFE ID, and a certificate that is not a CA. Costs a few microseconds:
 * no ASN.1 library, only Node's own accessors.
 */
export function identityOf(cert: X509Certificate): Peer {
  const sans = parseSubjectAltName(cert.subjectAltName);
  let spiffeId: string | undefined;
  let trustDomain: string | undefined;
  if (!cert.ca && sans.uri.length === 1) {
    const uri = sans.uri[0]!;
    if (spiffeIdProblem(uri) === undefined) {
      const id = SpiffeId.parse(uri);
      if (id.path !== '') {
        spiffeId = uri;
        trustDomain = id.trustDomain;
      }
    }
  }
  const fields = {
    spiffeId,
    trustDomain,
    dnsNames: sans.dns,
    uris: sans.uri,
    commonName: commonNameOf(cert.subject),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
  };
  return createPeer(fields);
}
