/** File names of one credential layout: leaf chain, private key, trust bundle. */
export interface LayoutFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Layouts `meshless ca issue --layout` writes. */
export type IssueLayout = 'kubernetes' | 'istio' | 'spiffe-helper' | 'files';

/** Layouts `meshless inspect` recognises in a directory, in the order they are tried. */
export const knownLayouts: ReadonlyArray<{ readonly name: string; readonly files: LayoutFiles; readonly from: string }> = Object.freeze([
  { name: 'kubernetes', files: { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' }, from: 'Kubernetes TLS Secret, cert-manager csi-driver, csi-driver-spiffe' },
  { name: 'istio', files: { cert: 'cert-chain.pem', key: 'key.pem', ca: 'root-cert.pem' }, from: 'Istio file-mounted certificates' },
  { name: 'spiffe-helper', files: { cert: 'svid.pem', key: 'svid_key.pem', ca: 'svid_bundle.pem' }, from: 'SPIRE spiffe-helper' },
  { name: 'gke', files: { cert: 'certificates.pem', key: 'private_key.pem', ca: 'ca_certificates.pem' }, from: 'GKE workload certificates' },
]);

/** What `--layout` writes: file names, and whether they go through the kubelet's `..data` swap. */
export const issueLayouts: Readonly<Record<IssueLayout, { files: LayoutFiles; atomicSwap: boolean }>> = Object.freeze({
  kubernetes: { files: knownLayouts[0]!.files, atomicSwap: true },
  istio: { files: knownLayouts[1]!.files, atomicSwap: false },
  'spiffe-helper': { files: knownLayouts[2]!.files, atomicSwap: false },
  files: { files: knownLayouts[0]!.files, atomicSwap: false },
});

export function isIssueLayout(value: string): value is IssueLayout {
  return Object.hasOwn(issueLayouts, value);
}
