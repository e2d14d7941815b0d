import type { X509Certificate } from 'node:crypto';
import { MeshlessError, codes, isMeshlessError, loadCredential, type Credential, type Rules } from '@meshless/core';
import { certificatesToPem } from '@meshless/core/internal';
import { DerError, parseDerCertificates, pkcs8DerToPem } from './der.js';
import type { X509SvidMessage, X509SvidResponseMessage } from './proto.js';

/** What `pick` sees of each SVID of a message (never the private key). */
export interface SvidChoice {
  /** Position in the message (`svids[0]` is the default identity). */
  readonly index: number;
  readonly spiffeId: string;
  /** Operator-set hint (`internal`, `external`…), `''` when none. */
  readonly hint: string;
  /** The SVID's chain, leaf first. */
  readonly certificates: readonly X509Certificate[];
}

/** Chooses the SVID to serve among those of one message: the chosen entry, its index, or undefined for none. */
export type PickSvid = (svids: readonly SvidChoice[]) => SvidChoice | number | undefined;

export interface BuildOptions {
  /** For messages: `the Workload API at unix:///…`. */
  label: string;
  hint: string | undefined;
  pick: PickSvid | undefined;
  expectIdentity: Rules | undefined;
  clockSkewMs: number;
  generation: number;
}

/** What a message yields: the credential, which SVID it came from, and what else was offered. */
export interface BuiltCredential {
  credential: Credential;
  index: number;
  hint: string;
  offered: readonly { spiffeId: string; hint: string }[];
}

function invalid(label: string, what: string, field?: string): MeshlessError {
  return new MeshlessError(codes.WORKLOAD_API_MESSAGE_INVALID, `a message from ${label} is refused: ${what}; the last good SVID keeps serving. This is a bug or a mismatch in the Workload API server: check its version and logs`, field ? { field } : {});
}

function certificates(buf: Buffer, label: string, field: string): X509Certificate[] {
  try {
    return parseDerCertificates(buf);
  } catch (err) {
    if (err instanceof DerError) throw invalid(label, `${field} is not DER certificates: ${err.message}`, field);
    throw err;
  }
}

function checkRequired(svid: X509SvidMessage, i: number, label: string): void {
  const missing = (['spiffeId', 'x509Svid', 'x509SvidKey', 'bundle'] as const).filter((f) => svid[f].length === 0);
  if (missing.length === 0) return;
  const names: Record<string, string> = { spiffeId: 'spiffe_id', x509Svid: 'x509_svid', x509SvidKey: 'x509_svid_key', bundle: 'bundle' };
  throw invalid(label, `svids[${i}] has no ${missing.map((m) => names[m]).join(', ')} (every field but hint is required)`, `svids[${i}]`);
}

function choose(message: X509SvidResponseMessage, o: BuildOptions): number {
  const { svids } = message;
  if (o.pick !== undefined) {
    const choices: SvidChoice[] = svids.map((s, index) =>
      Object.freeze({ index, spiffeId: s.spiffeId, hint: s.hint, certificates: Object.freeze(certificates(s.x509Svid, o.label, `svids[${index}].x509_svid`)) }),
    );
    let picked: SvidChoice | number | undefined;
    try {
      picked = o.pick(Object.freeze(choices));
    } catch (cause) {
      throw new MeshlessError(codes.WORKLOAD_API_SVID_NOT_FOUND, `the pick function threw on a message from ${o.label}: ${(cause as Error)?.message ?? String(cause)}; the last good SVID keeps serving`, { field: 'pick', cause });
    }
    const index = typeof picked === 'number' ? picked : picked === undefined || picked === null ? -1 : choices.indexOf(picked as SvidChoice) >= 0 ? choices.indexOf(picked as SvidChoice) : (picked as SvidChoice).index;
    if (!Number.isInteger(index) || index < 0 || index >= svids.length) {
      throw new MeshlessError(codes.WORKLOAD_API_SVID_NOT_FOUND, `the pick function chose no SVID of a message from ${o.label} (offered: ${describeOffer(message)}); the last good SVID keeps serving`, { field: 'pick' });
    }
    return index;
  }
  if (o.hint !== undefined) {
    const index = svids.findIndex((s) => s.hint === o.hint);
    if (index < 0) {
      throw new MeshlessError(codes.WORKLOAD_API_SVID_NOT_FOUND, `no SVID with hint ${JSON.stringify(o.hint)} in a message from ${o.label} (offered: ${describeOffer(message)}); check the hint of the registration entry (spire-server entry show) or the hint option; the last good SVID keeps serving`, { field: 'hint' });
    }
    return index;
  }
  return 0;
}

