import type { X509Certificate } from 'node:crypto';

const MAX_DEPTH = 8;

/**
 * Finds a path from `leaf` through `intermediates` to one of `roots`, checking issuer names and
 * signatures with Node's X509Certificate, and that every issuer is a CA valid at `now`.
 * Returns the path (leaf first, root last), or a sentence saying why there is none.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: number,
): { path: X509Certificate[] } | { problem: string } {
  const path: X509Certificate[] = [leaf];
  let current = leaf;
  let lastProblem = `no certificate in the bundle issued ${JSON.stringify(leaf.issuer.replace(/\n/g, ', '))}`;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    for (const root of roots) {
      if (isIssuer(root, current)) {
        const problem = issuerProblem(root, now);
        if (problem) {
          lastProblem = problem;
          continue;
        }
        path.push(root);
        return { path };
      }
    }
    const next = intermediates.find((c) => !path.includes(c) && isIssuer(c, current));
    if (!next) return { problem: lastProblem };
    const problem = issuerProblem(next, now);
    if (problem) return { problem };
    path.push(next);
    current = next;
    lastProblem = `no certificate in the bundle issued the intermediate ${JSON.stringify(next.subject.replace(/\n/g, ', '))}`;
  }
  return { problem: `the chain is longer than ${MAX_DEPTH} certificates` };
}

function isIssuer(issuer: X509Certificate, cert: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function issuerProblem(ca: X509Certificate, now: number): string | undefined {
  const subject = JSON.stringify(ca.subject.replace(/\n/g, ', '));
  if (!ca.ca) return `issuer ${subject} is not a CA certificate`;
  if (Date.parse(ca.validTo) < now) return `issuer ${subject} expired at ${new Date(ca.validTo).toISOString()}`;
  if (Date.parse(ca.validFrom) > now) return `issuer ${subject} is not valid before ${new Date(ca.validFrom).toISOString()}`;
  return undefined;
}

/** Longest issuer walk; a real chain is far shorter. */
const MAX_ISSUERS = 8;

/**
 * The issuers Node attached to a peer certificate (`issuerCertificate`: the chain the peer sent,
 * as OpenSSL built it). Only the object from a socket's *first* `getPeerX509Certificate()` call
 * carries them.
 */
export function sentIssuersOf(leaf: X509Certificate): X509Certificate[] {
  const out: X509Certificate[] = [];
  let cert = leaf.issuerCertificate;
  while (cert !== undefined && out.length < MAX_ISSUERS && !out.some((c) => c.fingerprint256 === cert!.fingerprint256)) {
    out.push(cert);
    cert = cert.issuerCertificate;
  }
  return out;
}

/**
 * Why a peer's certificate does not verify to `bundle` (undefined when it does): the leaf alone
 * first, then with the intermediates the peer sent. Used when a session resumes or the trust
 * bundle rotates, never per request.
 */
export function peerChainProblem(leaf: X509Certificate, bundle: readonly X509Certificate[], now: number): string | undefined {
  const direct = verifyChain(leaf, [], bundle, now);
  if (!('problem' in direct)) return undefined;
  const issuers = sentIssuersOf(leaf);
  if (issuers.length === 0) return direct.problem;
  const withIssuers = verifyChain(leaf, issuers, bundle, now);
  return 'problem' in withIssuers ? withIssuers.problem : undefined;
}
