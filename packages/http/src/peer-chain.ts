import { X509Certificate } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { verifyChain } from '@meshless/core';

/**
 * Why the client certificate of a live connection does not verify to `bundle` (undefined when it
 * does): the leaf alone first, then with the intermediates the client sent. Used when the trust
 * bundle rotates, never per request.
 */
export function peerChainProblem(socket: TLSSocket, bundle: readonly X509Certificate[], now: number): string | undefined {
  const leaf = socket.getPeerX509Certificate();
  if (leaf === undefined) return 'the connection has no client certificate any more';
  const direct = verifyChain(leaf, [], bundle, now);
  if (!('problem' in direct)) return undefined;
  const intermediates = sentIssuers(socket);
  if (intermediates.length === 0) return direct.problem;
  const withIntermediates = verifyChain(leaf, intermediates, bundle, now);
  return 'problem' in withIntermediates ? withIntermediates.problem : undefined;
}

/** The issuers OpenSSL saw for the client's certificate (its sent chain), as X509Certificates. */
function sentIssuers(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  let cert: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)?.issuerCertificate;
  while (cert?.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    out.push(new X509Certificate(cert.raw));
    cert = cert.issuerCertificate;
  }
  return out;
}