export function describeOffer(message: X509SvidResponseMessage): string {
  return message.svids.map((s, i) => `[${i}] ${s.spiffeId || '(no spiffe_id)'}${s.hint ? ` hint ${JSON.stringify(s.hint)}` : ''}`).join(', ') || 'none';
}

/**
 * Validates one Workload API message and builds the credential it carries, like a file
 * generation: structure (≥ 1 SVID, required fields), DER that parses, then `loadCredential`
 * (key matches the leaf, chain verifies to the SVID's own bundle, validity, `expectIdentity`), and
 * the entry's spiffe_id equals the leaf's SPIFFE ID. Federated bundles become per-trust-domain
 * bundles. Throws a coded MeshlessError naming the address.
 */
export function buildCredential(message: X509SvidResponseMessage, o: BuildOptions): BuiltCredential {
  const { label } = o;
  if (message.svids.length === 0) throw invalid(label, 'it carries no SVID (svids must have at least one entry)', 'svids');
  message.svids.forEach((s, i) => checkRequired(s, i, label));
  const index = choose(message, o);
  const svid = message.svids[index]!;
  const where = `svids[${index}]`;
  const chain = certificates(svid.x509Svid, label, `${where}.x509_svid`);
  const bundle = certificates(svid.bundle, label, `${where}.bundle`);
  if (chain.length === 0) throw invalid(label, `${where}.x509_svid holds no certificate`, `${where}.x509_svid`);
  if (bundle.length === 0) throw invalid(label, `${where}.bundle holds no certificate`, `${where}.bundle`);
  const federation = new Map<string, X509Certificate[]>();
  for (const [td, der] of message.federatedBundles) federation.set(td, certificates(der, label, `federated_bundles[${JSON.stringify(td)}]`));
  let credential: Credential;
  try {
    credential = loadCredential(
      { cert: certificatesToPem(chain), key: pkcs8DerToPem(svid.x509SvidKey), ca: certificatesToPem(bundle), federation },
      { generation: o.generation, clockSkewMs: o.clockSkewMs, ...(o.expectIdentity === undefined ? {} : { expectIdentity: o.expectIdentity }) },
    );
  } catch (err) {
    if (!isMeshlessError(err)) throw err;
    // Same code (KEY_MISMATCH, CHAIN_UNTRUSTED…); the message says where the material came from.
    throw new MeshlessError(err.code, `the SVID ${JSON.stringify(svid.spiffeId)} (${where}) from ${label} is refused: ${err.message}`, {
      field: err.field === undefined ? where : `${where}.${err.field}`,
      ...(err.peer === undefined ? {} : { peer: err.peer }),
      cause: err,
    });
  }
  const leafId = credential.identity.spiffeId;
  if (leafId === undefined) throw invalid(label, `${where}.x509_svid has no SPIFFE ID (an X.509-SVID carries exactly one spiffe:// URI SAN)`, `${where}.x509_svid`);
  if (leafId !== svid.spiffeId) throw invalid(label, `${where}.spiffe_id is ${JSON.stringify(svid.spiffeId)} but its certificate proves ${leafId}`, `${where}.spiffe_id`);
  return {
    credential,
    index,
    hint: svid.hint,
    offered: message.svids.map((s) => ({ spiffeId: s.spiffeId, hint: s.hint })),
  };
}
