import { credentialLayouts, type CredentialLayout } from '@meshless/core/internal';

/** File names of one credential layout: leaf chain, private key, trust bundle. */
export interface LayoutFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** Layouts `meshless ca issue --layout` writes. */
export type IssueLayout = 'kubernetes' | 'istio' | 'spiffe-helper' | 'files';

/** Short names of core's layouts (`credentialLayouts`), by certificate file name. */
const shortNames: Readonly<Record<string, string>> = {
  'tls.crt': 'kubernetes',
  'cert-chain.pem': 'istio',
  'svid.pem': 'spiffe-helper',
  'certificates.pem': 'gke',
};

/** The short name of a layout core detected (`kubernetes`, `istio`, `spiffe-helper`, `gke`). */
export function layoutName(layout: CredentialLayout): string {
  return shortNames[layout.cert] ?? layout.name;
}

/** Layouts the SDK recognises in a directory (core's `credentialLayouts`), with short names. */
export const knownLayouts: ReadonlyArray<{ readonly name: string; readonly files: LayoutFiles; readonly from: string }> = Object.freeze(
  credentialLayouts.map((l) => Object.freeze({ name: layoutName(l), files: Object.freeze({ cert: l.cert, key: l.key, ca: l.ca }), from: l.name })),
);

function filesOf(name: string): LayoutFiles {
  const found = knownLayouts.find((l) => l.name === name);
  if (!found) throw new Error(`core has no ${name} layout`);
  return found.files;
}

/** What `--layout` writes: file names, and whether they go through the kubelet's `..data` swap. */
export const issueLayouts: Readonly<Record<IssueLayout, { files: LayoutFiles; atomicSwap: boolean }>> = Object.freeze({
  kubernetes: { files: filesOf('kubernetes'), atomicSwap: true },
  istio: { files: filesOf('istio'), atomicSwap: false },
  'spiffe-helper': { files: filesOf('spiffe-helper'), atomicSwap: false },
  files: { files: filesOf('kubernetes'), atomicSwap: false },
});

export function isIssueLayout(value: string): value is IssueLayout {
  return Object.hasOwn(issueLayouts, value);
}
