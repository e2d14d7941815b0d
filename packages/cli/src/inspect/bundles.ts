import type { X509Certificate } from 'node:crypto';
import { parseSubjectAltName, trustDomainProblem, type TrustSet } from '@meshless/core/internal';
import { summarize, type CertificateSummary, type InspectWarning } from './report.js';

/** One trust domain's bundle, as `meshless inspect` lists it. */
export interface BundleSummary {
  trustDomain: string;
  /** True for our own trust domain's bundle (the credential's ca file). */
  own: boolean;
  /** The file it was read from. */
  file: string;
  /** `pem` or `jwks` (a SPIFFE bundle). */
  format: 'pem' | 'jwks';
  sequence?: number;
  refreshHintSeconds?: number;
  /** The CA certificates that verify peers of this trust domain (none: its keys were revoked). */
  authorities: CertificateSummary[];
  /** Keys of a SPIFFE bundle that were skipped, and why. */
  ignoredKeys?: Array<{ index: number; reason: string }>;
  /** Why this bundle is not used, when it is not (a federated bundle for our own trust domain). */
  ignored?: string;
}

/** The trust domain a CA certificate names in its URI SAN (`spiffe://td`), when it names one. */
export function trustDomainOfCA(cert: X509Certificate): string | undefined {
  for (const uri of parseSubjectAltName(cert.subjectAltName).uri) {
    if (!uri.startsWith('spiffe://')) continue;
    const td = uri.slice('spiffe://'.length).split('/')[0]!;
    if (trustDomainProblem(td) === undefined) return td;
  }
  return undefined;
}

/**
 * Every bundle per trust domain: our own first (from the ca file), then each federated one.
 * Warns about roots of another trust domain inside our own bundle (spiffe-helper's flattened
 * `include_federated_domains` bundle): they count for our own trust domain only.
 */
export function describeBundles(
  own: { trustDomain: string | undefined; file: string; roots: readonly X509Certificate[] },
  trust: TrustSet,
  now: number,
  warnings: InspectWarning[],
): BundleSummary[] {
  const out: BundleSummary[] = [];
  if (own.trustDomain !== undefined) {
    out.push({ trustDomain: own.trustDomain, own: true, file: own.file, format: 'pem', authorities: own.roots.map((c) => summarize(c, now)) });
    for (const root of own.roots) {
      const td = trustDomainOfCA(root);
      if (td === undefined || td === own.trustDomain) continue;
      const configured = trust.federation.has(td);
      warnings.push({
        kind: 'foreign-root',
        message:
          `the bundle of our own trust domain ${own.trustDomain} (${own.file}) holds a root of trust domain ${td} (${root.subject.replace(/\n/g, ', ')}): ` +
          `it is trusted to issue ${own.trustDomain} identities, and it does not make ${td} peers trusted (they are refused with MESHLESS_ERR_NO_BUNDLE${configured ? '' : ' unless its bundle is given with --federation or --bundle-map'}). ` +
          `A flattened bundle (spiffe-helper's include_federated_domains) mixes trust domains: give each federated trust domain its own file (see docs/federation.md)`,
      });
    }
  }
  for (const [td, bundle] of trust.bundles) {
    const summary: BundleSummary = {
      trustDomain: td,
      own: false,
      file: trust.files[td]!,
      format: bundle.format,
      authorities: bundle.x509Authorities.map((c) => summarize(c, now)),
    };
    if (bundle.sequence !== undefined) summary.sequence = bundle.sequence;
    if (bundle.refreshHintSeconds !== undefined) summary.refreshHintSeconds = bundle.refreshHintSeconds;
    if (bundle.ignoredKeys.length > 0) summary.ignoredKeys = bundle.ignoredKeys.map((k) => ({ ...k }));
    if (td === own.trustDomain) summary.ignored = `it is for our own trust domain: our own bundle (${own.file}) verifies ${td}`;
    else if (bundle.x509Authorities.length === 0) warnings.push({ kind: 'revoked-bundle', message: `the bundle of ${td} (${summary.file}) has no X.509 authority: that trust domain revoked its keys, and every peer of it is refused` });
    out.push(summary);
  }
  return out;
}
