import { createPrivateKey, type X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { MeshlessError, codes, identityOf, isMeshlessError, loadCredential, type FederationFiles, type MeshlessErrorCode } from '@meshless/core';
import { parseCertificates, readTrustSet, resolveTrustFiles, verifyChain, type TrustSet } from '@meshless/core/internal';
import { describeBundles, type BundleSummary } from './bundles.js';
import { detectLayout, type DetectedLayout } from './detect.js';

/** One certificate, as `meshless inspect` shows it. */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  serialNumber: string;
  isCA: boolean;
  notBefore: string;
  notAfter: string;
  /** Negative when expired. */
  timeLeftMs: number;
  fingerprint256: string;
  spiffeId?: string;
  dnsNames: string[];
}

/** Something worth knowing that does not stop the credential from working. */
export interface InspectWarning {
  kind: 'expiring-soon' | 'subpath-mount' | 'expired-root' | 'root-not-yet-valid' | 'no-spiffe-id' | 'cn-only' | 'foreign-root' | 'revoked-bundle' | 'federation';
  message: string;
}

/** What `meshless inspect` found in a directory. */
export interface InspectReport {
  path: string;
  layout?: Omit<DetectedLayout, 'frozenMounts'>;
  identity?: { id: string; spiffeId?: string; trustDomain?: string; dnsNames: string[]; uris: string[]; commonName?: string };
  validity?: { notBefore: string; notAfter: string; timeLeftMs: number; lifetimeUsed: number };
  key?: { type: string; matchesLeaf: boolean };
  /** As served: leaf first, then intermediates. */
  chain: CertificateSummary[];
  /** The trust bundle's roots. */
  bundle: CertificateSummary[];
  /** Every trust bundle per trust domain: our own, then the federated ones (--federation, --bundle-map). */
  bundles?: BundleSummary[];
  /** Subjects from the leaf to the root that verified it, when the chain verifies. */
  verifiedPath?: string[];
  ok: boolean;
  error?: { code: MeshlessErrorCode; message: string; file?: string };
  warnings: InspectWarning[];
}

/** Share of a leaf's lifetime after which it should have been renewed (cert-manager's default). */
export const RENEW_AT_SHARE = 2 / 3;

function oneLine(name: string): string {
  return name.replace(/\n/g, ', ');
}

/** One certificate as `inspect` and `probe` show it. */
export function summarize(cert: X509Certificate, now: number): CertificateSummary {
  const id = identityOf(cert);
  const out: CertificateSummary = {
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    serialNumber: cert.serialNumber,
    isCA: cert.ca,
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    timeLeftMs: Date.parse(cert.validTo) - now,
    fingerprint256: cert.fingerprint256,
    dnsNames: [...id.dnsNames],
  };
  if (id.spiffeId !== undefined) out.spiffeId = id.spiffeId;
  return out;
}

/** How a certificate is named in a chain: its identity for a leaf, its subject for a CA. */
function labelOf(cert: X509Certificate): string {
  if (cert.ca) return oneLine(cert.subject);
  const id = identityOf(cert);
  return id.spiffeId ?? id.dnsNames[0] ?? oneLine(cert.subject);
}

function keyTypeOf(pem: string): string | undefined {
  try {
    const key = createPrivateKey(pem);
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const bits = key.asymmetricKeyDetails?.modulusLength;
    return [key.asymmetricKeyType, curve, bits ? `${bits} bits` : undefined].filter(Boolean).join(' ');
  } catch {
    return undefined;
  }
}

function tryParse(text: string, field: string, file: string): X509Certificate[] {
  try {
    return parseCertificates(text, { field, file });
  } catch {
    return [];
  }
}

/**
 * Inspects the credential in `dir`: layout, identity, chain, validity, key match, and whether
 * the chain verifies to the bundle. Never throws for a bad credential: the problem is in
 * `error` (with its MESHLESS_ERR_* code) and `ok` is false.
 */
