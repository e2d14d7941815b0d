import type { X509Certificate } from 'node:crypto';
import { MeshlessError, codes } from './errors.js';
import { trustDomainProblem } from './spiffe-id.js';
import { publicJwkOf } from './spiffe-bundle.js';

export interface FormatSpiffeBundleOptions {
  /** `spiffe_sequence`: increase it whenever the bundle changes. */
  sequence?: number;
  /** `spiffe_refresh_hint`, in seconds. */
  refreshHintSeconds?: number;
}

function nonNegativeInteger(value: number | undefined, name: string): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
    throw new MeshlessError(codes.INVALID_OPTION, `${name} must be a non-negative integer (got ${String(value)})`, { field: name });
  }
}

/** The JWK Set object of one bundle (see {@link formatSpiffeBundle}). */
export function spiffeBundleDocument(certs: readonly X509Certificate[], options: FormatSpiffeBundleOptions = {}): Record<string, unknown> {
  nonNegativeInteger(options.sequence, 'sequence');
  nonNegativeInteger(options.refreshHintSeconds, 'refreshHintSeconds');
  const keys = certs.map((cert) => {
    if (!cert.ca) throw new MeshlessError(codes.BUNDLE_INVALID, `${JSON.stringify(cert.subject.replace(/\n/g, ', '))} is not a CA certificate; a SPIFFE bundle holds only CA certificates`);
    const jwk = publicJwkOf(cert) ?? { kty: 'RSA' };
    const { kty, ...params } = jwk;
    return { use: 'x509-svid', kty, ...params, x5c: [cert.raw.toString('base64')] };
  });
  return {
    keys,
    ...(options.sequence === undefined ? {} : { spiffe_sequence: options.sequence }),
    ...(options.refreshHintSeconds === undefined ? {} : { spiffe_refresh_hint: options.refreshHintSeconds }),
  };
}

/**
 * Writes CA certificates as a SPIFFE bundle: the JWK Set of the SPIFFE Trust Domain and Bundle
 * spec, one `use: "x509-svid"` key per CA (its public key parameters and `x5c` with the DER
 * certificate in standard base64). Returns JSON text ending with a newline.
 */
export function formatSpiffeBundle(certs: readonly X509Certificate[], options: FormatSpiffeBundleOptions = {}): string {
  return JSON.stringify(spiffeBundleDocument(certs, options), null, 2) + '\n';
}

/**
 * Writes a bundle map (grpc-go's `spiffe_trust_bundle_map_file`): `{ "trust_domains": { td:
 * <SPIFFE bundle> } }`, trust domains bare and sorted. Keys may be bare or `spiffe://`; one given
 * twice is an error.
 */
export function formatBundleMap(
  bundles: ReadonlyMap<string, readonly X509Certificate[]> | Readonly<Record<string, readonly X509Certificate[]>>,
  options: FormatSpiffeBundleOptions = {},
): string {
  const entries = bundles instanceof Map ? [...(bundles as ReadonlyMap<string, readonly X509Certificate[]>)] : Object.entries(bundles);
  const out = new Map<string, Record<string, unknown>>();
  for (const [key, certs] of entries) {
    const td = key.startsWith('spiffe://') ? key.slice('spiffe://'.length).replace(/\/$/, '') : key;
    const problem = trustDomainProblem(td);
    if (problem !== undefined) throw new MeshlessError(codes.BUNDLE_INVALID, `${JSON.stringify(key)} is not a trust domain name (${problem})`, { field: 'bundleMap' });
    if (out.has(td)) throw new MeshlessError(codes.BUNDLE_INVALID, `trust domain ${td} is given twice; give each trust domain one bundle`, { field: 'bundleMap' });
    out.set(td, spiffeBundleDocument(certs, options));
  }
  const sorted = Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify({ trust_domains: sorted }, null, 2) + '\n';
}
