import type { X509Certificate } from 'node:crypto';
import { verifyChain } from '@meshless/core';

/** Longest issuer walk; a real chain is far shorter. */
const MAX_ISSUERS = 8;

/**
 * Why the client certificate of a live connection does not verify to `bundle` (undefined when it
 * does): the leaf alone first, then with the issuers OpenSSL saw for it (the intermediates the
 * client sent). Used when the trust bundle rotates, never per request.
 *
 * `leaf` must be the object from the connection's *first* `getPeerX509Certificate()` call: only
 * that one carries `issuerCertificate` (Node hands the sent chain out once).
 */
export function peerChainProblem(leaf: X509Certificate | undefined, bundle: readonly X509Certificate[], now: number): string | undefined {
  if (leaf === undefined) return 'the connection has no client certificate';
  const direct = verifyChain(leaf, [], bundle, now);
  if (!('problem' in direct)) return undefined;
  const issuers = issuersOf(leaf);
  if (issuers.length === 0) return direct.problem;
  const withIssuers = verifyChain(leaf, issuers, bundle, now);
  return 'problem' in withIssuers ? withIssuers.problem : undefined;
}

/** The issuer chain Node attached to a peer certificate (`issuerCertificate`, from the chain the client sent). */
function issuersOf(leaf: X509Certificate): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cert = leaf.issuerCertificate;
  while (cert !== undefined && out.length < MAX_ISSUERS && !out.some((c) => c.fingerprint256 === cert!.fingerprint256)) {
    out.push(cert);
    cert = cert.issuerCertificate;
  }
  return out;
}