export async function inspectDirectory(dir: string, now = Date.now(), federation: FederationFiles = {}): Promise<InspectReport> {
  const report: InspectReport = { path: dir, ok: false, chain: [], bundle: [], warnings: [] };
  try {
    const layout = await detectLayout(dir);
    const { frozenMounts, ...shown } = layout;
    report.layout = shown;
    for (const frozen of frozenMounts) {
      const what = frozen.kind === 'file' ? `${frozen.path} is mounted on its own (a subPath or single-file mount)` : `${frozen.path} is mounted from inside one generation directory (${frozen.entry.root})`;
      report.warnings.push({ kind: 'subpath-mount', message: `${what}: it pins one version of the file, so this credential will never rotate; mount the whole volume as a directory` });
    }
    const read = async (file: string, field: string) => {
      try {
        return await readFile(file, 'utf8');
      } catch (cause) {
        throw new MeshlessError(codes.FILE_UNREADABLE, `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? 'error'}); check the mount and that this user may read it`, { file, field, cause });
      }
    };
    const cert = await read(layout.files.cert, 'cert');
    const key = await read(layout.files.key, 'key');
    const ca = await read(layout.files.ca, 'ca');
    const chain = tryParse(cert, 'cert', layout.files.cert);
    const bundle = tryParse(ca, 'ca', layout.files.ca);
    report.chain = chain.map((c) => summarize(c, now));
    report.bundle = bundle.map((c) => summarize(c, now));
    const leaf = chain[0];
    if (leaf) describeLeaf(report, leaf, key, chain, bundle, now);
    for (const root of bundle) {
      if (Date.parse(root.validTo) < now) {
        report.warnings.push({ kind: 'expired-root', message: `the bundle holds a root that expired at ${new Date(root.validTo).toISOString()} (${oneLine(root.subject)}); remove it from ${layout.files.ca} once nothing chains to it` });
      } else if (Date.parse(root.validFrom) > now) {
        report.warnings.push({ kind: 'root-not-yet-valid', message: `the bundle holds a root not valid before ${new Date(root.validFrom).toISOString()} (${oneLine(root.subject)}); check the clock` });
      }
    }
    // Federated bundles are read as fileSource({ dir, federation, bundleMap }) reads them.
    const trust: TrustSet = await readTrustSet(resolveTrustFiles(federation));
    const ownTrustDomain = leaf ? identityOf(leaf).trustDomain : undefined;
    report.bundles = describeBundles({ trustDomain: ownTrustDomain, file: layout.files.ca, roots: bundle }, trust, now, report.warnings);
    const credential = loadCredential(
      { cert, key, ca, ...(trust.federation.size === 0 ? {} : { federation: trust.federation }) },
      { now, files: { ...layout.files, federation: trust.files } },
    );
    for (const notice of [...trust.notices, ...credential.notices]) report.warnings.push({ kind: 'federation', message: notice });
    if (leaf) checkIdentity(report, leaf);
    report.ok = true;
  } catch (err) {
    if (!isMeshlessError(err)) throw err;
    report.error = { code: err.code, message: err.message };
    if (err.file !== undefined) report.error.file = err.file;
  }
  return report;
}

function describeLeaf(report: InspectReport, leaf: X509Certificate, keyPem: string, chain: X509Certificate[], bundle: X509Certificate[], now: number): void {
  const id = identityOf(leaf);
  report.identity = { id: String(id), dnsNames: [...id.dnsNames], uris: [...id.uris] };
  if (id.spiffeId !== undefined) report.identity.spiffeId = id.spiffeId;
  if (id.trustDomain !== undefined) report.identity.trustDomain = id.trustDomain;
  if (id.commonName !== undefined) report.identity.commonName = id.commonName;
  const nb = id.notBefore.getTime();
  const na = id.notAfter.getTime();
  const lifetimeUsed = na > nb ? Math.max(0, Math.min(1, (now - nb) / (na - nb))) : 1;
  report.validity = { notBefore: id.notBefore.toISOString(), notAfter: id.notAfter.toISOString(), timeLeftMs: na - now, lifetimeUsed };
  if (now < na && lifetimeUsed >= RENEW_AT_SHARE) {
    report.warnings.push({ kind: 'expiring-soon', message: `the leaf is ${Math.round(lifetimeUsed * 100)}% through its lifetime (expires ${id.notAfter.toISOString()}): it is past its renewal point, check that the issuer (cert-manager, SPIRE…) renews it` });
  }
  const keyType = keyTypeOf(keyPem);
  if (keyType !== undefined) {
    let matchesLeaf = false;
    try {
      matchesLeaf = leaf.checkPrivateKey(createPrivateKey(keyPem));
    } catch {
      matchesLeaf = false;
    }
    report.key = { type: keyType, matchesLeaf };
  }
  const verified = verifyChain(leaf, chain.slice(1), bundle, now);
  if ('path' in verified) report.verifiedPath = verified.path.map((c) => labelOf(c));
}

function checkIdentity(report: InspectReport, leaf: X509Certificate): void {
  const id = identityOf(leaf);
  if (id.spiffeId === undefined && id.uris.length > 0) {
    report.warnings.push({ kind: 'no-spiffe-id', message: `the leaf has URI SANs (${id.uris.join(', ')}) but no valid SPIFFE ID: an X509-SVID has exactly one URI SAN of the form spiffe://<trust-domain>/<path>` });
  }
  if (id.spiffeId === undefined && id.dnsNames.length === 0) {
    if (id.commonName === undefined) {
      throw new MeshlessError(codes.NO_IDENTITY, `the leaf ${report.layout?.files.cert ?? ''} proves no identity: no SPIFFE ID, no DNS name, no CN; issue it with a URI SAN spiffe://<trust-domain>/<path>`, { file: report.layout?.files.cert });
    }
    report.warnings.push({ kind: 'cn-only', message: `the leaf's only identity is its CN (${id.commonName}): peers can allow it only with a \`cn:${id.commonName}\` rule; prefer a SPIFFE ID` });
  }
}

/** Exit status of an inspection: 0 when usable (warnings allowed), 1 on an error. */
export function inspectExitCode(report: InspectReport): number {
  return report.ok ? 0 : 1;
}
